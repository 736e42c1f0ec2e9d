"""User tokens, as v4.5.8's `user_token_db.rs` keeps and checks them (pure, stdlib only).

v4.5.8's proxy accepts, besides `proxy.api_key`, the rows of its own SQLite
file `<data dir>/user_tokens.db` (table `user_tokens`). Two stores give the
gate those rows:

* `MemoryTokenStore`: the `tokens:` list of config.yaml (teaching without the
  app), and the tests.
* `SqliteTokenStore`: the app's own `user_tokens.db`, opened **read-only**.

`validate()` is `validate_token()` (user_token_db.rs:591-670) line for line:
unknown -> expired -> IP limit -> curfew, first failure wins, `enabled` never
read. Its messages are the original's, word for word (English in every
language, as the original sends them).

The gate never writes the app's database: the IP bindings the original would
record after a response (monitor.rs `record_token_usage_and_ip`) are kept in
memory, per store, and count for the IP limit from then on, as the app's rows would.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Protocol

# ------------------------------------------------------- the original's words

INVALID_TOKEN = "Invalid token. Please check your API key."  # user_token_db.rs:667
EXPIRED = "Your token has expired. Please contact the administrator to renew it."  # l.602
IP_LIMIT = "IP limit reached ({count}/{max_ips}). Please contact the administrator to increase the limit."  # l.632
CURFEW = ("Service is not available between {start} and {end} Beijing Time (Curfew enabled). "
          "Current Beijing time: {now}")  # l.657
BEIJING_OFFSET = 8 * 3600  # l.643: FixedOffset::east_opt(8 * 3600), whatever the server's zone

# The original's schema (user_token_db.rs:77-160), for tests and for anyone
# building a user_tokens.db to teach with. The gate itself never runs these.
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS user_tokens (
            id TEXT PRIMARY KEY,
            token TEXT UNIQUE NOT NULL,
            username TEXT NOT NULL,
            description TEXT,
            enabled BOOLEAN NOT NULL DEFAULT 1,
            expires_type TEXT NOT NULL,
            expires_at INTEGER,
            max_ips INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            last_used_at INTEGER,
            total_requests INTEGER NOT NULL DEFAULT 0,
            total_tokens_used INTEGER NOT NULL DEFAULT 0,
            curfew_start TEXT,
            curfew_end TEXT
        )""",
    """CREATE TABLE IF NOT EXISTS token_ip_bindings (
            id TEXT PRIMARY KEY,
            token_id TEXT NOT NULL,
            ip_address TEXT NOT NULL,
            first_seen_at INTEGER NOT NULL,
            last_seen_at INTEGER NOT NULL,
            request_count INTEGER NOT NULL DEFAULT 0,
            user_agent TEXT,
            FOREIGN KEY(token_id) REFERENCES user_tokens(id) ON DELETE CASCADE,
            UNIQUE(token_id, ip_address)
        )""",
    """CREATE TABLE IF NOT EXISTS token_usage_logs (
            id TEXT PRIMARY KEY,
            token_id TEXT NOT NULL,
            ip_address TEXT,
            model TEXT,
            input_tokens INTEGER,
            output_tokens INTEGER,
            request_time INTEGER NOT NULL,
            status INTEGER,
            FOREIGN KEY(token_id) REFERENCES user_tokens(id) ON DELETE CASCADE
        )""",
    "CREATE INDEX IF NOT EXISTS idx_token_usage_logs_token_id ON token_usage_logs(token_id)",
    "CREATE INDEX IF NOT EXISTS idx_token_usage_logs_request_time ON token_usage_logs(request_time)",
)
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
    ip_count: int | None = None  # ip_limit: the count the message quotes
    beijing: str | None = None  # curfew: "HH:MM" now, Beijing time


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
            return Check("ip_limit", row, IP_LIMIT.format(count=count, max_ips=row.max_ips), ip_count=count)
    # l.641-660: both set and non-empty, else no curfew.
    start, end = row.curfew_start, row.curfew_end
    if start and end:
        current = beijing_hhmm(now)
        if in_curfew(start, end, current):
            return Check("curfew", row, CURFEW.format(start=start, end=end, now=current), beijing=current)
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


# ------------------------------------------------------------------- SQLite

# Columns read with `?` in get_token_by_value (l.349-363): NULL or a wrong type fails the lookup.
_TEXT = ("id", "token", "username", "expires_type")
_INT = ("enabled", "max_ips", "created_at", "updated_at", "total_requests", "total_tokens_used")
_OPT_TEXT = ("description",)
_OPT_INT = ("expires_at", "last_used_at")
_I32 = (-(2 ** 31), 2 ** 31 - 1)


class SqliteTokenStore:
    """The app's `user_tokens.db`, read-only; never written, never locked against the app.

    * Opened as `file:<path>?mode=ro` (an SQLite URI): a missing file is an
      error, never created; nothing is ever written to it.
    * Every query runs alone in autocommit (no transaction held open), so
      the shared lock lasts as long as one SELECT; `timeout` (seconds) bounds
      the wait when the app is writing. One connection per thread.
    * The rows are read as rusqlite reads them (`SELECT * FROM user_tokens
      WHERE token = ?`, exact and case-sensitive): NULL or a wrongly typed
      value in a column the app reads with `?` raises TokenStoreError (a
      500 in the original); curfew columns fall back to None as there.
    * Binding queries that fail count as "not bound" and 0, as `unwrap_or` does.
    * **IP bindings are kept in memory**: the bindings the original would
      record after a response (`record()`) are added to the file's, for
      this process only. The app's `token_ip_bindings` never changes.
    """

    def __init__(self, path: str | Path, timeout: float = 0.25):
        self.path = Path(path)
        self.uri = Path(path).absolute().as_uri() + "?mode=ro"
        self.timeout = timeout
        self.recorded: dict[str, set[str]] = {}
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                # isolation_level=None: autocommit, no implicit transaction ever opened.
                conn = sqlite3.connect(self.uri, uri=True, timeout=self.timeout, isolation_level=None)
            except sqlite3.Error as e:
                raise TokenStoreError(f"Failed to open database: {e} ({self.path})") from None
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _query(self, sql: str, params: tuple) -> list:
        conn = self._conn()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            self.close()  # a broken or replaced file: reopen next time
            raise TokenStoreError(f"Failed to query token: {e}") from None

    def lookup(self, token: str) -> TokenRow | None:
        rows = self._query("SELECT * FROM user_tokens WHERE token = ?", (token,))
        if not rows:
            return None
        row = rows[0]
        cols = set(row.keys())

        def get(name, kind):
            if name not in cols:
                raise TokenStoreError(f"Failed to query token: Invalid column name: {name}")
            value = row[name]
            ok = (value is None and kind in ("opt_text", "opt_int")) or \
                 (isinstance(value, str) and kind in ("text", "opt_text")) or \
                 (isinstance(value, int) and kind in ("int", "opt_int"))
            if not ok:
                raise TokenStoreError(f"Failed to query token: Invalid column type {type(value).__name__} "
                                      f"at column {name}")
            return value

        for name in _TEXT:
            get(name, "text")
        for name in _INT:
            get(name, "int")
        for name in _OPT_TEXT:
            get(name, "opt_text")
        for name in _OPT_INT:
            get(name, "opt_int")
        max_ips = row["max_ips"]
        if not _I32[0] <= max_ips <= _I32[1]:  # i32 in the struct
            raise TokenStoreError(f"Failed to query token: Integer {max_ips} out of range at column max_ips")

        def curfew(name):  # `.unwrap_or(None)`: a missing or wrongly typed column is no curfew
            value = row[name] if name in cols else None
            return value if isinstance(value, str) else None

        return TokenRow(id=row["id"], token=row["token"], username=row["username"], enabled=row["enabled"] != 0,
                        expires_type=row["expires_type"], expires_at=row["expires_at"], max_ips=max_ips,
                        curfew_start=curfew("curfew_start"), curfew_end=curfew("curfew_end"),
                        description=row["description"])

    def is_bound(self, token_id: str, ip: str) -> bool:
        try:
            rows = self._query("SELECT EXISTS(SELECT 1 FROM token_ip_bindings WHERE token_id = ? "
                               "AND ip_address = ?)", (token_id, ip))
        except TokenStoreError:
            # .unwrap_or(false), l.619; the recorded bindings stand for rows the original
            # would have written to this same file, so they are lost with it.
            return False
        return bool(rows[0][0]) or ip in self.recorded.get(token_id, ())

    def ip_count(self, token_id: str) -> int:
        try:
            rows = self._query("SELECT ip_address FROM token_ip_bindings WHERE token_id = ?", (token_id,))
        except TokenStoreError:
            return 0  # .unwrap_or(0), l.629
        return len({r[0] for r in rows} | self.recorded.get(token_id, set()))

    def record(self, token_id: str, ip: str) -> None:
        self.recorded.setdefault(token_id, set()).add(ip)
