"""Issue #20: one protocol, as the original: plain HTTP/1.x on the gate's port, against a live
`mitmdump -s addon/auth.py` and an upstream that records every byte each connection brings
(protocol_probes.SwitchingUpstream): real TLS and HTTP/2 clients (curl, Python's ssl, the h2
library) get what hyper's HTTP/1 server gives them and nothing reaches the upstream; an upstream's
101 never makes a raw tunnel, its 1xx never takes the place of its answer.

The original (notes B1-B3, B8, B9): hyper 1.8.1's http1 server on a plain TcpListener (app45
proxy/server.rs:849-874). A TLS ClientHello: 400 and close (httparse lib.rs:887-892, hyper
role.rs:194-196, 463-483); the HTTP/2 preface: close, no byte (hyper conn.rs:206-209, 808-812);
`Upgrade: h2c`: an ordinary HTTP/1.1 request (role.rs:309-312, dispatch.rs:294-302); hyper's client
skips 100 and 102-199 (role.rs:1251-1254) and takes 101 as final.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its module ends.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time

import pytest

from authgate.config.paths import REPO
from authgate.rules.wire import H2_PREFACE
from hardening_probes import AUTH, KEY, K
from live import ADDON, Gates, Process, config_text, write_config
from live_fixtures import confdir  # noqa: F401
from protocol_probes import (
    HYPER_400,
    SwitchingUpstream,
    client_hello,
    curl,
    h2_request,
    talk_until_closed,
    tls_handshake,
    websocket_exchange,
)
from raw_http import IO_TIMEOUT, read_response, request, talk

UPSTREAM_TIMEOUT = 2  # seconds: upstream.timeout of the gates here (the 504 after a lone 103)


@pytest.fixture(scope="module")
def upstream():
    with SwitchingUpstream() as u:
        yield u


@pytest.fixture(scope="module")
def gates(tmp_path_factory, confdir):
    with Gates(tmp_path_factory.mktemp("protocol"), confdir) as start:
        yield start


@pytest.fixture(scope="module")
def gate(gates, upstream):
    return gates(config_text("strict", KEY, upstream.url, upstream_timeout=UPSTREAM_TIMEOUT, extra="  profile: v4"))


@pytest.fixture(scope="module")
def bare(gates, upstream):
    """auth_explain off: the original's own answers, byte for byte."""
    return gates(config_text("strict", KEY, upstream.url), "--set", "auth_explain=false")


def _nothing_reached(upstream: SwitchingUpstream, before: int) -> None:
    assert len(upstream.conns) == before, [bytes(c)[:200] for c in upstream.conns[before:]]


# ====================================================================== TLS

def test_a_tls_client_hello_gets_hypers_400_and_a_close(gate, bare, upstream):
    before = len(upstream.conns)
    out, ended = talk_until_closed(bare.port, client_hello())
    assert HYPER_400.fullmatch(out) and ended == "closed", (out, ended)  # exactly hyper's bytes, then EOF
    out, ended = talk_until_closed(gate.port, client_hello())
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"\r\nconnection: close" in head.lower()
    assert json.loads(body)["error"]["code"] == "tls_not_supported" and ended == "closed"
    _nothing_reached(upstream, before)
    assert gate.wait_for("refused a TLS ClientHello: this port speaks plain HTTP/1.1 only")


def test_tls_clients_fail_their_handshake_and_nothing_reaches_the_upstream(gate, upstream):
    before = len(upstream.conns)
    for args in (["--http2"], ["--http1.1"], []):
        r = curl("-k", *args, f"https://127.0.0.1:{gate.port}/v1/models", "-H", f"Authorization: Bearer {KEY}")
        assert r.returncode == 35 and "wrong version number" in r.stderr, (args, r.returncode, r.stderr)
    assert tls_handshake(gate.port).startswith("SSLError") and "WRONG_VERSION_NUMBER" in tls_handshake(gate.port)
    h2tls = h2_request(gate.port, tls=True, headers=[("authorization", f"Bearer {KEY}")])
    assert h2tls["error"].startswith("TLS: SSLError") and h2tls["events"] == [], h2tls
    _nothing_reached(upstream, before)


# ====================================================================== HTTP/2

def test_http2_prior_knowledge_is_closed_without_a_byte(gate, bare, upstream):
    before = len(upstream.conns)
    settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    for m in (gate, bare):
        assert talk_until_closed(m.port, H2_PREFACE + settings) == (b"", "closed")
    h2c = h2_request(gate.port, tls=False, headers=[("authorization", f"Bearer {KEY}")])
    assert h2c["bytes"] == 0 and h2c["events"] == [], h2c
    assert h2c["error"] == "closed" or h2c["error"].startswith("ConnectionResetError"), h2c  # (a RST: unread bytes)
    r = curl("--http2-prior-knowledge", f"http://127.0.0.1:{gate.port}/v1/models", "-H", f"Authorization: Bearer {KEY}")
    assert r.returncode != 0 and r.stdout == "", (r.returncode, r.stderr)
    # fewer than 24 bytes of it: hyper's 400 (has_h2_prefix is false, conn.rs:206-209)
    out, ended = talk_until_closed(bare.port, b"PRI * HTTP/2.0\r\n")
    assert HYPER_400.fullmatch(out) and ended == "closed", out
    _nothing_reached(upstream, before)
    assert gate.wait_for("refused the HTTP/2 preface (prior knowledge)")


def test_an_h2c_upgrade_is_served_as_plain_http11(gate, upstream):
    """curl --http2 on http:// asks for h2c; hyper serves the request as HTTP/1.1, the upgrade ignored."""
    before = len(upstream.conns)
    r = curl("--http2", "-w", "\\n%{http_version} %{http_code}", f"http://127.0.0.1:{gate.port}/v1/models",
             "-H", f"Authorization: Bearer {KEY}")
    body, _, last = r.stdout.rpartition("\n")
    assert (r.returncode, last) == (0, "1.1 200") and json.loads(body)["upstream"] == "switching", r
    (seen,) = [bytes(c) for c in upstream.conns[before:]]
    assert seen.startswith(b"GET /v1/models HTTP/1.1") and b"h2c" not in seen.lower()
    assert b"http2-settings" not in seen.lower() and K not in seen


# ====================================================================== 101 and 1xx from the upstream

def test_an_upstreams_101_for_anything_but_a_websocket_is_a_502_never_a_tunnel(gate, upstream):
    """Before: the gate relayed the 101, then raw bytes: a second request on that connection got no
    decision and reached the upstream with its Authorization and ?key=."""
    before = len(upstream.conns)
    first = request(b"GET", b"/v1/models", [AUTH, (b"Connection", b"Upgrade"), (b"Upgrade", b"foo")])
    first = first.replace(b"Connection: close\r\n", b"")
    smuggled = b"GET /v1/secret?key=LEAKEDKEY HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer LEAKEDKEY\r\n\r\n"
    out, _ = talk(gate.port, first, timeout=5, then=smuggled, pause=0.5)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 ") and b"101 Switching Protocols" in body, out[:300]
    assert json.loads(body)["error"]["code"] == "upstream_error" and b"HTTP/1.1 101" not in out
    seen = b"".join(bytes(c) for c in upstream.conns[before:])
    assert seen.count(b"HTTP/1.1\r\n") == 1 and b"LEAKEDKEY" not in seen and K not in seen, seen


def test_a_websocket_the_gate_passed_still_works_and_carries_no_credential(gate, upstream):
    """v4.5.8 has a WebSocket route (GET /v1/responses, openai.rs:4250-4256): a decided upgrade
    becomes WebSocket messages (mitmproxy's, never raw bytes), without the client's key."""
    before = len(upstream.conns)
    got = websocket_exchange(gate.port, f"/v1/responses?key={KEY}&x=1", [AUTH, (b"x-api-key", K)], "hi")
    assert got == {"accepted": True, "status": None, "reply": "echo: hi"}, got
    (seen,) = [bytes(c) for c in upstream.conns[before:]]
    assert seen.startswith(b"GET /v1/responses?x=1 HTTP/1.1") and K not in seen, seen[:300]
    denied = websocket_exchange(gate.port, "/v1/responses", [], "hi")
    assert denied["status"] == 401 and not denied["accepted"]
    assert len(upstream.conns) == before + 1


def test_an_upstreams_1xx_is_dropped_and_its_final_answer_arrives(gate, upstream):
    """Before: the client got the lone 103 and never the 200 (nor the 504)."""
    out, _ = talk(gate.port, request(b"GET", b"/early", [AUTH]), timeout=5)
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b" 103 " not in out and b" 100 " not in out, out[:200]
    assert b'"line": "GET /early HTTP/1.1"' in out
    # the upstream timer runs on after a 1xx: a 103 and then nothing is the gate's 504
    t0 = time.monotonic()
    out, _ = talk(gate.port, request(b"GET", b"/early-hang", [AUTH]), timeout=UPSTREAM_TIMEOUT + 8)
    took = time.monotonic() - t0
    assert out.startswith(b"HTTP/1.1 504 ") and b"upstream_timeout" in out and b" 103 " not in out, out[:300]
    assert UPSTREAM_TIMEOUT - 0.2 < took < UPSTREAM_TIMEOUT + 4, took


# ====================================================================== a denied head and a malformed chunk

def test_a_denied_head_and_a_malformed_chunk_in_one_segment_get_the_401(gate, upstream):
    """Before, on 11.0.2 (Python 3.11): mitmproxy closed the connection for the chunk before the
    requestheaders hook ran, so the client got EOF while the flow showed 401."""
    before = len(upstream.conns)
    raw = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"ZZ\r\nnot a chunk\r\n")
    for _ in range(5):
        out, _ = talk(gate.port, raw, timeout=5)
        assert out.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), out[:100]
    _nothing_reached(upstream, before)


def test_mitmproxys_own_400_is_the_gates(gate, bare, upstream):
    """An invalid header name (mitmproxy's validate_inbound_headers refuses it, as httparse does:
    lib.rs:1117-1135): the gate's 400, not mitmproxy's HTML page."""
    before = len(upstream.conns)
    raw = b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX(A: b\r\nAuthorization: Bearer " + K + b"\r\n\r\n"
    out, _ = talk(gate.port, raw, timeout=5)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and json.loads(body)["error"]["code"] == "bad_request", out[:300]
    assert b"<html>" not in out
    out, _ = talk(bare.port, raw, timeout=5)
    assert HYPER_400.fullmatch(out), out
    _nothing_reached(upstream, before)


def test_still_serving_never_crashed_and_the_smuggled_request_never_parsed(gate, bare):
    # (mitmproxy's own flow dump shows a URL as the client sent it, `?key=` included: the WebSocket
    # test's; test_security_logs.py covers the gate's own lines. The smuggled request made no flow.)
    time.sleep(0.3)
    for m in (gate, bare):
        assert m.proc.poll() is None and "LEAKEDKEY" not in m.output
        assert "mitmproxy has crashed" not in m.output and "Traceback" not in m.output


# ====================================================================== an idle keep-alive client at shutdown

def _keep_alive(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + K + b"\r\n\r\n")
        assert read_response(s.makefile("rb"), "GET").status == 200
        socks.append(s)
    return socks


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_shutdown_with_idle_keep_alive_clients_is_clean(gates, upstream, how):
    """Before: "mitmproxy has crashed!" (a KeyError: the guards' wrappers looked up originals that
    uninstall had forgotten, for the idle connections' next event)."""
    m = gates(config_text("strict", KEY, upstream.url))
    socks = _keep_alive(m.port, 3)
    try:
        time.sleep(0.2)
        m.proc.send_signal(getattr(signal, how))
        rc = m.wait_exit(15)
    finally:
        for s in socks:
            s.close()
    out = m.stop()
    assert rc == 0, (rc, out[-2000:])
    assert "mitmproxy has crashed" not in out and "KeyError" not in out and "authgate" not in _tracebacks(out), \
        out[-3000:]


def _tracebacks(output: str) -> str:
    """The traceback lines of an output. (Python 3.11's asyncio prints one for mitmproxy 11.0.2's
    cancelled client tasks at shutdown, without the gate too: none may name the gate's code.)"""
    return "\n".join(line for line in output.splitlines() if line.startswith("  File "))


def test_a_script_reload_with_live_connections_loses_no_answer(tmp_path, confdir, upstream):
    """mitmproxy reloads a -s script when its file changes: the gate's addons go (done) and come
    back (load, configure, running) while connections live: one idle, one with a request in flight."""
    script = tmp_path / "auth.py"  # a copy, so the repository's own file is never touched
    shutil.copy(ADDON, script)
    cfg = tmp_path / "g" / "config.yaml"
    cfg.parent.mkdir()
    write_config(cfg, config_text("strict", KEY, upstream.url))
    with Process("mitmdump", "-s", str(script), "--set", f"confdir={confdir}", "--set", f"auth_config={cfg}",
                 "--set", "auth_port=0", env={"PYTHONPATH": str(REPO / "addon")}) as m:
        m.wait_listening()
        idle = _keep_alive(m.port, 2)
        slow = socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT)
        try:
            slow.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + K + b"\r\n\r\n")
            time.sleep(0.3)  # at the upstream now, which answers after 1.5 s
            later = time.time() + 5
            os.utime(script, (later, later))  # mitmproxy looks at the script's mtime once a second
            assert m.wait_for(lambda out: out.count("Loading script") >= 2, timeout=10), m.output[-2000:]
            answer = read_response(slow.makefile("rb"), "GET")
            assert answer.status == 200 and b"GET /slow" in answer.body  # the answer in flight arrived
            for s in idle:  # the idle connections go on, decided by the reloaded gate
                rfile = s.makefile("rb")
                s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + K + b"\r\n\r\n")
                assert read_response(rfile, "GET").status == 200
                s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_response(rfile, "GET").status == 401
            assert talk(m.port, request(b"GET", b"/v1/models", []))[0].startswith(b"HTTP/1.1 401 ")
        finally:
            for s in (*idle, slow):
                s.close()
    out = m.output
    assert "mitmproxy has crashed" not in out and "KeyError" not in out and "authgate" not in _tracebacks(out), \
        out[-3000:]
