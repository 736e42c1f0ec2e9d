"""Faults of the upstream behind a live `mitmdump -s addon/auth.py`: down, resetting, sending
garbage or a cut body or stream, too slow, never accepting; a client that gives up first. The client
gets the gate's JSON 502/504 promptly (or, once the answer has begun, what came of it as sent: every
answer streams), and after each fault the gate still answers.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its test or fixture ends.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from live import closed_port, config_text, write_config
from live_fixtures import confdir, echo, faulty, gate, report  # noqa: F401
from raw_http import IO_TIMEOUT, Answer, exchange, request_bytes
from robustness_checks import KEY, healthy, with_key

# Slow upstream: the gate's upstream.timeout in the test, how many requests hang at once.
SLOW_TIMEOUT = 1.5
FAULT_TIMEOUT = 2.0  # upstream.timeout while an upstream resets: a stalled connect ends too
SLOW_HANGING = 4


def test_upstream_down_gives_json_502_and_gate_serves_on(gate):
    dead = f"http://127.0.0.1:{closed_port()}"
    m = gate(config_text("strict", KEY, dead))
    a = exchange(m.port, request_bytes("GET", "/v1/models", with_key()))
    assert a.status == 502, a.describe()
    assert a.headers.get("content-type") == "application/json"
    assert dead in a.json()["error"]["message"]
    assert a.elapsed < 5
    healthy(m, "an unreachable upstream")


def upstream_failure(a: Answer, status: int, codes: str | tuple[str, ...], what: str) -> dict:
    """The gate's own answer to an upstream failure: JSON, naming the code, carrying the decision."""
    assert a.status == status, f"{what}: {a.describe()}"
    assert a.headers.get("content-type") == "application/json", f"{what}: {a.describe()}"
    assert a.headers.get("access-control-allow-origin") == "*"
    assert a.headers.get("x-auth-gate", "").startswith("allow; mode=strict; winner=Authorization")
    error = a.json()["error"]
    assert error["code"] in ((codes,) if isinstance(codes, str) else codes), f"{what}: {error}"
    return error


@pytest.mark.parametrize("mode", ["rst-on-accept", "close-after-request", "rst-after-request", "garbage"])
def test_resetting_upstream_gives_json_502_promptly_and_gate_serves_on(gate, faulty, echo, capsys, mode):
    up = faulty(mode)
    m = gate(config_text("strict", KEY, up.url, upstream_timeout=FAULT_TIMEOUT))
    answers = []
    for _ in range(3):  # a few in a row: each is answered, none hangs
        a = exchange(m.port, request_bytes("POST", "/v1/chat/completions", with_key(), b"{}"),
                     method="POST", timeout=FAULT_TIMEOUT + 3.0)
        answers.append(a)
        if mode == "rst-on-accept" and a.status != 502:
            # Loopback TCP: a SYN to a listener that resets on accept is now and then dropped and
            # retried 1 s, 3 s, 7 s later (bare mitmdump stalls the same way), so the connect
            # itself may stall: upstream.timeout ends it.
            error = upstream_failure(a, 504, "upstream_timeout", mode)
        else:
            # a reset on accept may land while mitmproxy is still connecting: then it is "unreachable"
            codes = ("upstream_error", "upstream_unreachable") if mode == "rst-on-accept" else "upstream_error"
            error = upstream_failure(a, 502, codes, mode)
        assert up.url in error["message"]
        assert a.elapsed < FAULT_TIMEOUT + 1.0
    report(capsys, "robustness",
           f"upstream {mode}: the client gets {answers[0].status} JSON: {error['message']}")
    assert up.accepted >= 1  # the upstream really was contacted
    healthy(m, f"an upstream that does {mode}")
    # The gate still decides, and forwards again once the upstream is a healthy one.
    assert exchange(m.port, request_bytes("GET", "/v1/models", [(b"Host", b"gate")])).status == 401
    write_config(m.config, config_text("strict", KEY, echo.url))
    ok = exchange(m.port, request_bytes("GET", "/v1/models", with_key()))
    assert ok.status == 200 and ok.json()["upstream"] == "echo", ok.describe()


@pytest.mark.parametrize("mode, start", [("cut-stream", b"data: first"), ("cut-body", b'{"partial":')])
def test_stream_cut_midway_reaches_the_client_as_sent(gate, faulty, mode, start):
    """Every answer goes through as it comes (issue #22): when the upstream breaks off after the
    first event, or short of its Content-Length, the client has what came and a closed connection
    (a chunked answer without its last chunk, a body short of its length: the client sees it was
    cut); nothing is appended to it."""
    up = faulty(mode)
    m = gate(config_text("strict", KEY, up.url))
    a = exchange(m.port, request_bytes("GET", "/v1/stream", with_key()), timeout=5.0)
    assert a.status == 200, a.describe()
    assert a.body == start + (b"\n\n" if mode == "cut-stream" else b""), a.describe()
    assert a.elapsed < 5.0
    healthy(m, "an answer cut midway")


def test_slow_upstream_gets_json_504_after_upstream_timeout(gate, faulty, capsys):
    """An upstream that accepts a request and never answers: after upstream.timeout without
    response headers the gate answers 504 itself and closes that upstream connection. Meanwhile
    its own routes, denials and other forwarded requests answer at once."""
    up = faulty("slow")
    m = gate(config_text("strict", KEY, up.url, upstream_timeout=SLOW_TIMEOUT))
    hung: list[Answer] = []
    lock = threading.Lock()

    def slow_request(i: int) -> None:
        a = exchange(m.port, request_bytes("GET", f"/slow/{i}", with_key()), timeout=SLOW_TIMEOUT + IO_TIMEOUT)
        with lock:
            hung.append(a)

    threads = [threading.Thread(target=slow_request, args=(i,), daemon=True) for i in range(SLOW_HANGING)]
    for t in threads:
        t.start()
    try:
        # wait (bounded) until the upstream holds them all
        limit = time.monotonic() + SLOW_TIMEOUT
        while len(up.held) < SLOW_HANGING and time.monotonic() < limit:
            time.sleep(0.02)
        assert len(up.held) == SLOW_HANGING, f"the upstream holds {len(up.held)} of {SLOW_HANGING}"
        # While they hang: the gate's own route, a denial, and a forwarded request all answer at once.
        t0 = time.monotonic()
        h = exchange(m.port, request_bytes("GET", "/healthz", with_key()), timeout=SLOW_TIMEOUT)
        d = exchange(m.port, request_bytes("GET", "/v1/models", [(b"Host", b"gate")]), timeout=SLOW_TIMEOUT)
        f = exchange(m.port, request_bytes("GET", "/fast", with_key()), timeout=SLOW_TIMEOUT)
        during = time.monotonic() - t0
        assert h.status == 200, h.describe()
        assert d.status == 401, d.describe()
        assert f.status == 200 and f.json()["upstream"] == "faulty", f.describe()
        assert during < SLOW_TIMEOUT, f"the gate took {during:.2f}s for three requests while others hung"
    finally:
        for t in threads:
            t.join(SLOW_TIMEOUT + IO_TIMEOUT)
    assert len(hung) == SLOW_HANGING
    for a in hung:
        error = upstream_failure(a, 504, "upstream_timeout", "slow upstream")
        assert f"{SLOW_TIMEOUT:g} s (upstream.timeout)" in error["message"]
        assert SLOW_TIMEOUT - 0.2 < a.elapsed < SLOW_TIMEOUT + 2.0, a.describe()
    report(capsys, "robustness",
           f"slow upstream (upstream.timeout {SLOW_TIMEOUT:g} s): the client gets "
           f"{hung[0].describe()}; the gate answered /healthz, a 401 and a forwarded request in "
           f"{during:.2f}s meanwhile")
    # The gate closed the upstream connections it gave up on.
    limit = time.monotonic() + 5.0
    while len(up.peer_closed) < SLOW_HANGING and time.monotonic() < limit:
        time.sleep(0.05)
    assert len(up.peer_closed) == SLOW_HANGING, f"{len(up.peer_closed)} of {SLOW_HANGING} upstream connections closed"
    healthy(m, "a slow upstream")


@pytest.fixture
def never_accepts():
    """A loopback listener with a full backlog: connecting to it stalls (the SYN is dropped)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(4):  # more than the backlog holds
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(address)
        fillers.append(c)
    probe = socket.socket()
    probe.settimeout(0.5)
    try:
        probe.connect(address)
        pytest.skip("this kernel completes connects to a full backlog: no stalled connect to test")
    except (socket.timeout, OSError):
        pass
    finally:
        probe.close()
    yield f"http://127.0.0.1:{address[1]}"
    for c in fillers:
        c.close()
    listener.close()


def test_upstream_connect_that_stalls_gets_json_504(gate, never_accepts):
    m = gate(config_text("strict", KEY, never_accepts, upstream_timeout=SLOW_TIMEOUT))
    a = exchange(m.port, request_bytes("GET", "/v1/models", with_key()), timeout=SLOW_TIMEOUT + IO_TIMEOUT)
    upstream_failure(a, 504, "upstream_timeout", "a connect that stalls")
    assert SLOW_TIMEOUT - 0.2 < a.elapsed < SLOW_TIMEOUT + 2.0, a.describe()
    healthy(m, "an upstream that never accepts")


def test_client_that_gives_up_first_frees_the_upstream_connection(gate, faulty):
    up = faulty("slow")
    m = gate(config_text("strict", KEY, up.url))  # the default upstream.timeout: minutes
    a = exchange(m.port, request_bytes("GET", "/slow/1", with_key()), timeout=1.0)
    assert a.ended == "timeout", a.describe()
    limit = time.monotonic() + 5.0
    while not up.peer_closed and time.monotonic() < limit:
        time.sleep(0.05)
    assert up.peer_closed == up.held, "the gate kept the upstream connection after its client left"
    healthy(m, "a client that gave up")
