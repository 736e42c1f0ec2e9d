"""Issue #11, 4: decided at the request headers, against a live `mitmdump -s addon/auth.py` and an
upstream that records every request and connection (upstreams.Recorder): denials, preflights,
/healthz and refusals are answered before the body (a 300 MiB denied POST: the gate's peak memory
and the time to its 401 are printed; `Expect: 100-continue` gets the 401, never a 100); an allowed
body is held to auth_max_body_size (it streams: test_streaming.py has the rest).

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its test ends. The figures are printed under
-q too.
"""

from __future__ import annotations

import socket
import time

import pytest

from hardening_probes import AUTH, KEY, K, MiB, body_of, push, status_of
from live import closed_port, config_text
from live_fixtures import confdir, gate, memory_kb, recorder, report  # noqa: F401
from raw_http import IO_TIMEOUT, raw_exchange, read_response, request, talk


def test_4_a_300_mib_denied_post_is_answered_before_its_body(gate, recorder, capsys):
    m = gate(config_text("strict", KEY, recorder.url))
    base = memory_kb(m.proc.pid, "VmHWM")
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gate\r\nContent-Type: application/json\r\n" \
           b"Content-Length: %d\r\n\r\n" % (300 * MiB)
    t0 = time.monotonic()
    r = push(m.port, head, 300 * MiB)
    took = time.monotonic() - t0
    time.sleep(0.3)
    peak, now = memory_kb(m.proc.pid, "VmHWM"), memory_kb(m.proc.pid)
    assert status_of(r["answer"]) == 401, r["answer"][:200]
    assert r["first"] < 1.0 and r["sent"] < 64 * MiB, (r["first"], r["sent"])
    assert b"connection: close" in r["answer"].lower()
    assert peak - base < 40 * 1024, f"peak RSS grew by {(peak - base) // 1024} MiB"
    assert recorder.requests == [] and recorder.connections == 0
    report(capsys, "hardening",
           f"300 MiB POST without a key: 401 after {r['first'] * 1000:.0f} ms, the client had pushed "
           f"{r['sent'] / MiB:.1f} MiB, all done in {took:.2f} s; mitmdump peak RSS {base // 1024} -> "
           f"{peak // 1024} MiB (+{(peak - base) / 1024:.1f}), now {now // 1024} MiB")


def test_4_expect_100_continue_on_a_denial_gets_the_401_not_100(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url))
    head = (b"POST /v1/messages HTTP/1.1\r\nHost: gate\r\nx-api-key: sk-wrong\r\nContent-Length: 1000\r\n"
            b"Expect: 100-continue\r\n\r\n")
    out, first = talk(m.port, head, timeout=3.0)
    assert out.startswith(b"HTTP/1.1 401 "), out[:100]
    assert b"100 Continue" not in out and first < 1.0
    assert body_of(out)["error"]["type"] == "authentication_error"  # x-api-key: Anthropic's shape
    # with the key, the 100 comes, then the upstream's answer
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(head.replace(b"sk-wrong", K).replace(b"1000", b"2"))
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"{}")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    assert len(recorder.requests) == 1 and recorder.requests[0]["body"] == b"{}"


def test_4_after_a_100_continue_an_upstream_failure_still_gets_the_json_502(gate):
    dead = f"http://127.0.0.1:{closed_port()}"
    m = gate(config_text("strict", KEY, dead))
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer " + K +
                     b"\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    assert status_of(out) == 502 and body_of(out)["error"]["code"] == "upstream_unreachable", out[:200]


@pytest.mark.parametrize("mode, head, status", [
    ("strict", b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 10\r\n", 401),
    ("strict", b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 401),
    ("strict", b"OPTIONS /v1/chat/completions HTTP/1.1\r\nContent-Length: 10\r\nOrigin: http://x\r\n", 200),
    ("all_except_health", b"POST /healthz HTTP/1.1\r\nContent-Length: 10\r\n", 405),
    ("all_except_health", b"GET /healthz HTTP/1.1\r\nContent-Length: 10\r\n", 200),
    ("off", b"POST /v1/chat/completions HTTP/1.1\r\nX-Foo: a\x01\r\nContent-Length: 10\r\n", 400),
], ids=["denial", "denial-chunked", "preflight", "healthz-405", "healthz", "refusal"])
def test_4_local_answers_never_wait_for_the_body(gate, recorder, mode, head, status):
    m = gate(config_text(mode, KEY, recorder.url))
    out, first = talk(m.port, head + b"Host: gate\r\n\r\n", timeout=3.0)  # the body never comes
    assert status_of(out) == status and first < 1.0, (out[:120], first)
    assert recorder.requests == [] and recorder.connections == 0


def test_4_a_denial_without_a_body_keeps_the_connection(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url))
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        rfile = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: gate\r\n\r\n")
            a = read_response(rfile, "GET")
            assert a.status == 401 and a.headers.get("connection") != "close"
        rfile.close()
    assert recorder.connections == 0


def test_4_the_body_limit_for_allowed_requests(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url), "--set", "auth_max_body_size=1m")
    auth = b"Authorization: Bearer " + K + b"\r\n"
    # Content-Length over the limit: 413 at the headers, the body never read
    big = b"POST /big HTTP/1.1\r\nHost: gate\r\n" + auth + b"Content-Length: %d\r\n\r\n" % (MiB + 1)
    out, first = talk(m.port, big, timeout=3.0)
    assert status_of(out) == 413 and first < 1.0 and body_of(out)["error"]["code"] == "request_too_large"
    # exactly the limit passes, whole
    status, _, _ = raw_exchange(m.port, request(b"POST", b"/exact", [AUTH], b"x" * MiB))
    assert status == 200 and len(recorder.find("/exact")[0]["body"]) == MiB
    # chunked: 413 as soon as it grows past the limit
    head = b"POST /chunked-big HTTP/1.1\r\nHost: gate\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(head)
        got = b""
        try:
            for _ in range(8):  # 8 chunks of 256 KiB: past 1 MiB after the fifth
                sock.sendall(b"40000\r\n" + b"y" * 0x40000 + b"\r\n")
                time.sleep(0.05)
        except OSError:
            pass
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except (OSError, socket.timeout):
            pass
    assert status_of(got) == 413, got[:200]
    # the body streamed, so the upstream had the start of it; its request was cut, never finished
    assert [r["complete"] for r in recorder.find("/chunked-big")] in ([], [False]), recorder.find("/chunked-big")
    assert recorder.find("/big") == []
    status, _, _ = raw_exchange(m.port, b"POST /chunked-small HTTP/1.1\r\nHost: gate\r\n" + auth
                                + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert status == 200 and recorder.find("/chunked-small")[0]["body"] == b"hello"
    # a denial comes before the limit, as the original's auth middleware comes before its body limit
    out, _ = talk(m.port, b"POST /big HTTP/1.1\r\nHost: gate\r\nContent-Length: %d\r\n\r\n" % (MiB + 1), timeout=3.0)
    assert status_of(out) == 401
