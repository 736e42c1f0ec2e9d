"""End to end: real `mitmdump -s addon/auth.py` on an ephemeral loopback port, a real echo upstream,
real HTTP on the wire (raw bytes where a header must be non-ASCII or repeated).

Shared proxies serve the tests that only read; hot reload, key generation and start-up errors get
their own. Everything stays on 127.0.0.1 and every socket call has a timeout.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
import yaml

from live import Gate, Gates, Upstream, closed_port, config_text, send, write_config

KEY = "sk-e2e0123456789abcdef0123456789ab"  # never expected in mitmdump's output
OTHER_KEY = "sk-e2eOTHERfedcba9876543210fedcba9"
EMPTY_KEY_LOG = "Proxy auth is enabled but api_key is empty; denying request"


def bearer(key: str = KEY) -> tuple[str, str]:
    return ("Authorization", f"Bearer {key}")


# ====================================================================== fixtures

@pytest.fixture(scope="module")
def confdir(tmp_path_factory) -> Path:
    # mitmproxy's own confdir (CA, options file): isolated from ~/.mitmproxy, made once.
    return tmp_path_factory.mktemp("mitmconf")


@pytest.fixture(scope="module")
def echo():
    with Upstream() as e:
        yield e


@pytest.fixture(scope="module")
def start_shared(tmp_path_factory, confdir):
    """Start module-lifetime proxies (for tests that only read)."""
    with Gates(tmp_path_factory.mktemp("shared"), confdir) as start:
        yield start


@pytest.fixture
def start(tmp_path, confdir):
    """Start a proxy for one test; it is stopped (terminate, then kill) afterwards."""
    with Gates(tmp_path, confdir) as start:
        yield start


@pytest.fixture(scope="module")
def strict(start_shared, echo) -> Gate:
    return start_shared(config_text("strict", KEY, echo.url))


@pytest.fixture(scope="module")
def aeh(start_shared, echo) -> Gate:
    return start_shared(config_text("all_except_health", KEY, echo.url))


# ====================================================================== FAQ step 1-2: the effective-mode table

@pytest.mark.parametrize("mode, lan, effective, health, models", [
    ("off", False, "off", 200, 200),
    ("strict", False, "strict", 401, 401),
    ("all_except_health", False, "all_except_health", 200, 401),
    ("auto", False, "off", 200, 200),
    ("auto", True, "all_except_health", 200, 401),
], ids=["off", "strict", "all_except_health", "auto-lan_false", "auto-lan_true"])
def test_effective_mode_table(start, echo, mode, lan, effective, health, models):
    # allow_lan_access=true would bind 0.0.0.0: pin the listener to loopback explicitly.
    extra = ("--set", "listen_host=127.0.0.1") if lan else ()
    m = start(config_text(mode, KEY, echo.url, lan=lan), *extra)
    assert m.host == "127.0.0.1"
    h = m.send("GET", "/healthz")
    assert h.status == health
    if health == 200:
        assert h.json() == {"status": "ok"}
    else:
        assert h.gate["effective_mode"] == effective
    r = m.send("GET", "/v1/models")
    assert r.status == models
    if models == 200:
        assert r.from_echo and r.json()["path"] == "/v1/models"
    else:
        assert r.gate["effective_mode"] == effective
        assert r.gate["reason"] == "missing"
    # with the key, everything passes in every mode
    assert m.send("GET", "/v1/models", [bearer()]).from_echo


def test_listens_on_loopback_by_default(strict):
    assert strict.host == "127.0.0.1"


# ====================================================================== FAQ pitfalls table

def test_pitfall_auto_with_lan_access_denies_localhost(start, echo):
    m = start(config_text("auto", KEY, echo.url, lan=True), "--set", "listen_host=127.0.0.1")
    r = m.send("GET", "/v1/models", host="localhost")
    assert r.status == 401
    assert r.gate["configured_mode"] == "auto" and r.gate["effective_mode"] == "all_except_health"
    assert "allow_lan_access=true" in r.message


def test_pitfall_wrong_authorization_shadows_right_x_api_key(strict, echo):
    r = strict.send("GET", "/v1/models", [bearer("sk-wrong"), ("x-api-key", KEY)])
    assert r.status == 401
    assert "Key header read: Authorization won" in r.message
    assert "x-api-key holds the right key" in r.message
    assert r.gate["winner"] == "Authorization" and r.gate["shadowed"] == "x-api-key"
    assert KEY not in r.body.decode()


def test_right_authorization_wins_over_wrong_x_api_key(strict):
    assert strict.send("GET", "/v1/models", [bearer(), ("x-api-key", "sk-wrong")]).from_echo


def test_pitfall_bearer_without_space(strict):
    r = strict.send("GET", "/v1/models", [("Authorization", f"Bearer{KEY}")])
    assert r.status == 401
    assert r.gate["reason"] == "bearer_no_space"
    assert "without a space" in r.message and "Bearer <key>" in r.message
    assert KEY not in r.body.decode()


def test_pitfall_empty_api_key_denies_everything_and_logs(start, echo):
    m = start(config_text("strict", "", echo.url))
    before = len(echo.received)
    for headers in ([], [bearer("")], [bearer("anything")], [("x-api-key", "sk-x")], [("Authorization", "")]):
        for path in ("/v1/models", "/healthz"):
            r = m.send("GET", path, headers)
            assert r.status == 401, (path, headers)
            assert r.gate["reason"] == "empty_api_key"
    assert m.wait_for(EMPTY_KEY_LOG)
    line = next(line for line in m.lines if EMPTY_KEY_LOG in line)
    assert re.fullmatch(r"(\[[^\]]*\]\s*)*" + re.escape(EMPTY_KEY_LOG), line), line
    assert len(echo.received) == before  # nothing was forwarded


def test_empty_api_key_all_except_health_still_serves_healthz(start, echo):
    m = start(config_text("all_except_health", "", echo.url))
    assert m.send("GET", "/healthz").status == 200
    r = m.send("GET", "/v1/models", [bearer("")])
    assert r.status == 401 and r.gate["reason"] == "empty_api_key"
    assert m.wait_for(EMPTY_KEY_LOG)


# ====================================================================== header details

@pytest.mark.parametrize("value, reason", [
    (f"bearer {KEY}", "bearer_lowercase"),
    (f"Bearer  {KEY}", "bearer_extra_space"),
    (f"BEARER {KEY}", "bearer_lowercase"),
    ("Bearer sk-wrong", "mismatch"),
    ("Bearer ", "empty_value"),
])
def test_authorization_spellings_that_fail(strict, value, reason):
    r = strict.send("GET", "/v1/models", [("Authorization", value)])
    assert r.status == 401
    assert r.gate["reason"] == reason and r.gate["winner"] == "Authorization"
    assert KEY not in r.body.decode()


def test_authorization_without_bearer_prefix_equal_to_key_passes(strict):
    assert strict.send("GET", "/v1/models", [("Authorization", KEY)]).from_echo


@pytest.mark.parametrize("name", ["x-api-key", "x-goog-api-key", "X-API-KEY", "X-Goog-Api-Key"])
def test_other_key_headers_alone_pass(strict, name):
    assert strict.send("GET", "/v1/models", [(name, KEY)]).from_echo


def test_header_names_case_insensitive(strict):
    assert strict.send("GET", "/v1/models", [("AUTHORIZATION", f"Bearer {KEY}")]).from_echo


def test_x_api_key_beats_x_goog_api_key(strict):
    r = strict.send("GET", "/v1/models", [("x-goog-api-key", KEY), ("x-api-key", "sk-wrong")])
    assert r.status == 401
    assert r.gate["winner"] == "x-api-key" and r.gate["shadowed"] == "x-goog-api-key"
    assert r.gate["headers"]["Authorization"] == "absent"


NON_ASCII = b"Bearer \xe2\x80\x9c" + KEY.encode() + b"\xe2\x80\x9d"  # smart quotes around the key


def test_non_ascii_authorization_is_skipped_for_next_header(strict):
    r = strict.send("GET", "/v1/models", [(b"Authorization", NON_ASCII), (b"x-api-key", KEY.encode())])
    assert r.from_echo, r.body


def test_non_ascii_authorization_alone_is_401_saying_non_ascii(strict):
    r = strict.send("GET", "/v1/models", [(b"Authorization", NON_ASCII)])
    assert r.status == 401
    assert r.gate["reason"] == "non_ascii" and r.gate["winner"] is None
    assert r.gate["skipped_non_ascii"] == ["Authorization"]
    assert "non-ASCII" in r.message
    # no credential was read: no error="invalid_token"
    assert r.header("www-authenticate") == 'Bearer realm="antigravity-proxy"'


def test_non_ascii_nbsp_in_x_api_key_counts_as_absent(strict):
    r = strict.send("GET", "/v1/models", [(b"x-api-key", KEY.encode() + b"\xa0"), (b"x-goog-api-key", b"sk-wrong")])
    assert r.status == 401 and r.gate["winner"] == "x-goog-api-key"
    assert strict.send("GET", "/v1/models", [(b"x-api-key", b"\xa0" + KEY.encode()),
                                             (b"x-goog-api-key", KEY.encode())]).from_echo


def test_tab_is_visible_enough(strict):
    # A tab inside the value is allowed by to_str(); the key then simply does not match.
    r = strict.send("GET", "/v1/models", [(b"x-api-key", b"sk\tx"), (b"x-goog-api-key", KEY.encode())])
    assert r.status == 401 and r.gate["winner"] == "x-api-key"


@pytest.mark.parametrize("first, second, passes", [
    ("sk-wrong", KEY, False),
    (KEY, "sk-wrong", True),
])
@pytest.mark.parametrize("name", ["x-api-key", "Authorization"])
def test_repeated_header_counts_by_first_value(strict, name, first, second, passes):
    fmt = (lambda k: f"Bearer {k}") if name == "Authorization" else (lambda k: k)
    r = strict.send("GET", "/v1/models", [(name, fmt(first)), (name, fmt(second))])
    if passes:
        assert r.from_echo
    else:
        assert r.status == 401 and r.gate["reason"] == "mismatch" and r.gate["winner"] == name


def test_denial_log_line_is_the_flow_comment(strict):
    r = strict.send("GET", "/v1/models?e2e=comment", [("x-api-key", "sk-wrong")])
    assert r.status == 401
    assert strict.wait_for("401 · strict · x-api-key won (Authorization absent) · key mismatch — GET /v1/models?e2e=comment")


# ====================================================================== OPTIONS, /healthz

@pytest.mark.parametrize("path", ["/v1/models", "/healthz"])
def test_options_preflight_passes_in_strict(strict, echo, path):
    before = len(echo.received)
    r = strict.send("OPTIONS", path, [("Origin", "http://example.test"),
                                      ("Access-Control-Request-Method", "POST"),
                                      ("Access-Control-Request-Headers", "authorization, content-type")])
    assert r.status == 200
    assert r.header("access-control-allow-origin") == "*"
    assert r.header("access-control-max-age") == "3600"
    assert "POST" in r.header("access-control-allow-methods")
    assert r.header("access-control-allow-headers")
    assert len(echo.received) == before  # answered by the proxy itself


@pytest.mark.parametrize("path, status", [
    ("/healthz", 200),
    ("/healthz?x=1", 200),
    ("/healthz/", 401),
    ("/HEALTHZ", 401),
    ("/health", 401),
    ("/healthz/x", 401),
])
def test_healthz_exemption_is_exact_path(aeh, path, status):
    r = aeh.send("GET", path)
    assert r.status == status, path
    if status == 200:
        assert r.json() == {"status": "ok"}
        assert r.header("content-type") == "application/json"
        assert r.header("access-control-allow-origin") == "*"


def test_healthz_is_answered_by_the_proxy_not_forwarded(aeh, echo):
    before = len(echo.received)
    assert aeh.send("GET", "/healthz").json() == {"status": "ok"}
    h = aeh.send("HEAD", "/healthz")
    assert h.status == 200 and h.body == b""
    assert [p for _, p in list(echo.received)[before:] if p.startswith("/healthz")] == []


def test_post_healthz_is_405(aeh, strict):
    r = aeh.send("POST", "/healthz", body=b"{}")
    assert r.status == 405
    assert "GET" in (r.header("allow") or "")
    assert r.header("access-control-allow-origin") == "*"
    # strict: /healthz needs the key first, then the method is refused
    assert strict.send("POST", "/healthz", body=b"{}").status == 401
    assert strict.send("POST", "/healthz", [bearer()], body=b"{}").status == 405


def test_strict_healthz_with_key_is_200(strict):
    assert strict.send("GET", "/healthz", [bearer()]).json() == {"status": "ok"}


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


# ====================================================================== the crafted 401

def test_www_authenticate_error_only_when_a_key_was_presented(strict):
    no_key = strict.send("GET", "/v1/models")
    assert no_key.status == 401
    assert no_key.header("www-authenticate") == 'Bearer realm="antigravity-proxy"'
    assert no_key.header("access-control-allow-origin") == "*"
    assert no_key.header("content-type") == "application/json"
    wrong = strict.send("GET", "/v1/models", [bearer("sk-wrong")])
    assert wrong.status == 401
    assert 'error="invalid_token"' in wrong.header("www-authenticate")
    assert wrong.header("www-authenticate").startswith("Bearer realm=")


@pytest.mark.parametrize("path, headers, shape", [
    ("/v1/models", [bearer("sk-wrong")], "openai"),
    ("/v1/messages", [("x-api-key", "sk-wrong")], "anthropic"),
    ("/v1beta/models", [("x-goog-api-key", "sk-wrong")], "google"),
])
def test_401_body_in_the_sdk_shape(strict, path, headers, shape):
    r = strict.send("POST", path, headers, body=b"{}")
    assert r.status == 401
    body = r.json()
    if shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    elif shape == "google":
        assert body["error"]["status"] == "UNAUTHENTICATED" and body["error"]["code"] == 401
    else:
        assert body["error"]["code"] == "invalid_api_key"
    assert "Fix:" in body["error"]["message"]


def test_auth_explain_false_gives_bare_401(start, echo):
    m = start(config_text("strict", KEY, echo.url), "--set", "auth_explain=false")
    r = m.send("GET", "/v1/models", [bearer("sk-wrong")])
    assert r.status == 401 and r.body == b""
    assert r.header("access-control-allow-origin") == "*"
    assert m.send("GET", "/v1/models", [bearer()]).from_echo


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


# ====================================================================== secrets stay out of the output

def test_full_key_never_in_mitmdump_output(start, echo):
    m = start(config_text("strict", KEY, echo.url))
    half = KEY[: len(KEY) // 2]
    tries = [
        [bearer()], [("x-api-key", KEY)], [("x-goog-api-key", KEY)], [("Authorization", KEY)],
        [bearer(OTHER_KEY)], [("x-api-key", OTHER_KEY)], [bearer("sk-wrong"), ("x-api-key", KEY)],
        [("Authorization", f"Bearer{KEY}")], [("Authorization", f"bearer {KEY}")],
        [(b"Authorization", NON_ASCII)], [bearer(KEY + "x")], [bearer(half)],
    ]
    for headers in tries:
        for method, path in (("GET", "/v1/models"), ("GET", "/healthz"), ("OPTIONS", "/v1/models")):
            m.send(method, path, headers)
    out = m.stop()
    assert "401 · strict" in out  # the denials were logged...
    assert KEY not in out  # ...without the key
    assert OTHER_KEY not in out
    # and nothing else alarming: no traceback, no addon error, no API deprecation warning
    for alarm in ("Traceback", "Addon error", "deprecated"):
        assert alarm not in out, out


# ====================================================================== hot reload

def test_hot_reload_applies_to_the_next_request(start, echo):
    m = start(config_text("strict", KEY, echo.url))
    pid, port = m.proc.pid, m.port
    assert m.send("GET", "/v1/models").status == 401

    write_config(m.config, config_text("off", KEY, echo.url))
    assert m.send("GET", "/v1/models").from_echo

    write_config(m.config, config_text("all_except_health", KEY, echo.url))
    assert m.send("GET", "/v1/models").status == 401
    assert m.send("GET", "/healthz").status == 200

    write_config(m.config, config_text("strict", OTHER_KEY, echo.url))
    old = m.send("GET", "/v1/models", [bearer(KEY)])
    assert old.status == 401 and old.gate["reason"] == "mismatch"
    assert m.send("GET", "/v1/models", [bearer(OTHER_KEY)]).from_echo

    write_config(m.config, config_text("strict", "", echo.url))
    r = m.send("GET", "/v1/models", [bearer(OTHER_KEY)])
    assert r.status == 401 and r.gate["reason"] == "empty_api_key"

    assert m.proc.poll() is None and m.proc.pid == pid and m.port == port  # no restart
    out = m.stop()
    assert KEY not in out and OTHER_KEY not in out


def test_hot_reload_of_upstream_url(start, echo):
    m = start(config_text("strict", KEY, echo.url))
    write_config(m.config, config_text("strict", KEY, echo.url + "/moved"))
    r = m.send("GET", "/v1/models", [bearer()])
    assert r.from_echo and r.json()["path"] == "/moved/v1/models"


def test_hot_reload_of_port_rebinds_the_listener(start, echo):
    m = start(config_text("strict", KEY, echo.url, port=0), port_option=False)
    first = m.port
    assert m.send("GET", "/healthz", [bearer()]).status == 200
    new_port = closed_port()
    seen = len(m.lines)
    write_config(m.config, config_text("strict", KEY, echo.url, port=new_port))
    # no request on the old port: the idle watcher picks the edit up by itself
    m.wait_listening(skip=seen)
    assert m.port == new_port != first
    assert m.send("GET", "/v1/models", [bearer()]).from_echo
    with pytest.raises(OSError):
        send(first, "GET", "/healthz", [bearer()])


@pytest.mark.parametrize("bad, field", [
    ("proxy:\n  auth_mode: [strict\n  api_key: x\n", "(YAML syntax)"),
    (config_text("bogus", OTHER_KEY), "proxy.auth_mode"),
    (config_text("strict", OTHER_KEY, port=70000), "proxy.port"),
    (config_text("off", OTHER_KEY) + "  colour: red\n", "proxy.colour"),
], ids=["bad-yaml", "bad-auth_mode", "bad-port", "unknown-field"])
def test_invalid_edit_keeps_last_good_config_and_says_so_once(start, echo, bad, field):
    m = start(config_text("strict", KEY, echo.url))
    write_config(m.config, bad)

    def still_old() -> None:
        assert m.send("GET", "/v1/models").status == 401
        assert m.send("GET", "/v1/models", [bearer(OTHER_KEY)]).status == 401
        assert m.send("GET", "/v1/models", [bearer()]).from_echo

    for _ in range(3):
        still_old()
    time.sleep(1.5)  # the idle watcher (every 1 s) gets a chance to repeat itself, too
    still_old()
    assert m.wait_for("keeping the last good config")
    errors = [line for line in m.lines if "keeping the last good config" in line]
    assert len(errors) == 1, errors
    err = errors[0]
    assert str(m.config) in err
    assert field in err
    assert "Fix:" in err
    if field == "proxy.auth_mode":
        assert "off, strict, all_except_health, auto" in err

    # a good edit afterwards applies again
    write_config(m.config, config_text("off", KEY, echo.url))
    assert m.send("GET", "/v1/models").from_echo
    assert len([line for line in m.lines if "keeping the last good config" in line]) == 1


def test_deleted_config_keeps_last_good(start, echo):
    m = start(config_text("strict", KEY, echo.url))
    m.config.unlink()
    assert m.send("GET", "/v1/models").status == 401
    assert m.send("GET", "/v1/models", [bearer()]).from_echo
    assert m.wait_for("keeping the last good config")
    write_config(m.config, config_text("off", KEY, echo.url))
    assert m.send("GET", "/v1/models").from_echo


# ====================================================================== key generation

def test_missing_api_key_is_generated_written_and_kept(start, echo, tmp_path):
    path = tmp_path / "gen" / "config.yaml"
    path.parent.mkdir()
    write_config(path, "# my settings\n" + config_text("strict", None, echo.url))
    m = start(None, path=path)
    data = yaml.safe_load(path.read_text())
    key = data["proxy"]["api_key"]
    assert re.fullmatch(r"sk-[0-9a-f]{32}", key), key
    assert path.read_text().startswith("# my settings\n")
    assert m.send("GET", "/v1/models", [bearer(key)]).from_echo
    assert m.send("GET", "/v1/models").status == 401
    out = m.stop()
    assert key not in out
    assert key[:3] + "…" + key[-4:] in out  # the fingerprint is what the log shows

    # a second start keeps the key written the first time
    m2 = start(None, path=path)
    assert yaml.safe_load(path.read_text())["proxy"]["api_key"] == key
    assert m2.send("GET", "/v1/models", [bearer(key)]).from_echo
    assert key not in m2.stop()


def test_unquoted_auth_mode_off_is_off(start, echo, tmp_path):
    text = f"proxy:\n  port: 0\n  auth_mode: off\n  api_key: {KEY}\nupstream:\n  url: {echo.url}\n"
    assert yaml.safe_load(text)["proxy"]["auth_mode"] is False  # YAML 1.1 reads it as a bool
    m = start(text)
    assert m.send("GET", "/v1/models").from_echo
    assert m.send("GET", "/healthz").json() == {"status": "ok"}
    assert m.wait_for("mode off")


# ====================================================================== start-up errors

@pytest.mark.parametrize("text, extra, field", [
    (config_text("bogus", KEY), (), "proxy.auth_mode"),
    (config_text("strict", KEY, port=70000), (), "proxy.port"),
    ('proxy:\n  auth_mode: strict\n  port: "abc"\n  api_key: x\n', (), "proxy.port"),
    ("proxy:\n  auth_mode: strict\n  port: abc\n  api_key: x\n", (), "proxy.port"),
    (config_text("strict", KEY) + "  colour: red\n", (), "proxy.colour"),
    (config_text("strict", KEY) + "extra:\n  a: 1\n", (), "extra"),
    ("proxy:\n  auth_mode: strict\n  allow_lan_access: yes please\n  api_key: x\n", (), "proxy.allow_lan_access"),
    (config_text("strict", KEY, upstream="ftp://127.0.0.1:21"), (), "upstream.url"),
    ("proxy:\n  auth_mode: [strict\n", (), "(YAML syntax)"),
    (config_text("strict", KEY), ("--set", "auth_mode=bogus"), "auth_mode"),
], ids=["auth_mode", "port-70000", "port-quoted-abc", "port-abc", "unknown-field", "unknown-section",
        "lan-not-bool", "upstream-scheme", "bad-yaml", "option-auth_mode"])
def test_invalid_config_at_start_exits_non_zero(start, text, extra, field):
    m = start(text, *extra, wait=False)
    rc = m.wait_exit()
    out = m.output
    assert rc is not None, f"mitmdump still running:\n{out}"
    assert rc != 0, out
    if not extra:
        assert str(m.config) in out, out
    assert field in out, out
    assert "Fix:" in out, out


@pytest.mark.parametrize("text, extra", [
    (config_text("bogus", KEY), ()),
    (config_text("strict", KEY), ("--set", "auth_mode=bogus")),
], ids=["file", "option"])
def test_invalid_config_at_start_opens_no_listener(start, text, extra):
    # "It is never an open forward proxy": a start that fails on its config must not serve
    # anything on the way out, least of all mitmproxy's default regular-mode proxy on *:8080.
    m = start(text, *extra, wait=False)
    rc = m.wait_exit()
    assert rc not in (None, 0), m.output
    assert "listening at" not in m.output, m.output


def test_missing_config_file_at_start_exits_non_zero(start, tmp_path):
    m = start(None, path=tmp_path / "nope.yaml", wait=False)
    rc = m.wait_exit()
    assert rc not in (None, 0), m.output
    assert str(tmp_path / "nope.yaml") in m.output and "does not exist" in m.output


def test_a_busy_port_says_which_settings_move_the_gate(start):
    # mitmproxy says only "[Errno 98] ... address already in use"; the person also needs the fix.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        m = start(config_text("strict", KEY, port=port), wait=False, port_option=False)
        rc = m.wait_exit()
    out = m.output
    assert rc not in (None, 0), out
    assert "address already in use" in out.lower(), out
    hint = f"Port {port} is already in use on 127.0.0.1: another program listens there"
    assert hint in out and "Fix: set proxy.port in config.yaml (e.g. 8044), or start with --set auth_port=8044" in out
    assert out.index("already in use on 127.0.0.1") > out.lower().index("address already in use")  # after mitmproxy's


# ====================================================================== last: the shared proxies' logs

def test_shared_proxies_never_logged_the_key(strict, aeh):
    # Runs after every test above that used the shared proxies (file order).
    time.sleep(0.3)
    for m in (strict, aeh):
        assert m.proc.poll() is None  # still serving after everything thrown at it
        assert KEY not in m.output and OTHER_KEY not in m.output
