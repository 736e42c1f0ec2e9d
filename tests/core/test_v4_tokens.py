"""profile v4's user tokens through the decision (pure): auth.rs:162-234 and
user_token_db.rs validate_token (utdb, l.591-670) at tag v4.5.8, then off
mode's tagging (auth.rs:62-96). The version in brackets is the first release
with the rule."""

import pytest

from authgate.rules.tokens import CURFEW, EXPIRED, INVALID_TOKEN, IP_LIMIT, TokenRow
from v4_harness import BEARER, NOW, USER, FailingStore, VanishingStore, run, store

# ---- the user-token path (auth.rs:162-234, utdb validate_token l.591-670)

def test_unknown_token_is_403_with_the_exact_message():
    d = run("GET", "/v1/models", ("x-api-key", "sk-nobody"), store=store())
    assert (d.status, d.token, d.rejection) == (403, "unknown", "Invalid token. Please check your API key.")
    assert d.log == ("warn", "UserToken rejected: Invalid token. Please check your API key.")  # auth.rs:213
    assert "token_unknown" in d.notes and d.bind is None


def test_without_a_store_no_user_token_exists():
    d = run("GET", "/v1/models", ("x-api-key", USER))
    assert (d.status, d.reason, d.token, d.rejection) == (403, "mismatch", "unknown", INVALID_TOKEN)
    assert "no_token_store" in d.notes


def test_token_lookup_is_exact_and_case_sensitive():
    assert run("GET", "/", ("x-api-key", USER), store=store()).reason == "token_ok"
    assert run("GET", "/", ("x-api-key", USER.upper()), store=store()).token == "unknown"
    assert run("GET", "/", ("Authorization", f"Bearer {USER}"), store=store()).reason == "token_ok"
    assert run("GET", "/", ("x-goog-api-key", USER), store=store()).reason == "token_ok"  # l.126-131 all three


@pytest.mark.parametrize("row, now, verdict", [
    pytest.param(TokenRow("t1", USER, "alice", expires_type="day", expires_at=NOW - 1), NOW, "expired",
                 id="utdb:598 expires_at < now"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="day", expires_at=NOW), NOW, "ok",
                 id="utdb:598 strict <: valid in the second itself (Q16)"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="custom", expires_at=NOW - 1), NOW + 0.999, "expired",
                 id="utdb:598 Utc::now().timestamp(): whole seconds"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="never", expires_at=NOW - 10 ** 6), NOW, "ok",
                 id="utdb:596 never ignores expires_at (Q16) [v4.4.8]"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="Never", expires_at=NOW - 1), NOW, "expired",
                 id="utdb:596 'never' compared case-sensitively"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="week", expires_at=None), NOW, "ok",
                 id="utdb:597 a NULL expires_at never expires"),
])
def test_expiry(row, now, verdict):
    d = run("GET", "/v1/models", ("x-api-key", USER), store=store(row), now=now)
    assert d.token == verdict
    if verdict == "expired":
        assert (d.status, d.reason, d.rejection) == (403, "token_expired", EXPIRED)
        assert d.rejection == "Your token has expired. Please contact the administrator to renew it."


LIMITED = TokenRow("t1", USER, "alice", max_ips=2, bound_ips=("10.0.0.1", "10.0.0.2"))


@pytest.mark.parametrize("row, headers, verdict, ip", [
    pytest.param(LIMITED, [("X-Forwarded-For", "10.0.0.3")], "ip_limit", "10.0.0.3",
                 id="utdb:621-633 a new IP over the limit"),
    pytest.param(LIMITED, [("X-Forwarded-For", "10.0.0.2")], "ok", "10.0.0.2", id="utdb:621 a bound IP passes"),
    pytest.param(TokenRow("t1", USER, "alice", max_ips=1, bound_ips=("10.0.0.1", "10.0.0.2")),
                 [("X-Forwarded-For", "10.0.0.1")], "ok", "10.0.0.1",
                 id="utdb:621 bound IPs pass even over a lowered max_ips"),
    pytest.param(TokenRow("t1", USER, "alice", max_ips=3, bound_ips=("10.0.0.1", "10.0.0.2")),
                 [("X-Forwarded-For", "10.0.0.9")], "ok", "10.0.0.9", id="utdb:631 under the limit"),
    pytest.param(TokenRow("t1", USER, "alice", max_ips=0, bound_ips=("a", "b", "c")),
                 [("X-Forwarded-For", "10.0.0.9")], "ok", "10.0.0.9", id="utdb:611 max_ips 0: no limit"),
    pytest.param(LIMITED, [("X-Forwarded-For", " 10.0.0.1 , 10.0.0.3")], "ok", "10.0.0.1",
                 id="auth.rs:171 X-Forwarded-For's first item, trimmed"),
    pytest.param(LIMITED, [("X-Forwarded-For", ", 10.0.0.1")], "ip_limit", "",
                 id="auth.rs:171 an empty first item is the IP ''"),
    pytest.param(LIMITED, [("X-Real-IP", "10.0.0.2")], "ok", "10.0.0.2", id="auth.rs:173-177 else X-Real-IP"),
    pytest.param(LIMITED, [("X-Real-IP", "10.0.0.2"), ("X-Forwarded-For", "10.0.0.5")], "ip_limit", "10.0.0.5",
                 id="auth.rs:167 X-Forwarded-For comes first, whatever the order"),
    pytest.param(LIMITED, [(b"X-Forwarded-For", b"10.0.0.1\xff"), ("X-Real-IP", "10.0.0.2")], "ok", "10.0.0.2",
                 id="auth.rs:170 a non-ASCII X-Forwarded-For is skipped"),
    pytest.param(LIMITED, [("X-Forwarded-For", "10.0.0.5"), ("X-Forwarded-For", "10.0.0.1")], "ip_limit",
                 "10.0.0.5", id="auth.rs:169 HeaderMap::get: the first X-Forwarded-For only"),
    pytest.param(LIMITED, [], "ip_limit", "127.0.0.1", id="auth.rs:179 no header: the literal 127.0.0.1 (Q14)"),
    pytest.param(TokenRow("t1", USER, "alice", max_ips=1, bound_ips=("127.0.0.1",)), [], "ok", "127.0.0.1",
                 id="auth.rs:179 every header-less client is 127.0.0.1"),
])
def test_ip_limit_and_client_ip(row, headers, verdict, ip):
    d = run("GET", "/v1/models", ("x-api-key", USER), *headers, store=store(row))
    assert (d.token, d.client_ip) == (verdict, ip)
    if verdict == "ip_limit":
        assert (d.status, d.reason) == (403, "token_ip_limit")
        count = len(row.bound_ips)
        assert d.rejection == IP_LIMIT.format(count=count, max_ips=row.max_ips) == (
            f"IP limit reached ({count}/{row.max_ips}). Please contact the administrator to increase the limit.")


def _beijing(hh, mm):
    return NOW - 8 * 3600 + hh * 3600 + mm * 60  # NOW is 08:00 Beijing: back to 00:00, then hh:mm


@pytest.mark.parametrize("start, end, at, curfew", [
    pytest.param("22:00", "06:00", (23, 30), True, id="utdb:650-651 across midnight, evening"),
    pytest.param("22:00", "06:00", (5, 59), True, id="utdb:651 across midnight, early morning"),
    pytest.param("22:00", "06:00", (6, 0), False, id="utdb:651 the end is excluded"),
    pytest.param("22:00", "06:00", (22, 0), True, id="utdb:651 the start is included"),
    pytest.param("22:00", "06:00", (12, 0), False, id="utdb:651 midday"),
    pytest.param("09:00", "18:00", (9, 0), True, id="utdb:653 a day range, start included"),
    pytest.param("09:00", "18:00", (18, 0), False, id="utdb:653 end excluded"),
    pytest.param("09:00", "18:00", (8, 59), False, id="utdb:653 before"),
    pytest.param("12:00", "12:00", (12, 0), False, id="utdb:650-653 start == end: never"),
    pytest.param("22:00", "", (23, 0), False, id="utdb:642 an empty end: no curfew"),
    pytest.param("22:00", None, (23, 0), False, id="utdb:641 one of them NULL: no curfew"),
    pytest.param("9:00", "18:00", (12, 0), True, id="utdb:650 Q15 '9:00' > '18:00' as strings: wraps"),
    pytest.param("9:00", "18:00", (8, 0), True, id="utdb:651 Q15 so 08:00 is in curfew too"),
])
def test_curfew_in_beijing_time_with_string_comparison(start, end, at, curfew):
    row = TokenRow("t1", USER, "alice", curfew_start=start, curfew_end=end)
    now = _beijing(*at)
    d = run("GET", "/v1/models", ("x-api-key", USER), store=store(row), now=now)
    assert d.token == ("curfew" if curfew else "ok")
    if curfew:
        current = f"{at[0]:02d}:{at[1]:02d}"
        assert (d.status, d.reason) == (403, "token_curfew")
        assert d.rejection == CURFEW.format(start=start, end=end, now=current) == (
            f"Service is not available between {start} and {end} Beijing Time (Curfew enabled). "
            f"Current Beijing time: {current}")


def test_curfew_ignores_the_servers_time_zone(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        row = TokenRow("t1", USER, "alice", curfew_start="07:00", curfew_end="09:00")
        assert run("GET", "/", ("x-api-key", USER), store=store(row), now=NOW).token == "curfew"  # 08:00 UTC+8
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_checks_run_in_the_originals_order():
    # utdb:595-660: expiry before the IP limit before the curfew
    row = TokenRow("t1", USER, "alice", expires_type="day", expires_at=NOW - 1, max_ips=1, bound_ips=("x",),
                   curfew_start="00:00", curfew_end="23:59")
    assert run("GET", "/", ("x-api-key", USER), store=store(row)).token == "expired"
    row = TokenRow("t1", USER, "alice", max_ips=1, bound_ips=("x",), curfew_start="00:00", curfew_end="23:59")
    assert run("GET", "/", ("x-api-key", USER), store=store(row)).token == "ip_limit"


def test_enabled_is_never_checked__q1():
    row = TokenRow("t1", USER, "alice", enabled=False)
    d = run("GET", "/v1/models", ("x-api-key", USER), store=store(row))
    assert (d.allowed, d.reason, d.token) == (True, "token_ok", "ok")
    assert "enabled_ignored" in d.notes


def test_token_ok_passes_with_its_identity_and_the_binding_to_record():
    d = run("POST", "/v1/chat/completions", ("x-api-key", USER), ("X-Real-IP", "192.0.2.7"), store=store())
    assert (d.allowed, d.route, d.status, d.reason) == (True, "upstream", None, "token_ok")
    assert (d.token, d.token_id, d.token_user, d.client_ip, d.bind) == ("ok", "t1", "alice", "192.0.2.7",
                                                                        ("t1", "192.0.2.7"))


def test_recorded_bindings_count_for_the_limit():
    # monitor.rs records the IP after the response (l.250-266); the next new IP then meets the limit
    s = store(TokenRow("t1", USER, "alice", max_ips=1))
    first = run("GET", "/", ("x-api-key", USER), ("X-Forwarded-For", "198.51.100.1"), store=s)
    assert first.token == "ok"
    s.record(*first.bind)
    assert run("GET", "/", ("x-api-key", USER), ("X-Forwarded-For", "198.51.100.1"), store=s).token == "ok"
    d = run("GET", "/", ("x-api-key", USER), ("X-Forwarded-For", "198.51.100.2"), store=s)
    assert (d.token, d.rejection) == ("ip_limit", IP_LIMIT.format(count=1, max_ips=1))


@pytest.mark.parametrize("path, recorded", [
    pytest.param("/v1/chat/completions", True, id="recorded"),
    pytest.param("/v1/api/event_logging/batch", False, id="monitor.rs:355 event_logging skipped"),
    pytest.param("/v1/models?from=/api/", False, id="monitor.rs:355 /api/ anywhere in the URI, query too"),
])
def test_which_requests_monitor_records(path, recorded):
    d = run("POST", path, ("x-api-key", USER), store=store())
    assert d.token == "ok" and (d.bind is not None) is recorded


def test_store_failure_is_500_empty_with_the_log_line():
    d = run("GET", "/v1/models", ("x-api-key", "sk-any"), store=FailingStore())
    assert (d.allowed, d.status, d.reason, d.token) == (False, 500, "token_store_error", "store_error")
    assert d.log[0] == "error" and d.log[1].startswith("UserToken validation error: ")  # auth.rs:231
    # the api_key itself never touches the store
    assert run("GET", "/v1/models", BEARER, store=FailingStore()).allowed


def test_second_lookup_failure_is_401():
    s = VanishingStore()
    d = run("GET", "/v1/models", ("x-api-key", USER), store=s)
    assert (d.allowed, d.status, d.reason, d.token) == (False, 401, "token_vanished", "vanished")  # auth.rs:207-209
    assert s.calls == 2


# ---- off mode tags a stored token, unchecked (auth.rs:62-96, Q13) [v4.1.0]

@pytest.mark.parametrize("headers, tagged", [
    pytest.param([("Authorization", f"Bearer {USER}")], True, id="auth.rs:69 Bearer stripped"),
    pytest.param([("Authorization", USER)], True, id="auth.rs:69 .or(Some(s)): whole value"),
    pytest.param([("x-api-key", USER)], True, id="auth.rs:70-75 x-api-key"),
    pytest.param([("x-goog-api-key", USER)], False, id="auth.rs:65-75 x-goog-api-key is not read in off mode"),
    pytest.param([("Authorization", "Bearer other"), ("x-api-key", USER)], False,
                 id="auth.rs:65 Authorization first"),
    pytest.param([(b"Authorization", b"\xff"), ("x-api-key", USER)], True,
                 id="auth.rs:68 a non-ASCII Authorization is skipped"),
])
def test_off_mode_tagging_headers(headers, tagged):
    d = run("POST", "/v1/messages", *headers, mode="off", store=store())
    assert d.allowed and d.reason == "auth_off"
    assert (d.token == "tagged") is tagged
    if tagged:
        assert d.bind == ("t1", "127.0.0.1") and "off_tagged" in d.notes


@pytest.mark.parametrize("row", [
    TokenRow("t1", USER, "alice", expires_type="day", expires_at=NOW - 100),
    TokenRow("t1", USER, "alice", enabled=False),
    TokenRow("t1", USER, "alice", max_ips=1, bound_ips=("203.0.113.1",)),
    TokenRow("t1", USER, "alice", curfew_start="00:00", curfew_end="23:59"),
], ids=["expired", "disabled", "over its IP limit", "in curfew"])
def test_off_mode_tags_any_stored_token_without_checks(row):
    d = run("GET", "/v1/models", ("x-api-key", USER), mode="auto", store=store(row))
    assert (d.allowed, d.token, d.token_id, d.bind) == (True, "tagged", "t1", ("t1", "127.0.0.1"))


def test_off_mode_swallows_store_errors_and_skips_internal_recording():
    d = run("GET", "/v1/models", ("x-api-key", USER), mode="off", store=FailingStore())
    assert (d.allowed, d.token, d.bind) == (True, None, None)  # auth.rs:79 `if let Ok(Some(..))`
    d = run("POST", "/internal/warmup", ("x-api-key", USER), mode="off", store=store())
    assert d.token == "tagged" and d.bind is None  # monitor.rs:355 skips /internal/
