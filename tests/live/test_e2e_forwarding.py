"""End to end, what reaches the upstream: a passing request without its key headers (off mode too),
upstream.url's path prefix, absolute-form to upstream.url only, CONNECT refused; and an upstream
that is down, stops or is too slow: the gate's JSON 502/504, its own routes still answered. Real
`mitmdump -s addon/auth.py` on an ephemeral loopback port; a shared strict gate for the tests that
only read.

Everything stays on 127.0.0.1 and every socket call has a timeout.
"""

from __future__ import annotations

import time

import pytest

from e2e_gates import KEY, assert_never_logged_the_key, bearer, confdir, echo, start, start_shared, strict  # noqa: F401
from live import closed_port, config_text
from upstreams import Upstream

# ====================================================================== forwarding

def test_passing_request_reaches_upstream_without_key_headers(strict, echo):
    r = strict.send("POST", "/v1/chat/completions?stream=false",
                    [bearer(), ("x-api-key", "sk-ignored"), ("x-goog-api-key", "sk-ignored2"),
                     ("X-Custom", "kept"), ("Content-Type", "application/json")],
                    body=b'{"model": "m"}', host="client.example")
    assert r.from_echo
    seen = r.json()
    assert seen["method"] == "POST" and seen["path"] == "/v1/chat/completions?stream=false"
    assert seen["body_bytes"] == len(b'{"model": "m"}')
    hdrs = r.echo_headers()
    for name in ("authorization", "x-api-key", "x-goog-api-key"):
        assert name not in hdrs, name
    assert hdrs["host"] == [f"127.0.0.1:{echo.port}"]
    assert hdrs["x-custom"] == ["kept"]
    assert KEY not in r.body.decode()
    # the proxy adds CORS on forwarded responses too
    assert r.header("access-control-allow-origin") == "*"


def test_key_headers_are_stripped_in_off_mode_too(start, echo):
    m = start(config_text("off", KEY, echo.url))
    r = m.send("GET", "/v1/models", [bearer("sk-client"), ("X-Api-Key", "a"), ("x-goog-api-key", "b")])
    assert r.from_echo
    assert not {"authorization", "x-api-key", "x-goog-api-key"} & set(r.echo_headers())


def test_upstream_path_prefix(start, echo):
    m = start(config_text("strict", KEY, echo.url + "/base"))
    r = m.send("GET", "/v1/models?x=1", [bearer()])
    assert r.from_echo
    assert r.json()["path"] == "/base/v1/models?x=1"


# ====================================================================== never an open proxy

def test_absolute_form_is_decided_on_its_path_and_goes_to_the_upstream(strict, echo):
    # As the original routes by the URI's path (issue #11; the gate answered 400 before).
    before = list(echo.received)
    for target, path in ((f"http://127.0.0.1:{echo.port}/abs-e2e", "/abs-e2e"), ("http://example.com/", "/")):
        r = strict.send("GET", target, [], host=target.split("/")[2])
        assert r.status == 401 and r.gate["reason"] == "missing", target
        r = strict.send("GET", target, [bearer()], host=target.split("/")[2])
        assert r.from_echo and r.json()["path"] == path, target  # origin-form, to upstream.url
    assert list(echo.received) == before + [("GET", "/abs-e2e"), ("GET", "/")]


def test_connect_is_refused(strict, echo):
    before = list(echo.received)
    for authority in (f"127.0.0.1:{echo.port}", "example.com:443"):
        r = strict.send("CONNECT", authority, [bearer()], host=authority)
        assert 400 <= r.status < 500, authority
    assert list(echo.received) == before


# ====================================================================== upstream down

def test_unreachable_upstream_gives_json_502_and_healthz_still_answers(start):
    dead = f"http://127.0.0.1:{closed_port()}"
    m = start(config_text("all_except_health", KEY, dead))
    t0 = time.monotonic()
    r = m.send("GET", "/v1/models", [bearer()])
    assert time.monotonic() - t0 < 5
    assert r.status == 502
    assert r.header("content-type") == "application/json"
    assert dead in r.message
    assert r.header("access-control-allow-origin") == "*"
    assert m.send("GET", "/healthz").json() == {"status": "ok"}
    # denials do not depend on the upstream either
    assert m.send("GET", "/v1/models").status == 401


def test_slow_demo_upstream_gets_504_after_the_timeout_option(start, echo):
    """What a teacher shows: the demo upstream answers late on request (x-demo-delay), the
    gate gives up after auth_upstream_timeout with a JSON 504; a quicker answer passes."""
    m = start(config_text("strict", KEY, echo.url), "--set", "auth_upstream_timeout=1")
    t0 = time.monotonic()
    r = m.send("GET", "/v1/slow", [bearer(), ("x-demo-delay", "4")])
    waited = time.monotonic() - t0
    assert r.status == 504, r.body[:300]
    assert r.json()["error"]["code"] == "upstream_timeout"
    assert "within 1 s (upstream.timeout)" in r.message
    assert 0.9 < waited < 3.0
    assert m.send("GET", "/v1/quick", [bearer(), ("x-demo-delay", "0.2")]).from_echo


@pytest.mark.parametrize("idle", [0.0, 1.5], ids=["right-after-a-success", "after-idle"])
def test_upstream_that_stops_gives_json_502(start, idle):
    # The spec: "An unreachable upstream gives a 502 JSON error naming the upstream, promptly."
    # That holds whether or not the upstream answered a moment ago.
    e = Upstream()
    try:
        m = start(config_text("strict", KEY, e.url))
        assert m.send("GET", "/v1/models", [bearer()]).from_echo
        e.stop()
        time.sleep(idle)
        r = m.send("GET", "/v1/models", [bearer()])
        assert r.status == 502
        assert r.header("content-type") == "application/json", r.body[:200]
        assert e.url in r.message
        assert m.send("GET", "/healthz", [bearer()]).json() == {"status": "ok"}
    finally:
        e.stop()


# ====================================================================== last: the shared gate's log

def test_the_shared_gate_never_logged_the_key(strict):
    # Runs after every test above that used the shared gate (file order).
    assert_never_logged_the_key(strict)
