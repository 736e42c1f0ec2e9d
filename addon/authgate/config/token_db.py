"""The app's own `user_tokens.db` (v4.5.8's `user_token_db.rs`), read-only (pure, stdlib only).

* `SCHEMA`: the original's CREATE TABLE statements, for the tests and the
  v4 lesson, which build a `user_tokens.db` as the app does.
* `SqliteTokenStore`: a TokenStore (tokens.py) over that file, opened
  read-only, one short SELECT per lookup; its rows are read as rusqlite
  reads them, and the IP bindings it would record are kept in memory.

The rules applied to the rows (validate(), the curfew, the messages) are
tokens.py's.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from authgate.rules.tokens import TokenRow, TokenStoreError

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
