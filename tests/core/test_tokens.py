"""The user tokens' rules (user_token_db.rs at v4.5.8): the memory store (config.yaml's
tokens:) and validate_token's pieces. The app's SQLite file is test_token_db.py's."""

import pytest

from authgate.rules.tokens import MemoryTokenStore, TokenRow, beijing_hhmm, in_curfew, validate

NOW = 1767225600  # 2026-01-01 00:00 UTC, 08:00 Beijing


# ---- the memory store (config.yaml's tokens:)

def test_memory_store_bindings_and_carry_over():
    row = TokenRow("t", "sk-t", "t", max_ips=2, bound_ips=("a", "b"))
    s = MemoryTokenStore([row])
    assert s.ip_count("t") == 2 and s.is_bound("t", "a") and not s.is_bound("t", "c")
    s.record("t", "c")
    s.record("t", "a")
    assert s.ip_count("t") == 3
    again = MemoryTokenStore([row], s.recorded)  # config.yaml reloaded: recorded bindings kept
    assert again.is_bound("t", "c") and again.ip_count("t") == 3


# ---- validate_token's pieces

@pytest.mark.parametrize("now, expected", [
    (NOW, "08:00"), (NOW + 59, "08:00"), (NOW + 16 * 3600, "00:00"), (NOW - 8 * 3600 - 60, "23:59"),
    (NOW + 0.9, "08:00"),
])
def test_beijing_time_is_fixed_utc_plus_8(now, expected):
    assert beijing_hhmm(now) == expected


@pytest.mark.parametrize("start, end, current, expected", [
    ("22:00", "06:00", "22:00", True), ("22:00", "06:00", "05:59", True), ("22:00", "06:00", "06:00", False),
    ("09:00", "18:00", "17:59", True), ("09:00", "18:00", "18:00", False), ("10:00", "10:00", "10:00", False),
])
def test_in_curfew(start, end, current, expected):
    assert in_curfew(start, end, current) is expected


def test_validate_returns_the_originals_messages():
    s = MemoryTokenStore([TokenRow("t", "sk-t", "t", expires_type="day", expires_at=NOW - 1)])
    assert validate(s, "sk-x", "ip", NOW) == ("unknown", None, "Invalid token. Please check your API key.")
    check = validate(s, "sk-t", "ip", NOW)
    assert (check.verdict, check.message) == (
        "expired", "Your token has expired. Please contact the administrator to renew it.")
