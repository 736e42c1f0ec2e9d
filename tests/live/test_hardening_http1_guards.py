"""Issue #11, 8 and 9: the HTTP/1 guards, against a live `mitmdump -s addon/auth.py` and an upstream
that records every request and connection (upstreams.Recorder): each connection has
auth_head_timeout to deliver a request head (300 connections trickling headers), a head without end
is cut with 431, and chunked trailers get a clear 400 (an upstream's cut the answer under way),
never mitmproxy's crash.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its test ends. The figures are printed under
-q too.
"""

from __future__ import annotations

import socket
import threading
import time

from hardening_probes import AUTH, KEY, K, MiB, body_of, push, status_of
from live import config_text
from live_fixtures import confdir, gate, memory_kb, recorder, report  # noqa: F401
from raw_http import IO_TIMEOUT, raw_exchange, read_response, request, talk

# ====================================================================== 8. slow clients

SLOW = 300  # connections trickling their headers
HEAD_TIMEOUT = 2


def test_8_slow_clients_are_closed_after_auth_head_timeout(gate, recorder, capsys):
    m = gate(config_text("strict", KEY, recorder.url), "--set", f"auth_head_timeout={HEAD_TIMEOUT}")
    opened: list[float] = []  # when each connection was accepted (its deadline runs from there)

    def connect() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT)
        opened.append(time.monotonic())
        if len(opened) % 50 == 0:
            time.sleep(0.05)  # let mitmproxy accept them: its listen backlog is 100
        return s

    socks = [connect() for _ in range(SLOW)]
    idle = [connect() for _ in range(20)]
    head = b"GET /v1/models HTTP/1.1\r\nHost: gate\r\nX-Slow: " + b"a" * 100
    closed: dict[int, float] = {}  # connection -> seconds from its start to its end
    t0 = opened[0]
    try:
        for s in socks + idle:
            s.setblocking(False)
        step = 0
        during = None
        while time.monotonic() - t0 < HEAD_TIMEOUT + 4 and len(closed) < len(socks) + len(idle):
            for i, s in enumerate(socks + idle):
                if i in closed:
                    continue
                try:
                    if not s.recv(4096):
                        closed[i] = time.monotonic() - opened[i]
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    closed[i] = time.monotonic() - opened[i]
                    continue
                if i < SLOW and step < len(head):
                    try:
                        s.send(head[step:step + 1])  # one byte a step: never a whole head
                    except OSError:
                        closed[i] = time.monotonic() - opened[i]
            if during is None and time.monotonic() - t0 > 1.0:  # the gate answers others meanwhile
                t1 = time.monotonic()
                during = (raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH]))[0], time.monotonic() - t1)
            step += 1
            time.sleep(0.1)
    finally:
        for s in socks + idle:
            s.close()
    assert len(closed) == len(socks) + len(idle), f"{len(closed)} of {len(socks) + len(idle)} closed"
    assert HEAD_TIMEOUT - 0.2 < min(closed.values()) and max(closed.values()) < HEAD_TIMEOUT + 2.0, \
        (min(closed.values()), max(closed.values()))
    assert during[0] == 200 and during[1] < 1.0, during
    assert len(recorder.requests) == 1
    report(capsys, "hardening",
           f"{SLOW} connections trickling headers and 20 idle ones, auth_head_timeout={HEAD_TIMEOUT}: "
           f"all closed between {min(closed.values()):.1f} and {max(closed.values()):.1f} s; a request "
           f"meanwhile: {during[0]} in {during[1] * 1000:.0f} ms")


def test_8_a_kept_alive_connection_has_the_same_time_for_its_next_request(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url), "--set", f"auth_head_timeout={HEAD_TIMEOUT}")
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        rfile = sock.makefile("rb")
        for pause in (0, HEAD_TIMEOUT / 2):  # within the time: served
            time.sleep(pause)
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer " + K + b"\r\n\r\n")
            assert read_response(rfile, "GET").status == 200
        t0 = time.monotonic()
        assert rfile.read(1) == b""  # idle past the deadline: closed
        assert time.monotonic() - t0 < HEAD_TIMEOUT + 2.0
        rfile.close()


def test_8_a_head_without_end_is_cut_at_hypers_limit(gate, recorder, capsys):
    """Time is bounded above; bytes too: a head that grows past hyper's buffer (408 KiB) gets 431."""
    m = gate(config_text("strict", KEY, recorder.url))
    base = memory_kb(m.proc.pid, "VmHWM")
    r = push(m.port, b"GET /v1/models HTTP/1.1\r\nHost: gate\r\nX-Big: ", 200 * MiB)
    peak = memory_kb(m.proc.pid, "VmHWM")
    assert status_of(r["answer"]) == 431 and body_of(r["answer"])["error"]["code"] == "request_header_fields_too_large"
    assert r["sent"] < 32 * MiB and peak - base < 40 * 1024, (r["sent"], peak - base)
    assert recorder.connections == 0
    report(capsys, "hardening",
           f"a request head without end: 431 after the client pushed {r['sent'] / MiB:.1f} MiB; "
           f"peak RSS +{(peak - base) / 1024:.1f} MiB")


# ====================================================================== 9. trailers

def test_9_chunked_trailers_get_a_clear_400_never_a_crash(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url))
    body = b"5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n"
    for headers, expected in (([AUTH], (400,)), ([], (400, 401))):  # denied: whichever comes first
        for split in (False, True):
            raw = request(b"POST", b"/t", [*headers, (b"Transfer-Encoding", b"chunked"), (b"Trailer", b"X-Trailer")])
            raw = raw.replace(b"Content-Length", b"X-None")
            out, _ = talk(m.port, raw, timeout=5.0, then=body, pause=0.3 if split else 0.0)
            assert status_of(out) in expected, (headers, split, out[:200])
            if status_of(out) == 400:
                assert body_of(out)["error"]["code"] == "trailers_not_supported"
    # an allowed body streams: the upstream had its start, and a request cut before its end
    assert len(recorder.requests) <= 2 and not any(r["complete"] for r in recorder.requests), recorder.requests
    assert raw_exchange(m.port, request(b"GET", b"/healthz", [AUTH]))[0] == 200
    assert "has crashed" not in m.output and "Traceback" not in m.output


def test_9_an_upstreams_trailers_cut_the_answer_never_a_crash(gate):
    """The answer streams (issue #22): the client has its head and the chunk before the trailers,
    then the connection closes without the last chunk, so the client sees the answer was cut."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5.0)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n")
            time.sleep(0.5)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        m = gate(config_text("strict", KEY, f"http://127.0.0.1:{port}"))
        status, headers, payload = raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH]), timeout=5.0)
        assert status == 200 and payload == b"5\r\nhello\r\n", payload[:200]  # never the last chunk
        assert raw_exchange(m.port, request(b"GET", b"/healthz", [AUTH]))[0] == 200
        assert "has crashed" not in m.output and "Traceback" not in m.output
    finally:
        server.join(5.0)
        listener.close()
