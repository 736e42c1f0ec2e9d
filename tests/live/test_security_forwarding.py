"""Security: what reaches the upstream, against a live `mitmdump -s addon/auth.py` and upstreams
that record every request and connection (upstreams.Recorder): the client's credential headers and
`?key=` never, in any mode, whatever their case or count; a request target that is not UTF-8 is
decided like any other; absolute-form goes to upstream.url only, in origin-form, never to the
authority it names; CONNECT and authority-form are refused: not an open proxy.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call and wait is bounded; every
process and thread started here is stopped.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from authgate.rules.common import RequestView
from authgate.rules.decide import decide
from live import config_text
from live_fixtures import confdir, gate, recorder  # noqa: F401
from raw_http import raw_exchange, request
from upstreams import Recorder

KEY = "sk-sec0123456789abcdef0123456789ab"
K = KEY.encode()
WRONG = b"sk-presentedWRONG0123456789abcdef0"  # a long wrong key a client presents
SMART = b"Bearer \xe2\x80\x9c" + K + b"\xe2\x80\x9d"
KEY_HEADER_NAMES = {"authorization", "x-api-key", "x-goog-api-key"}
# Every credential header a client may send: none is ever forwarded (but in shadow mode).
CREDENTIAL_HEADER_NAMES = KEY_HEADER_NAMES | {"proxy-authorization", "x-forwarded-authorization"}


# ====================================================================== the client's key headers stay home

FORWARD_TRIES: list[list[tuple[bytes, bytes]]] = [
    [(b"AUTHORIZATION", b"Bearer " + K), (b"authorization", b"Bearer " + WRONG), (b"X-API-KEY", K),
     (b"x-Api-Key", WRONG), (b"X-GOOG-API-KEY", K), (b"x-goog-api-key", WRONG)],
    [(b"x-api-key", K), (b"x-api-key", K), (b"X-Api-Key", K)],
    [(b"Authorization", SMART), (b"x-goog-api-key", K), (b"X-Goog-Api-Key", K)],
    [(b"aUtHoRiZaTiOn", b"Bearer " + K)],
    [(b"x-api-key", K + b"\xa0"), (b"Authorization", b"Bearer " + K)],
    [(b"Authorization", b"Basic dXNlcjpwYXNzd29yZA==")],
    [(b"X-Goog-Api-Key", WRONG)],
    [],
    [(b"Proxy-Authorization", b"Bearer " + K), (b"x-api-key", K), (b"X-Forwarded-Authorization", b"Bearer " + K)],
    [(b"proxy-authorization", b"Basic " + K), (b"x-forwarded-authorization", K)],
]


@pytest.mark.parametrize("mode, lan", [
    ("off", False), ("strict", False), ("all_except_health", False), ("auto", False), ("auto", True),
], ids=["off", "strict", "all_except_health", "auto-lan_false", "auto-lan_true"])
def test_client_key_headers_are_never_forwarded(gate, recorder, mode, lan):
    extra = ("--mode", f"reverse:{recorder.url}@127.0.0.1:0") if lan else ()  # loopback, never *:8080 first
    m = gate(config_text(mode, KEY, recorder.url, lan=lan), *extra)
    policy = SimpleNamespace(auth_mode=mode, allow_lan_access=lan, api_key=KEY, profile="faq")
    forwarded = 0
    for i, headers in enumerate(FORWARD_TRIES):
        for method, body in ((b"GET", None), (b"POST", b'{"x": 1}')):
            marker = f"/fwd/{mode}/{i}/{method.decode()}"
            target = f"{marker}?key={KEY}&n={i}" if i % 2 else marker  # and the key in the query, as Gemini's
            wire_headers = [(b"Host", b"gate.test"), *headers]
            if body is not None:
                wire_headers.append((b"Content-Length", str(len(body)).encode()))
            d = decide(RequestView(method.decode(), target, tuple(wire_headers)), policy)
            status, _, _ = raw_exchange(m.port, request(method, target.encode(), headers, body))
            got = recorder.find(marker)
            if d.allowed:
                forwarded += 1
                assert status == 200, f"{marker}: {status}"
                assert len(got) == 1, f"{marker}: the upstream saw it {len(got)} times"
                names = {n.lower() for n, _ in got[0]["headers"]}
                assert not names & KEY_HEADER_NAMES, f"{marker}: forwarded {sorted(names & KEY_HEADER_NAMES)}"
                assert not names & CREDENTIAL_HEADER_NAMES, f"{marker}: forwarded {sorted(names)}"
                values = " ".join(v for _, v in got[0]["headers"])
                assert KEY not in values and WRONG.decode() not in values
                assert KEY not in got[0]["line"] and got[0]["path"] == target.replace(f"key={KEY}&", "")
                assert got[0]["body"] == (body or b"")
            else:
                assert status == 401, f"{marker}: {status}"
                assert got == [], f"{marker}: a denied request reached the upstream"
    assert forwarded >= 10  # every mode lets the right-key tries through (off: all of them)


def test_undecodable_request_target_does_not_bypass_auth(gate, recorder):
    """Bytes in the request target that are not UTF-8 (say a Latin-1 é) must be decided like any other
    request: without the key, 401, and nothing (least of all the client's key header) forwarded."""
    m = gate(config_text("strict", KEY, recorder.url))
    results = {}
    for target in (b"/v1/models?q=caf\xe9", b"/\xff\xfe/secret"):
        for headers in ([], [(b"Authorization", b"Bearer " + WRONG)]):
            status, _, _ = raw_exchange(m.port, request(b"GET", target, headers))
            results[(target, bool(headers))] = status
    leaked = [(r["line"], [n for n, _ in r["headers"]]) for r in recorder.requests]
    assert not leaked, (f"requests without the key reached the upstream (statuses {results}): {leaked}\n"
                        + "\n".join(line for line in m.lines if "Error" in line or "error" in line)[:2000])
    assert all(s in (400, 401) for s in results.values()), results
    # and the right key too: a target that is not UTF-8 is the original's 400 before any auth
    # (httparse lib.rs:923-926, issue #20); valid UTF-8 passes
    right = [(b"Authorization", b"Bearer " + K)]
    status, _, _ = raw_exchange(m.port, request(b"GET", b"/v1/models?q=caf\xe9", right))
    assert status == 400 and recorder.requests == []
    status, _, _ = raw_exchange(m.port, request(b"GET", "/v1/models?q=café".encode(), right))
    assert status == 200 and len(recorder.requests) == 1


# ====================================================================== not an open proxy

@pytest.fixture
def decoy():
    """A second recording server: the authority absolute-form requests name. Nothing may reach it."""
    r = Recorder()
    yield r
    r.stop()


@pytest.mark.parametrize("mode", ["off", "strict"])
def test_absolute_form_goes_to_the_upstream_only_and_connect_is_refused(gate, recorder, decoy, mode):
    """Absolute-form is decided on its path, as the original routes by the URI's path, and goes
    to upstream.url in origin-form, never to the authority it names (until issue #11: a 400).
    CONNECT and authority-form stay refused: not an open proxy."""
    m = gate(config_text(mode, KEY, recorder.url))
    up = f"127.0.0.1:{recorder.port}".encode()
    elsewhere = f"127.0.0.1:{decoy.port}".encode()
    policy = SimpleNamespace(auth_mode=mode, allow_lan_access=False, api_key=KEY, profile="faq")
    auth = [(b"Authorization", b"Bearer " + K)]
    absolute = [
        (b"GET", b"http://" + up + b"/abs/1", up, None),
        (b"GET", b"http://" + elsewhere + b"/abs/2?x=1", elsewhere, None),
        (b"GET", b"https://" + elsewhere + b"/abs/3", elsewhere, None),
        (b"POST", b"http://" + elsewhere + b"/abs/4", elsewhere, b"{}"),
        (b"OPTIONS", b"http://" + elsewhere + b"/abs/5", elsewhere, None),
        (b"GET", b"http://example.com/abs/6", b"example.com", None),
        (b"GET", f"http://127.0.0.1:{m.port}/healthz".encode(), f"127.0.0.1:{m.port}".encode(), None),
    ]
    for method, target, host, body in absolute:
        path = b"/" + target.split(b"/", 3)[3]
        for headers in ([], auth):
            status, hdrs, payload = raw_exchange(m.port, request(method, target, headers, body, host=host))
            d = decide(RequestView(method.decode(), path.decode(), ((b"Host", host), *headers)), policy)
            what = f"{mode}: {method.decode()} {target.decode()} {'with' if headers else 'without'} the key"
            assert status == (200 if d.allowed and d.route == "upstream" else d.status), f"{what}: {payload[:200]!r}"
            seen = [r for r in recorder.requests if r["path"] == path.decode()]
            if d.allowed and d.route == "upstream":
                assert seen[-1]["line"] == f"{method.decode()} {path.decode()} HTTP/1.1", what  # origin-form
                assert dict((n.lower(), v) for n, v in seen[-1]["headers"])["host"] == up.decode()
            else:
                assert not seen, f"{what}: reached the upstream"
    for authority in (up, elsewhere, b"example.com:443", f"127.0.0.1:{m.port}".encode()):
        for headers in ([], auth):
            tunnelled = b"GET /through-the-tunnel HTTP/1.1\r\nHost: x\r\n\r\n"
            connect = request(b"CONNECT", authority, headers, host=authority)
            status, _, payload = raw_exchange(m.port, connect + tunnelled)
            assert status is None or 400 <= status < 500, \
                f"{mode}: CONNECT {authority.decode()}: {status} {payload[:200]!r}"
        # authority-form without CONNECT: mitmproxy refuses the request line
        status, _, _ = raw_exchange(m.port, request(b"GET", authority, auth, host=authority))
        assert status is None or 400 <= status < 500
    assert not recorder.find("/through-the-tunnel")
    assert decoy.requests == [] and decoy.connections == 0  # the named authority never saw a thing
    # origin-form still works, and goes to the configured upstream whatever Host says
    status, _, _ = raw_exchange(m.port, request(b"GET", b"/origin-form", auth, host=b"example.com"))
    assert status == 200
    (seen,) = recorder.find("/origin-form")
    assert dict((n.lower(), v) for n, v in seen["headers"])["host"] == f"127.0.0.1:{recorder.port}"
