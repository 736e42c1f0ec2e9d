"""The app's user_tokens.db, read-only (token_db.SqliteTokenStore), against a real SQLite
file built with the original's own CREATE TABLE statements (user_token_db.rs at v4.5.8)."""

import sqlite3
import threading

import pytest

from appfiles import digest
from appfiles import make_token_db as make_db
from authgate.config import token_db
from authgate.config.token_db import SqliteTokenStore
from authgate.rules.common import RequestView
from authgate.rules.decide import decide
from authgate.rules.tokens import TokenRow, TokenStoreError, validate
from policy import Policy

NOW = 1767225600  # 2026-01-01 00:00 UTC, 08:00 Beijing


ALICE = {"id": "u-1", "token": "sk-alice", "username": "alice"}


def test_schema_is_the_originals():
    # user_token_db.rs:77-160, column for column
    schema = " ".join(" ".join(s.split()) for s in token_db.SCHEMA)
    for column in ("id TEXT PRIMARY KEY", "token TEXT UNIQUE NOT NULL", "username TEXT NOT NULL",
                   "description TEXT", "enabled BOOLEAN NOT NULL DEFAULT 1", "expires_type TEXT NOT NULL",
                   "expires_at INTEGER", "max_ips INTEGER NOT NULL DEFAULT 0", "created_at INTEGER NOT NULL",
                   "updated_at INTEGER NOT NULL", "last_used_at INTEGER", "total_requests INTEGER NOT NULL DEFAULT 0",
                   "total_tokens_used INTEGER NOT NULL DEFAULT 0", "curfew_start TEXT", "curfew_end TEXT",
                   "UNIQUE(token_id, ip_address)", "FOREIGN KEY(token_id) REFERENCES user_tokens(id) ON DELETE CASCADE",
                   "CREATE INDEX IF NOT EXISTS idx_token_usage_logs_request_time ON token_usage_logs(request_time)"):
        assert column in schema, column


def test_sqlite_store_reads_rows_as_the_app_does(tmp_path):
    db = make_db(tmp_path / "user_tokens.db", [
        {**ALICE, "max_ips": 2, "curfew_start": "22:00", "curfew_end": "06:00", "enabled": 0,
         "expires_type": "day", "expires_at": NOW + 60, "description": "team"},
    ], [("u-1", "10.0.0.1")])
    s = SqliteTokenStore(db)
    row = s.lookup("sk-alice")
    assert row == TokenRow(id="u-1", token="sk-alice", username="alice", enabled=False, expires_type="day",
                           expires_at=NOW + 60, max_ips=2, curfew_start="22:00", curfew_end="06:00",
                           description="team")
    assert s.lookup("sk-ALICE") is None and s.lookup("sk-nobody") is None  # exact, BINARY collation
    assert s.is_bound("u-1", "10.0.0.1") and not s.is_bound("u-1", "10.0.0.2")
    assert s.ip_count("u-1") == 1 and s.ip_count("u-2") == 0


def test_sqlite_store_never_writes_and_records_in_memory(tmp_path):
    db = make_db(tmp_path / "user_tokens.db", [{**ALICE, "max_ips": 2}], [("u-1", "10.0.0.1")])
    before = digest(db)
    s = SqliteTokenStore(db)
    s.record("u-1", "10.0.0.2")  # what monitor.rs would write after the response
    assert s.is_bound("u-1", "10.0.0.2") and s.ip_count("u-1") == 2
    s.record("u-1", "10.0.0.1")  # already in the file: counted once
    assert s.ip_count("u-1") == 2
    assert validate(s, "sk-alice", "10.0.0.3", NOW).verdict == "ip_limit"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        s._conn().execute("DELETE FROM user_tokens")
    s.close()
    assert digest(db) == before
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM token_ip_bindings").fetchone()[0] == 1
    conn.close()


def test_sqlite_store_opens_read_only_by_uri_and_never_creates(tmp_path):
    s = SqliteTokenStore(tmp_path / "odd ?#% name" / "user_tokens.db")
    assert s.uri.startswith("file:///") and s.uri.endswith("?mode=ro") and "%3F%23%25" in s.uri
    with pytest.raises(TokenStoreError, match="Failed to"):
        s.lookup("sk-alice")
    assert not (tmp_path / "odd ?#% name").exists()


def test_sqlite_store_holds_no_lock_between_queries(tmp_path):
    db = make_db(tmp_path / "user_tokens.db", [ALICE])
    s = SqliteTokenStore(db)
    assert s.lookup("sk-alice") is not None and s.ip_count("u-1") == 0
    # the app writes while the store's connection stays open: nothing waits
    app = sqlite3.connect(db, timeout=0)
    app.execute("BEGIN EXCLUSIVE")
    app.execute("UPDATE user_tokens SET username = 'alice2' WHERE id = 'u-1'")
    app.commit()
    app.close()
    assert s.lookup("sk-alice").username == "alice2"


def test_sqlite_store_gives_up_quickly_while_the_app_holds_a_write_lock(tmp_path):
    db = make_db(tmp_path / "user_tokens.db", [ALICE])
    s = SqliteTokenStore(db, timeout=0.05)
    app = sqlite3.connect(db, timeout=0)
    app.execute("BEGIN EXCLUSIVE")  # the app mid-write, in rollback-journal mode
    try:
        with pytest.raises(TokenStoreError, match="locked"):
            s.lookup("sk-alice")
        assert s.is_bound("u-1", "x") is False and s.ip_count("u-1") == 0  # .unwrap_or(false) / (0)
    finally:
        app.rollback()
        app.close()
    assert s.lookup("sk-alice") is not None  # reopened, and fine once the app is done


@pytest.mark.parametrize("column, value", [
    ("enabled", None), ("enabled", "yes"), ("max_ips", None), ("max_ips", 2 ** 31), ("created_at", "soon"),
    ("total_requests", None), ("username", b"\x00"), ("expires_at", "tomorrow"), ("description", b"x"),
])
def test_values_rusqlite_refuses_make_the_lookup_fail(tmp_path, column, value):
    # get_token_by_value's row.get(...)? fails on NULL or a wrong type (a number in a TEXT column is
    # stored as text by SQLite: a blob is the wrong type there): a 500 on the strict path
    db = tmp_path / "user_tokens.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE user_tokens (id TEXT, token TEXT, username TEXT, description TEXT, enabled, "
                 "expires_type TEXT, expires_at, max_ips, created_at, updated_at, last_used_at, total_requests, "
                 "total_tokens_used, curfew_start TEXT, curfew_end TEXT)")
    row = {"id": "u-1", "token": "sk-alice", "username": "alice", "description": None, "enabled": 1,
           "expires_type": "never", "expires_at": None, "max_ips": 0, "created_at": NOW, "updated_at": NOW,
           "last_used_at": None, "total_requests": 0, "total_tokens_used": 0, "curfew_start": None,
           "curfew_end": None, column: value}
    conn.execute(f"INSERT INTO user_tokens VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    conn.commit()
    conn.close()
    with pytest.raises(TokenStoreError):
        SqliteTokenStore(db).lookup("sk-alice")


def test_curfew_columns_fall_back_to_none(tmp_path):
    # curfew_start/end: .unwrap_or(None) (l.357-358), so an old table without them has no curfew
    db = tmp_path / "user_tokens.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE user_tokens (id TEXT, token TEXT, username TEXT, description TEXT, enabled, "
                 "expires_type TEXT, expires_at, max_ips, created_at, updated_at, last_used_at, total_requests, "
                 "total_tokens_used)")
    conn.execute("INSERT INTO user_tokens VALUES ('u-1', 'sk-alice', 'alice', NULL, 1, 'never', NULL, 0, 1, 1, "
                 "NULL, 0, 0)")
    conn.execute("CREATE TABLE token_ip_bindings (token_id TEXT, ip_address TEXT)")
    conn.commit()
    conn.close()
    row = SqliteTokenStore(db).lookup("sk-alice")
    assert (row.curfew_start, row.curfew_end) == (None, None)


def test_a_real_database_through_the_decision(tmp_path):
    db = make_db(tmp_path / "user_tokens.db", [
        {**ALICE, "max_ips": 1},
        {"id": "u-2", "token": "sk-bob", "username": "bob", "expires_type": "day", "expires_at": NOW - 1},
    ], [("u-1", "10.0.0.1")])
    s = SqliteTokenStore(db)
    policy = Policy("strict", profile="v4")

    def run(key, ip):
        return decide(RequestView("POST", "/v1/chat/completions",
                                  ((b"x-api-key", key.encode()), (b"x-forwarded-for", ip.encode()))), policy, s, NOW)

    assert run("sk-alice", "10.0.0.1").token == "ok"
    assert run("sk-alice", "10.0.0.2").rejection.startswith("IP limit reached (1/1).")
    assert run("sk-bob", "10.0.0.1").token == "expired"
    assert run("sk-carol", "10.0.0.1").token == "unknown"


def test_store_works_from_several_threads(tmp_path):
    db = make_db(tmp_path / "user_tokens.db", [ALICE])
    s = SqliteTokenStore(db)
    found = []
    threads = [threading.Thread(target=lambda: found.append(s.lookup("sk-alice").id)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == ["u-1"] * 4
