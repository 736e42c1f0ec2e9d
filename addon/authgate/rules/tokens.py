"""User tokens, as v4.5.8's `user_token_db.rs` keeps and checks them (pure, stdlib only).

v4.5.8's proxy accepts, besides `proxy.api_key`, the rows of its own SQLite
file `<data dir>/user_tokens.db` (table `user_tokens`). Two stores give the
gate those rows:

* `MemoryTokenStore`: the `tokens:` list of config.yaml (teaching without the
  app), and the tests.
* `token_db.SqliteTokenStore`: the app's own `user_tokens.db`, opened
  **read-only** (token_db.py, with the original's schema).

`validate()` is `validate_token()` (user_token_db.rs:591-670) line for line:
unknown -> expired -> IP limit -> curfew, first failure wins, `enabled` never
read. Its messages are the original's, word for word (English in every
language, as the original sends them).

The gate never writes the app's database: the IP bindings the original would
record after a response (monitor.rs `record_token_usage_and_ip`) are kept in
memory, per store, and count for the IP limit from then on, as the app's rows would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

# ------------------------------------------------------- the original's words

INVALID_TOKEN = "Invalid token. Please check your API key."  # user_token_db.rs:667
EXPIRED = "Your token has expired. Please contact the administrator to renew it."  # l.602
IP_LIMIT = "IP limit reached ({count}/{max_ips}). Please contact the administrator to increase the limit."  # l.632
CURFEW = ("Service is not available between {start} and {end} Beijing Time (Curfew enabled). "
          "Current Beijing time: {now}")  # l.657
BEIJING_OFFSET = 8 * 3600  # l.643: FixedOffset::east_opt(8 * 3600), whatever the server's zone

EXPIRES_TYPES = ("never", "day", "week", "month", "custom")  # what the app writes (l.186-267)


class TokenStoreError(Exception):
    """The store cannot answer (file missing or locked, a NULL where the app
    expects a value...): the original answers such a lookup with 500."""


@dataclass(frozen=True, slots=True)
class TokenRow:
    """One `user_tokens` row: the columns the auth layer reads (struct UserToken, l.15-31)."""

    id: str
    token: str
    username: str
    enabled: bool = True  # never checked by v4.5.8 (Q1): kept to say so
    expires_type: str = "never"
    expires_at: int | None = None  # Unix seconds
    max_ips: int = 0  # 0: no limit
    curfew_start: str | None = None  # "HH:MM", Beijing time
    curfew_end: str | None = None
    description: str | None = None
    bound_ips: tuple[str, ...] = ()  # token_ip_bindings rows to start with (config.yaml's tokens: only)


class TokenStore(Protocol):
    """What the decision asks of a token store. lookup() raises TokenStoreError."""

    def lookup(self, token: str) -> TokenRow | None: ...

    def is_bound(self, token_id: str, ip: str) -> bool: ...

    def ip_count(self, token_id: str) -> int: ...

    def record(self, token_id: str, ip: str) -> None: ...


class Check(NamedTuple):
    """validate()'s answer. verdict: ok, unknown, expired, ip_limit, curfew."""

    verdict: str
    row: TokenRow | None
    message: str | None  # the original's 403 message, word for word; None when ok


def beijing_hhmm(now: float) -> str:
    """`format!("{:02}:{:02}", hour, minute)` of Utc::now() at UTC+8, seconds dropped."""
    t = int(now // 1) + BEIJING_OFFSET
    return f"{t // 3600 % 24:02d}:{t // 60 % 60:02d}"


def in_curfew(start: str, end: str, current: str) -> bool:
    """l.650-654: plain string comparison; across midnight when start > end; start == end: never."""
    if start > end:
        return current >= start or current < end
    return start <= current < end


def validate(store: TokenStore, token: str, ip: str, now: float) -> Check:
    """`validate_token(token, ip)` (user_token_db.rs:591-670). Raises TokenStoreError
    when the lookup fails (the original's `?` on get_token_by_value: a 500)."""
    row = store.lookup(token)
    if row is None:
        return Check("unknown", None, INVALID_TOKEN)
    # l.596-608: "never" ignores expires_at (since v4.4.8); `<`: valid during the second itself.
    if row.expires_type != "never" and row.expires_at is not None and row.expires_at < int(now // 1):
        return Check("expired", row, EXPIRED)
    # l.611-635: an IP already bound always passes, even over a lowered max_ips.
    if row.max_ips > 0 and not store.is_bound(row.id, ip):
        count = store.ip_count(row.id)
        if count >= row.max_ips:
            return Check("ip_limit", row, IP_LIMIT.format(count=count, max_ips=row.max_ips))
    # l.641-660: both set and non-empty, else no curfew.
    start, end = row.curfew_start, row.curfew_end
    if start and end:
        current = beijing_hhmm(now)
        if in_curfew(start, end, current):
            return Check("curfew", row, CURFEW.format(start=start, end=end, now=current))
    return Check("ok", row, None)


# ------------------------------------------------------------------ in memory

class MemoryTokenStore:
    """Rows held in memory: config.yaml's `tokens:` list, or a test's.

    Bindings are each row's `bound_ips` plus what `record()` adds while the
    gate runs (the bindings the original would write after each response).
    `recorded` can be handed to the next store when the config reloads, so
    the bindings survive an edit of config.yaml.
    """

    def __init__(self, rows=(), recorded: dict[str, set[str]] | None = None):
        self.rows = {row.token: row for row in rows}
        self._preset = {row.id: frozenset(row.bound_ips) for row in rows}
        self.recorded: dict[str, set[str]] = recorded if recorded is not None else {}

    def lookup(self, token: str) -> TokenRow | None:
        return self.rows.get(token)

    def is_bound(self, token_id: str, ip: str) -> bool:
        return ip in self._preset.get(token_id, ()) or ip in self.recorded.get(token_id, ())

    def ip_count(self, token_id: str) -> int:
        return len(self._preset.get(token_id, frozenset()) | self.recorded.get(token_id, set()))

    def record(self, token_id: str, ip: str) -> None:
        self.recorded.setdefault(token_id, set()).add(ip)
