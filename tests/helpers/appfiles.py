"""The app's own files, as Antigravity Tools v4.5.8 writes them, for the tests.

- `write_gui_config`: gui_config.json as the app saves it (modules/config.rs
  save_app_config: `serde_json::to_string_pretty`, then `fs::write`, which
  truncates and rewrites the same file in place: same inode).
- `make_token_db`: user_tokens.db built with the original's CREATE TABLE
  statements (token_db.SCHEMA, user_token_db.rs:77-160), rows as the app inserts them.
- `digest`, `snapshot_dir`: what the gate must never change.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import uuid
from pathlib import Path

from authgate.config import token_db

TOP = {"language": "en", "theme": "system", "auto_refresh": True, "refresh_interval": 15, "auto_sync": False,
       "sync_interval": 5}
NOW = 1767225600  # 2026-01-01 00:00 UTC = 08:00 Beijing

_last_mtime = 0


def gui_config(mode="strict", key="sk-app0123456789abcdef0123456789ab", lan=False, port=8045,
               admin_password=None, **extra) -> dict:
    proxy = {"enabled": True, "port": port, "api_key": key, "auto_start": False, "auth_mode": mode,
             "allow_lan_access": lan, "admin_password": admin_password, "custom_mapping": {}, **extra}
    return {**TOP, "proxy": proxy}


def write_gui_config(path: Path, data: dict | None = None, **proxy) -> Path:
    """Save as the app does: pretty JSON, truncated and rewritten in place (fs::write). The
    mtime is made strictly newer, so the gate's stat sees the edit whatever the filesystem's
    timestamp granularity (two saves within one clock tick would otherwise look the same)."""
    global _last_mtime
    text = json.dumps(data if data is not None else gui_config(**proxy), indent=2)
    with open(path, "w", encoding="utf-8") as f:  # O_TRUNC: the same inode, as fs::write
        f.write(text)
    _last_mtime = max(time.time_ns(), _last_mtime + 50_000_000)
    os.utime(path, ns=(_last_mtime, _last_mtime))
    return path


def make_token_db(path: Path, rows=(), bindings=()) -> Path:
    """rows: dicts of user_tokens columns (id, token, username at least); bindings: (token_id, ip)."""
    conn = sqlite3.connect(path)
    for statement in token_db.SCHEMA:
        conn.execute(statement)
    for row in rows:
        values = {"description": None, "enabled": 1, "expires_type": "never", "expires_at": None, "max_ips": 0,
                  "created_at": NOW, "updated_at": NOW, "last_used_at": None, "total_requests": 0,
                  "total_tokens_used": 0, "curfew_start": None, "curfew_end": None, **row}
        conn.execute(f"INSERT INTO user_tokens ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                     tuple(values.values()))
    for token_id, ip in bindings:
        conn.execute("INSERT INTO token_ip_bindings (id, token_id, ip_address, first_seen_at, last_seen_at, "
                     "request_count) VALUES (?, ?, ?, ?, ?, 1)", (str(uuid.uuid4()), token_id, ip, NOW, NOW))
    conn.commit()
    conn.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot_dir(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file in the folder: name -> (sha256, inode). A journal or a new file shows up too."""
    return {p.name: (digest(p), p.stat().st_ino) for p in sorted(Path(folder).iterdir()) if p.is_file()}
