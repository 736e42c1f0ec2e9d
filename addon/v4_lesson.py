"""Today's Antigravity (v4.5.8) against a live gate: `just demo --profile v4`.

    python3 addon/faq_lesson.py --profile v4 [--lang fr]

Starts the gate (mitmdump with addon/auth.py) and a local upstream on free
loopback ports, pointed at a throwaway copy of the app's own files: a
gui_config.json and a user_tokens.db (the original's tables, three user
tokens). Then walks what v4 changed since the FAQ, each rule with the version
it came from: /api/health public, the admin routes (with and without the
admin password, in every mode), a wrong key's 403 token_rejected, an expired
token, a curfew, the IP limit, /internal/, off mode's tagging, and the empty
api_key quirk. Between scenarios it saves gui_config.json as the app does,
which applies to the next request. Exits 1 if anything behaves otherwise than
v4.5.8's code.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import lesson_run
from authgate.config import token_db
from authgate.config.settings import generate_key
from authgate.rules import tokens
from authgate.rules.credentials import fingerprint
from authgate.words import explain

PASSWORD = "admin-" + generate_key()[3:15]  # a throwaway admin password


@dataclass(frozen=True)
class Scenario:
    since: str  # the first release with the rule (docs/versions-and-v4.md, "The v4 rules")
    title: str
    mode: str
    status: int  # what v4.5.8's code answers
    reason: str
    path: str = "/v1/models"
    headers: tuple[tuple[str, str], ...] = ()  # "$KEY", "$PASSWORD" stand for the app's secrets
    password: bool = False  # admin_password set in gui_config.json
    empty_key: bool = False  # api_key "" in gui_config.json
    token: str | None = None  # the user-token verdict the gate reports
    message: str | None = None  # the start of the original's 403 message
    log: str | None = None  # a line the original logs, word for word


def _beijing_window() -> tuple[str, str]:
    """A curfew around the current Beijing time (UTC+8), ten minutes either side."""
    now = time.time()
    return tokens.beijing_hhmm(now - 600), tokens.beijing_hhmm(now + 600)


CURFEW = _beijing_window()
KEY = (("Authorization", "Bearer $KEY"),)

LESSON = (
    Scenario("v4.0.2", "/api/health without a key, strict: public in every mode", "strict", 200, "admin_health",
             path="/api/health"),
    Scenario("v4.0.10", "/health without a key, all_except_health (like /healthz)", "all_except_health", 200,
             "health_paths_exempt", path="/health"),
    Scenario("v4.2.2", "admin route /api/accounts, auth off, no credential: 401", "off", 401, "missing",
             path="/api/accounts"),
    Scenario("v4.0.2", "admin route with the api_key, no admin_password set", "off", 200, "admin_key_ok",
             path="/api/accounts", headers=KEY),
    Scenario("v4.0.2", "admin route with the api_key once admin_password is set: 401", "strict", 401,
             "admin_api_key_refused", path="/api/accounts", headers=KEY, password=True),
    Scenario("v4.0.2", "admin route with the admin_password", "strict", 200, "admin_password_ok",
             path="/api/accounts", headers=(("x-api-key", "$PASSWORD"),), password=True),
    Scenario("v4.1.12", "a wrong key on a proxy route: 403 token_rejected, not 401", "strict", 403, "mismatch",
             headers=(("Authorization", "Bearer sk-unknown"),), token="unknown",
             message=tokens.INVALID_TOKEN, log="UserToken rejected: " + tokens.INVALID_TOKEN),
    Scenario("v3.3.8", "no key at all: still 401 (empty body in the original)", "strict", 401, "missing"),
    Scenario("v4.1.0", "a user token from user_tokens.db", "strict", 200, "token_ok",
             headers=(("x-api-key", "sk-user-alice"),), token="ok"),
    Scenario("v4.1.12", "an expired user token: 403", "strict", 403, "token_expired",
             headers=(("x-api-key", "sk-user-bob"),), token="expired", message=tokens.EXPIRED,
             log="UserToken rejected: " + tokens.EXPIRED),
    Scenario("v4.1.12", f"a user token in its curfew {CURFEW[0]}-{CURFEW[1]} Beijing time: 403", "strict", 403,
             "token_curfew", headers=(("x-api-key", "sk-user-erin"),), token="curfew",
             message=f"Service is not available between {CURFEW[0]} and {CURFEW[1]} Beijing Time"),
    Scenario("v4.1.0", "a user token over its IP limit (X-Forwarded-For picks the IP): 403", "strict", 403,
             "token_ip_limit", headers=(("x-api-key", "sk-user-carol"), ("X-Forwarded-For", "203.0.113.7")),
             token="ip_limit", message="IP limit reached (1/1)."),
    Scenario("v4.1.0", "/internal/warmup without a key, strict", "strict", 200, "internal_exempt",
             path="/internal/warmup"),
    Scenario("v4.1.0", "auth off: the expired token is tagged, never checked", "off", 200, "auth_off",
             headers=(("x-api-key", "sk-user-bob"),), token="tagged"),
    Scenario("v4.0.2", "api_key empty, admin_password set: an empty key header passes (quirk)", "strict", 200,
             "empty_key_accepted", headers=(("x-api-key", ""),), password=True, empty_key=True),
)


def make_token_db(path: Path) -> None:
    """user_tokens.db with the original's tables and three user tokens (as the app inserts them)."""
    now = int(time.time())
    rows = [("u-alice", "sk-user-alice", "alice", "never", None, 0, None, None),
            ("u-bob", "sk-user-bob", "bob", "day", now - 86400, 0, None, None),
            ("u-carol", "sk-user-carol", "carol", "never", None, 1, None, None),
            ("u-erin", "sk-user-erin", "erin", "never", None, 0, *CURFEW)]
    conn = sqlite3.connect(path)
    try:
        for statement in token_db.SCHEMA:
            conn.execute(statement)
        conn.executemany("INSERT INTO user_tokens (id, token, username, expires_type, expires_at, max_ips, "
                         "curfew_start, curfew_end, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         [(*row, now, now) for row in rows])
        conn.execute("INSERT INTO token_ip_bindings (id, token_id, ip_address, first_seen_at, last_seen_at) "
                     "VALUES ('b-1', 'u-carol', '198.51.100.1', ?, ?)", (now, now))
        conn.commit()
    finally:
        conn.close()


class Gate(lesson_run.Gate):
    """The gate on a config.yaml that names the app's gui_config.json beside it."""

    def write(self, s: Scenario) -> None:
        app = {"language": "en", "theme": "system", "auto_refresh": True, "refresh_interval": 15,
               "auto_sync": False, "sync_interval": 5,
               "proxy": {"enabled": True, "port": 8045, "api_key": "" if s.empty_key else self.key,
                         "auto_start": False, "auth_mode": s.mode, "allow_lan_access": False,
                         "admin_password": PASSWORD if s.password else None}}
        path = self.config.with_name("gui_config.json")
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(app, indent=2))
        os.replace(tmp, path)  # one atomic save: the gate reads it on the next request

    def send(self, s: Scenario, lang: str) -> tuple[int, dict, str | None]:
        headers = {n: v.replace("$KEY", self.key).replace("$PASSWORD", PASSWORD) for n, v in s.headers}
        status, seen, body = self.get(s.path, headers, lang)
        message = json.loads(body)["error"]["message"] if status == 403 else None
        return status, seen, message


def check(s: Scenario, status: int, seen: dict, message: str | None, logged: bool) -> list[str]:
    wrong = []
    if status != s.status:
        wrong.append(f"status {status}, v4.5.8 answers {s.status}")
    if seen.get("reason") != s.reason:
        wrong.append(f"reason {seen.get('reason')}, expected {s.reason}")
    if s.token and seen.get("token") != s.token:
        wrong.append(f"user token {seen.get('token')}, expected {s.token}")
    if s.message and not (message or "").startswith(s.message):
        wrong.append(f"403 message {message!r}, v4.5.8 says {s.message!r}…")
    if s.log and not logged:
        wrong.append(f"the log line {s.log!r} did not appear")
    return wrong


def run(lang: str = "en", out=sys.stdout) -> int:
    cat = explain.CATALOGS[lang]

    def scenario(s: Scenario) -> tuple[list[str], str, list[str]]:
        (status, seen, message), logged = gate.exchange(s, lang)
        wrong = check(s, status, seen, message, logged)
        why = cat.reasons[seen["reason"]].label if seen.get("reason") in cat.reasons else "?"
        row = f"{s.since:<9}{s.title:<76}{status:<7}{seen.get('token', '-'):<10}{why}"
        lines = [lesson_run.curl_line(gate, s)] + ([f"403: {message}"] if message else []) + (
            [f"log: {s.log}"] if s.log and logged else [])
        return wrong, row, lines

    def make_gate(tmp: Path, upstream_port: int) -> Gate:
        config = tmp / "config.yaml"
        config.write_text(f"app_config: gui_config.json\nproxy:\n  port: 0\nupstream:\n"
                          f"  url: http://127.0.0.1:{upstream_port}\n")
        make_token_db(tmp / "user_tokens.db")
        gate = Gate(config, upstream_port, generate_key())
        gate.write(LESSON[0])
        return gate

    if lang != "en":  # only the why column has its words in every language
        print(f"(--lang {lang}: the v4 lesson is shown in English; only its why column follows --lang.)\n", file=out)
    with lesson_run.upstream_and_gate("v4-lesson-", make_gate) as gate:
        print(f"v4.5.8's auth layer against a live gate: 127.0.0.1:{gate.port} → upstream 127.0.0.1:"
              f"{gate.upstream_port}, reading the app's files in {gate.config.parent}: gui_config.json (saved "
              f"between scenarios, as the app saves it; KEY={fingerprint(gate.key)}, "
              f"PASSWORD={fingerprint(PASSWORD)}, throwaway) and user_tokens.db (read-only)\n", file=out)
        print(f"   {'since':<9}{'scenario':<76}{'status':<7}{'token':<10}why", file=out)
        failures = lesson_run.walk(LESSON, scenario, 12, out)
    return lesson_run.summary(len(LESSON), failures, "{ok} of {total} scenarios behave as v4.5.8's code says.",
                              "{ok} of {total} scenarios behave as v4.5.8's code says; {bad} do not.", out)
