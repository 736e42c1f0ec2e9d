"""End to end, what the gate decides: the FAQ's effective-mode table and pitfalls, and how each key
header is read (spellings, case, non-ASCII values, repeats, precedence), on real HTTP to a real
`mitmdump -s addon/auth.py` on an ephemeral loopback port with an echo upstream; raw bytes where a
header must be non-ASCII or repeated. A shared strict gate serves the tests that only read.

Everything stays on 127.0.0.1 and every socket call has a timeout.
"""

from __future__ import annotations

import re

import pytest

from e2e_gates import (  # noqa: F401
    EMPTY_KEY_LOG,
    KEY,
    NON_ASCII,
    assert_never_logged_the_key,
    bearer,
    confdir,
    echo,
    start,
    start_shared,
    strict,
)
from live import config_text

# ====================================================================== FAQ step 1-2: the effective-mode table

@pytest.mark.parametrize("mode, lan, effective, health, models", [
    ("off", False, "off", 200, 200),
    ("strict", False, "strict", 401, 401),
    ("all_except_health", False, "all_except_health", 200, 401),
    ("auto", False, "off", 200, 200),
    ("auto", True, "all_except_health", 200, 401),
], ids=["off", "strict", "all_except_health", "auto-lan_false", "auto-lan_true"])
def test_effective_mode_table(start, echo, mode, lan, effective, health, models):
    # allow_lan_access=true would bind 0.0.0.0: pin the listener to loopback explicitly, with a whole
    # --mode (a numeric listen_host alone makes mitmproxy 3.12+ bind its default *:8080 first).
    extra = ("--mode", f"reverse:{echo.url}@127.0.0.1:0") if lan else ()
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
    m = start(config_text("auto", KEY, echo.url, lan=True), "--mode", f"reverse:{echo.url}@127.0.0.1:0")
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


# ====================================================================== last: the shared gate's log

def test_the_shared_gate_never_logged_the_key(strict):
    # Runs after every test above that used the shared gate (file order).
    assert_never_logged_the_key(strict)
