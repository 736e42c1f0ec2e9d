"""The FAQ's tables, row by row, against the pure decision (no mitmproxy here)."""

import pytest

from authgate.rules.common import RequestView, effective_mode
from authgate.rules.decide import decide
from policy import KEY, Policy


def view(method="GET", path="/v1/models", *headers: tuple[str | bytes, str | bytes]) -> RequestView:
    def raw(x):
        return x if isinstance(x, bytes) else x.encode("latin-1")
    return RequestView(method, path, tuple((raw(n), raw(v)) for n, v in headers))


# ---- FAQ step 2: the effective-mode table, every row

@pytest.mark.parametrize("mode, lan, effective", [
    ("off", False, "off"),
    ("off", True, "off"),
    ("strict", False, "strict"),
    ("strict", True, "strict"),
    ("all_except_health", False, "all_except_health"),
    ("all_except_health", True, "all_except_health"),
    ("auto", False, "off"),
    ("auto", True, "all_except_health"),
])
def test_effective_mode_table(mode, lan, effective):
    assert effective_mode(mode, lan) == effective
    assert decide(view(), Policy(mode, lan)).effective_mode == effective


# ---- FAQ step 1: /healthz under each mode, without any header

@pytest.mark.parametrize("mode, lan, allowed", [
    ("off", False, True),
    ("all_except_health", False, True),
    ("auto", True, True),     # auto + LAN = all_except_health: /healthz exempt
    ("auto", False, True),    # auto without LAN = off
    ("strict", False, False),  # strict: /healthz needs the key too
])
def test_healthz_without_key(mode, lan, allowed):
    d = decide(view("GET", "/healthz"), Policy(mode, lan))
    assert d.allowed is allowed
    assert d.route == ("health" if allowed else "denied")


@pytest.mark.parametrize("path, exempt", [
    ("/healthz", True),
    ("/healthz?verbose=1", True),  # query string ignored
    ("/healthz/", False),
    ("/HEALTHZ", False),
    ("/health", False),
    ("/healthz2", False),
    ("/v1/healthz", False),
])
def test_health_exemption_is_the_exact_path(path, exempt):
    d = decide(view("GET", path), Policy("all_except_health"))
    assert d.allowed is exempt
    assert d.reason == ("health_exempt" if exempt else "missing")


def test_strict_healthz_with_key_is_answered_by_the_proxy():
    d = decide(view("GET", "/healthz", ("Authorization", f"Bearer {KEY}")), Policy("strict"))
    assert (d.allowed, d.route, d.reason) == (True, "health", "key_ok")


def test_healthz_other_methods_pass_auth_but_are_not_the_health_route():
    d = decide(view("POST", "/healthz"), Policy("all_except_health"))
    assert (d.allowed, d.route) == (True, "method_not_allowed")
    assert decide(view("HEAD", "/healthz"), Policy("all_except_health")).route == "health"


# ---- OPTIONS passes whatever the mode, even with an empty key

@pytest.mark.parametrize("mode", ["off", "strict", "all_except_health", "auto"])
@pytest.mark.parametrize("api_key", [KEY, ""])
def test_options_preflight_always_passes(mode, api_key):
    d = decide(view("OPTIONS", "/v1/chat/completions", ("Authorization", "Bearer wrong")),
               Policy(mode, True, api_key))
    assert (d.allowed, d.route, d.reason, d.auth_required) == (True, "preflight", "preflight", False)


def test_off_lets_everything_through_without_reading_headers():
    d = decide(view("POST", "/v1/messages", ("x-api-key", "wrong")), Policy("off", api_key=""))
    assert (d.allowed, d.route, d.reason, d.winner) == (True, "upstream", "auth_off", None)


# ---- FAQ step 3: empty api_key denies every request that needs auth

@pytest.mark.parametrize("mode, lan, path", [
    ("strict", False, "/v1/models"),
    ("strict", False, "/healthz"),
    ("all_except_health", False, "/v1/models"),
    ("auto", True, "/v1/models"),
])
def test_empty_api_key_denies(mode, lan, path):
    d = decide(view("GET", path, ("Authorization", "Bearer ")), Policy(mode, lan, ""))
    assert (d.allowed, d.reason) == (False, "empty_api_key")


def test_empty_api_key_still_exempts_healthz_in_all_except_health():
    assert decide(view("GET", "/healthz"), Policy("all_except_health", api_key="")).allowed


# ---- FAQ step 4 and the pitfalls table: which header wins, and why it fails

@pytest.mark.parametrize("headers, allowed, winner, reason", [
    # the recommended forms
    ([("Authorization", f"Bearer {KEY}")], True, "Authorization", "key_ok"),
    ([("x-api-key", KEY)], True, "x-api-key", "key_ok"),
    ([("x-goog-api-key", KEY)], True, "x-goog-api-key", "key_ok"),
    # without the Bearer prefix the whole value is the key
    ([("Authorization", KEY)], True, "Authorization", "key_ok"),
    # pitfall: Bearer<key> (no space) is not stripped
    ([("Authorization", f"Bearer{KEY}")], False, "Authorization", "bearer_no_space"),
    # the prefix is case-sensitive, exactly one space
    ([("Authorization", f"bearer {KEY}")], False, "Authorization", "bearer_lowercase"),
    ([("Authorization", f"BEARER {KEY}")], False, "Authorization", "bearer_lowercase"),
    ([("Authorization", f"Bearer  {KEY}")], False, "Authorization", "bearer_extra_space"),
    ([("Authorization", "Bearer sk-wrong")], False, "Authorization", "mismatch"),
    ([("Authorization", "Basic dXNlcjpwYXNz")], False, "Authorization", "mismatch"),
    ([("Authorization", "Bearer ")], False, "Authorization", "empty_value"),
    ([("x-api-key", "")], False, "x-api-key", "empty_value"),
    ([], False, None, "missing"),
    ([("api-key", KEY), ("x-goog-key", KEY)], False, None, "missing"),  # not key headers
    # pitfall: a mismatching Authorization shadows a correct x-api-key
    ([("Authorization", "Bearer sk-old"), ("x-api-key", KEY)], False, "Authorization", "mismatch"),
    ([("x-api-key", "sk-old"), ("x-goog-api-key", KEY)], False, "x-api-key", "mismatch"),
    # order on the wire does not matter: priority does
    ([("x-api-key", KEY), ("Authorization", "Bearer sk-old")], False, "Authorization", "mismatch"),
    ([("x-goog-api-key", "sk-old"), ("x-api-key", KEY)], True, "x-api-key", "key_ok"),
    # names are case-insensitive
    ([("AUTHORIZATION", f"Bearer {KEY}")], True, "Authorization", "key_ok"),
    ([("X-Api-Key", KEY)], True, "x-api-key", "key_ok"),
    # a repeated header counts by its first value
    ([("x-api-key", KEY), ("x-api-key", "sk-old")], True, "x-api-key", "key_ok"),
    ([("x-api-key", "sk-old"), ("x-api-key", KEY)], False, "x-api-key", "mismatch"),
    # a value that is not visible ASCII counts as absent: the chain moves on
    ([(b"Authorization", b"Bearer \xe2\x80\x9csk\xe2\x80\x9d"), ("x-api-key", KEY)], True, "x-api-key", "key_ok"),
    ([(b"Authorization", b"Bearer \xe2\x80\x9csk\xe2\x80\x9d")], False, None, "non_ascii"),
    ([(b"x-api-key", KEY.encode() + b"\x80\xff")], False, None, "non_ascii"),  # 0x80-0xFF: to_str() fails
    # tab is visible enough for the http crate: the value is used, and fails
    ([(b"x-api-key", KEY.encode() + b"\t")], False, "x-api-key", "mismatch"),
])
def test_header_precedence_and_key_reading(headers, allowed, winner, reason):
    d = decide(view("GET", "/v1/models", *headers), Policy("strict"))
    assert (d.allowed, d.winner, d.reason) == (allowed, winner, reason)
    assert d.route == ("upstream" if allowed else "denied")


# ---- before any auth: header values httparse (the original's HTTP/1 parser) refuses with 400

@pytest.mark.parametrize("value, reason", [
    (KEY.encode() + b"\x00", "header_control_byte"),  # NUL (was "non_ascii": the original never gets that far)
    (b"\x7f", "header_control_byte"),  # DEL
    (b"Bearer sk-abc\x7f", "header_control_byte"),
    (b"a\rx-goog-api-key: " + KEY.encode(), "header_control_byte"),  # a bare CR: two headers to a lenient server
    (b"a\nb", "header_control_byte"),
    *[(b"a" + bytes([c]) + b"b", "header_control_byte") for c in (*range(0x01, 0x09), *range(0x0B, 0x20))],
    (b"a\r\n b", "header_obs_fold"),  # a folded line, as mitmproxy joins it
    (b"a\r\n x-api-key: " + KEY.encode(), "header_obs_fold"),
])
@pytest.mark.parametrize("name", ["Authorization", "x-api-key", "X-Foo"])
@pytest.mark.parametrize("mode, method, path", [
    ("strict", "GET", "/v1/models"), ("off", "GET", "/v1/models"), ("all_except_health", "GET", "/healthz"),
    ("strict", "OPTIONS", "/v1/models"),
])
def test_header_values_with_control_bytes_are_refused_before_auth(value, reason, name, mode, method, path):
    # whatever the mode, the route and the other headers: even a right key beside it
    d = decide(view(method, path, ("x-goog-api-key", KEY), (name.encode(), value)), Policy(mode))
    assert (d.allowed, d.status, d.route, d.reason) == (False, 400, "bad_request", reason)
    assert d.headers == ((name, reason),) and d.winner is None and d.presented is None
    assert decide(view(method, path, (name.encode(), value)), Policy(mode, profile="v4")).status == 400


@pytest.mark.parametrize("value", [b"a\tb", b"\ta b\t", b"caf\xc3\xa9", b"\x80\xff", b"", b" ~!"])
def test_tab_space_visible_ascii_and_0x80_to_0xff_are_not_refused(value):
    d = decide(view("GET", "/v1/models", (b"X-Foo", value), ("x-api-key", KEY)), Policy("strict"))
    assert (d.allowed, d.reason) == (True, "key_ok")


def test_auto_with_lan_access_denies_localhost_without_key():
    # pitfall 1: auto + allow_lan_access=true evaluates to all_except_health
    d = decide(view(), Policy("auto", True))
    assert (d.allowed, d.effective_mode, d.configured_mode, d.reason) == (
        False, "all_except_health", "auto", "missing")


def test_shadowed_names_the_correct_ignored_header():
    d = decide(view("GET", "/v1/models", ("Authorization", "Bearer sk-old"), ("x-api-key", KEY)), Policy())
    assert d.shadowed == "x-api-key"
    assert dict(d.headers) == {"Authorization": "won", "x-api-key": "ignored", "x-goog-api-key": "absent"}
    # a wrong ignored header is not "shadowed"
    d = decide(view("GET", "/v1/models", ("Authorization", "Bearer sk-old"), ("x-api-key", "nope")), Policy())
    assert d.shadowed is None and d.ignored == ("x-api-key",)


def test_header_states_report_skipped_and_absent():
    d = decide(view("GET", "/", (b"Authorization", b"\xff"), ("x-goog-api-key", KEY)), Policy())
    assert dict(d.headers) == {"Authorization": "non_ascii", "x-api-key": "absent", "x-goog-api-key": "won"}
    assert d.skipped == ("Authorization",) and d.allowed


def test_key_form_and_presented_key():
    d = decide(view("GET", "/", ("Authorization", f"Bearer {KEY}")), Policy())
    assert (d.key_form, d.presented) == ("bearer", KEY.encode())
    d = decide(view("GET", "/", ("Authorization", "sk-x")), Policy())
    assert (d.key_form, d.presented) == ("whole", b"sk-x")
    assert decide(view("GET", "/", ("x-api-key", "k")), Policy()).key_form == "plain"


def test_decision_is_a_frozen_record():
    d = decide(view(), Policy())
    with pytest.raises(AttributeError):
        d.allowed = True  # type: ignore[misc]
