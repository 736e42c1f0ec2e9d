"""Issue #20: the request target as hyper/httparse/http read it, credentials in the query, and v4's
path hardening, against a live `mitmdump -s addon/auth.py` and an upstream that records every
request and connection (upstreams.Recorder).

The original (Cargo.lock: hyper 1.8.1, httparse 1.10.1, http 1.4.0; notes B4-B7, F, "Paths"):
the fragment is cut before anything reads the path (http uri/path.rs:48-51, 117-119); control
bytes, DEL, a tab or bytes that are not UTF-8 in the target are a 400 (httparse lib.rs:69-71,
911-931; hyper role.rs:194-203, 463-483), and so are <, > and ` in the path, ", < and > in the
query (http path.rs:56-111); the 101st header field is a 431 (role.rs:31, httparse lib.rs:1044,
1223-1226); a target over 65,534 bytes a 414 (role.rs:34, 172-174). The original never reads a
`key` query parameter (auth.rs:65-75, 114-131): the gate keeps every form of it home. It matches
raw paths (axum path_router.rs:334-387): the gate's v4 hardening is a documented difference.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its module ends.
"""

from __future__ import annotations

import json

import pytest

from hardening_probes import AUTH, KEY, K
from live import Gates, config_text
from live_fixtures import confdir  # noqa: F401
from protocol_probes import HYPER_400, hyper_answer, talk_until_closed
from raw_http import raw_exchange, request
from upstreams import Recorder

PWD = "admin-pass-0123456789"


@pytest.fixture(scope="module")
def recorder():
    with Recorder() as r:
        yield r


@pytest.fixture(scope="module")
def gates(tmp_path_factory, confdir):
    with Gates(tmp_path_factory.mktemp("target"), confdir) as start:
        yield start


@pytest.fixture(scope="module")
def aeh(gates, recorder):
    return gates(config_text("all_except_health", KEY, recorder.url))


@pytest.fixture(scope="module")
def bare(gates, recorder):
    return gates(config_text("strict", KEY, recorder.url), "--set", "auth_explain=false")


@pytest.fixture(scope="module")
def v4(gates, recorder):
    return gates(config_text("strict", KEY, recorder.url, extra=f"  profile: v4\n  admin_password: {PWD}"))


@pytest.fixture(scope="module")
def v4_off(gates, recorder):
    return gates(config_text("off", KEY, recorder.url, extra=f"  profile: v4\n  admin_password: {PWD}"))


def _forwarded(recorder: Recorder, before: int) -> list[str]:
    return [r["line"] for r in recorder.requests[before:]]


# ====================================================================== the fragment

def test_the_fragment_is_cut_before_the_decision_and_never_forwarded(aeh, v4, recorder):
    before = len(recorder.requests)
    status, _, body = raw_exchange(aeh.port, request(b"GET", b"/healthz#x", []))
    assert (status, json.loads(body)) == (200, {"status": "ok"})  # before: 401 (the path was "/healthz#x")
    status, _, _ = raw_exchange(aeh.port, request(b"GET", b"/v1/models?a=1#frag", [AUTH]))
    assert status == 200 and _forwarded(recorder, before) == ["GET /v1/models?a=1 HTTP/1.1"]
    # v4 strict with an admin_password: /api/accounts#x is the admin route, so the api_key is refused
    # (auth.rs:146-149); before, the gate judged "/api/accounts#x" by the proxy rules and passed it
    status, _, body = raw_exchange(v4.port, request(b"GET", b"/api/accounts#x", [AUTH]))
    assert status == 401 and json.loads(body)["auth_gate"]["reason"] == "admin_api_key_refused"
    assert len(recorder.requests) == before + 1


# ====================================================================== what httparse and http refuse

BAD_TARGETS = [b"/v1/mo\x00dels", b"/v1/mo\x1bdels", b"/v1/mo\x7fdels", b"/v1/mo\tdels", b"/v1/mo\x01dels",
               b"/v1/mo\xffdels", b"/v1/<models>", b"/v1/`models", b'/v1/models?a="b"', b"/v1/models?a=<b>"]


def test_what_the_original_parser_refuses_in_the_target_is_a_400(aeh, bare, v4, recorder):
    before, conns = len(recorder.requests), recorder.connections
    for target in BAD_TARGETS:
        raw = request(b"GET", target, [AUTH])
        status, headers, body = raw_exchange(aeh.port, raw)
        assert status == 400 and json.loads(body)["error"]["code"] == "invalid_request_target", (target, body)
        assert headers["connection"] == "close"
        out, ended = talk_until_closed(bare.port, raw)
        assert HYPER_400.fullmatch(out) and ended == "closed", (target, out)
    # under v4, /internal/ needs no key: a NUL in the path once let this through to the upstream
    status, _, _ = raw_exchange(v4.port, request(b"POST", b"/internal/x\x00/v1/models", [], b"{}"))
    assert status == 400
    assert _forwarded(recorder, before) == [] and recorder.connections == conns
    assert aeh.wait_for("request head refused by the auth gate (bad target)")


def test_what_the_original_parser_takes_goes_on(aeh, recorder):
    before = len(recorder.requests)
    for target in ("/v1/mod\u00e8ls".encode(), b'/v1/"{x}"', b"/v1/models?a=`{}|^", b"/v1/models#<>\"`"):
        status, _, _ = raw_exchange(aeh.port, request(b"GET", target, [AUTH]))
        assert status == 200, target
    assert len(recorder.requests) == before + 4
    assert recorder.requests[before]["path"] == "/v1/mod\u00e8ls".encode().decode("latin-1")
    assert recorder.requests[-1]["path"] == "/v1/models"


def test_more_than_100_header_fields_is_a_431(aeh, bare, recorder):
    before = len(recorder.requests)
    fields = [(b"X-F%d" % i, b"v") for i in range(97)]  # + Host, Authorization, Connection: 100
    status, _, _ = raw_exchange(aeh.port, request(b"GET", b"/v1/models", [AUTH, *fields]))
    assert status == 200 and len(recorder.requests) == before + 1
    many = request(b"GET", b"/v1/models", [AUTH, *fields, (b"X-F101", b"v")])
    status, _, body = raw_exchange(aeh.port, many)
    assert status == 431 and json.loads(body)["error"]["code"] == "request_header_fields_too_large"
    out, _ = talk_until_closed(bare.port, many)
    assert hyper_answer(431, "Request Header Fields Too Large").fullmatch(out), out
    assert len(recorder.requests) == before + 1


def test_a_target_over_65534_bytes_is_a_414(aeh, bare, recorder):
    before = len(recorder.requests)
    status, _, _ = raw_exchange(aeh.port, request(b"GET", b"/" + b"a" * 65533, []))
    assert status == 401  # decided: hyper took it
    long = request(b"GET", b"/" + b"a" * 65534, [])
    status, _, body = raw_exchange(aeh.port, long)
    assert status == 414 and json.loads(body)["error"]["code"] == "uri_too_long"
    out, _ = talk_until_closed(bare.port, long)
    assert hyper_answer(414, "URI Too Long").fullmatch(out), out
    assert len(recorder.requests) == before


def test_a_request_line_the_original_refuses_is_a_400(bare, recorder):
    before = len(recorder.requests)
    for line in (b"GET /v1/models HTTP/2.0", b"GET  /v1/models HTTP/1.1", b"G(T /v1/models HTTP/1.1",
                 b"GET /v1/models HTTP/1.1 ", b"GET /a b HTTP/1.1"):
        out, _ = talk_until_closed(bare.port, line + b"\r\nHost: x\r\nAuthorization: Bearer " + K + b"\r\n\r\n")
        assert HYPER_400.fullmatch(out), (line, out)
    assert len(recorder.requests) == before


# ====================================================================== `key` in the query

def test_every_form_of_a_key_parameter_stays_home(aeh, recorder):
    before = len(recorder.requests)
    key = KEY.encode()
    for query in (b"key[]=" + key, b"a=1;key=" + key, b"%20key=" + key, b"%256Bey=" + key, b"key%5B0%5D=" + key,
                  b"a=1&KEY=" + key + b";b=2"):
        status, _, _ = raw_exchange(aeh.port, request(b"GET", b"/v1beta/models?" + query, [AUTH]))
        assert status == 200, query
    seen = [r["path"] for r in recorder.requests[before:]]
    assert seen == ["/v1beta/models", "/v1beta/models?a=1", *["/v1beta/models"] * 3, "/v1beta/models?a=1;b=2"], seen
    assert all(KEY not in json.dumps(r["headers"]) for r in recorder.requests[before:])
    assert KEY not in "\n".join(line for line in aeh.output.splitlines() if "auth gate" in line or " · " in line)


# ====================================================================== v4: dot segments and admin routes

def test_v4_dot_segments_in_any_encoding_get_no_internal_exemption(v4, recorder):
    before, conns = len(recorder.requests), recorder.connections
    for path in (b"/internal/..;/v1/models", b"/internal/..%00/v1/models", b"/internal/..%20/v1/models",
                 b"/internal/%c0%ae%c0%ae/v1/models", "/internal/\uff0e\uff0e/v1/models".encode(),
                 b"/internal/%ef%bc%8e%ef%bc%8e/v1/models", b"/internal//v1/models"):
        status, _, body = raw_exchange(v4.port, request(b"POST", path, [], b"{}"))
        assert status == 401, (path, status, body[:200])
        assert "internal_dot_segments" in json.loads(body)["auth_gate"]["notes"], path
    assert _forwarded(recorder, before) == [] and recorder.connections == conns
    status, _, _ = raw_exchange(v4.port, request(b"POST", b"/internal/warmup", [], b"{}"))
    assert status == 200 and _forwarded(recorder, before) == ["POST /internal/warmup HTTP/1.1"]


def test_v4_paths_that_may_become_admin_routes_need_the_admin_password(v4_off, recorder):
    """Off mode with an admin_password: the original 404s these (no route matches the raw path);
    an upstream that normalises them would serve /api/accounts without a key."""
    before = len(recorder.requests)
    paths = (b"/api/x/../accounts", b"/api/./accounts", b"/api//accounts", b"/api/accounts/", b"/api/%61ccounts")
    for path in paths:
        status, _, body = raw_exchange(v4_off.port, request(b"GET", path, []))
        gate = json.loads(body)["auth_gate"]
        assert status == 401 and gate["surface"] == "admin" and "admin_normalised" in gate["notes"], (path, gate)
    assert _forwarded(recorder, before) == []
    for path in paths:
        status, _, _ = raw_exchange(v4_off.port, request(b"GET", path, [(b"Authorization", b"Bearer " + PWD.encode())]))
        assert status == 200, path
    assert len(recorder.requests) == before + len(paths)
    assert all(PWD not in json.dumps(r["headers"]) for r in recorder.requests[before:])
