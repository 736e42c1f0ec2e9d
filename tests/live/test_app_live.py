"""Live: real `mitmdump -s addon/auth.py` pointed at the app's own files, on ephemeral loopback
ports. A real user_tokens.db (the original's CREATE TABLE statements, token_db.SCHEMA) and a real
gui_config.json saved the way the app saves it while the gate runs: a mode change and a key
Regenerate apply to the next request, new rows in the database at once, and the gate changes
neither file nor anything else in the app's folder. Every process is stopped at the end.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time

import pytest

from appfiles import gui_config, make_token_db, snapshot_dir, write_gui_config
from live import ADDON, Gate, Process, closed_port, write_config
from raw_http import send
from upstreams import Upstream

APP_KEY = "sk-liveapp0123456789abcdef012345"
NEW_KEY = "sk-liveNEW0123456789abcdef012345"
PASSWORD = "live-admin-pass"
EXPIRED = "Your token has expired. Please contact the administrator to renew it."
INVALID = "Invalid token. Please check your API key."
SECRETS = (APP_KEY, NEW_KEY, PASSWORD, "sk-live-alice", "sk-live-bob", "sk-live-carol", "sk-live-dave")


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "antigravity_tools"
    folder.mkdir()
    write_gui_config(folder / "gui_config.json", gui_config(mode="strict", key=APP_KEY, port=closed_port()))
    make_token_db(folder / "user_tokens.db", [
        {"id": "u-alice", "token": "sk-live-alice", "username": "alice"},
        {"id": "u-bob", "token": "sk-live-bob", "username": "bob", "expires_type": "day",
         "expires_at": int(time.time()) - 3600},
        {"id": "u-carol", "token": "sk-live-carol", "username": "carol", "max_ips": 1},
    ])
    return folder


@pytest.fixture
def echo():
    with Upstream() as e:
        yield e


def one_command(data, echo, tmp_path) -> Process:
    """docs/versions-and-v4.md's one command (`--set auth_config=antigravity`, the app found through
    ABV_DATA_DIR), on an ephemeral port and the test's upstream. The gate's own config.yaml is then
    the one beside addon/: run from a copy of addon/ without one (a fresh clone's, the shipped
    defaults read as they are), never the user's config.yaml, whatever it holds."""
    clone = tmp_path / "clone"
    shutil.copytree(ADDON.parent, clone / "addon", ignore=shutil.ignore_patterns("__pycache__"))
    gate = Process("mitmdump", "-s", str(clone / "addon" / ADDON.name), "--set", f"confdir={tmp_path}",
                   "--set", "auth_config=antigravity",
                   "--set", "auth_port=0", "--set", f"auth_upstream={echo.url}", cwd=tmp_path,
                   env={"ABV_DATA_DIR": str(data)})
    return gate.wait_listening()


def get(gate, *headers, path="/v1/models"):
    return send(gate.port, "GET", path, list(headers))


def test_the_gate_follows_the_apps_files_live_and_never_writes_them(data, echo, tmp_path):
    path = data / "gui_config.json"
    with one_command(data, echo, tmp_path) as gate:
        assert gate.wait_for(f"auth from the app's {path}")
        assert f"user tokens from {data / 'user_tokens.db'} (read-only" in gate.output
        assert gate.host == "127.0.0.1"
        before = snapshot_dir(data)

        r = get(gate, ("Authorization", f"Bearer {APP_KEY}"))
        assert r.from_echo and "authorization" not in r.echo_headers()  # the key never goes upstream
        assert get(gate).status == 401
        # user tokens from the real database
        assert get(gate, ("x-api-key", "sk-live-alice")).from_echo
        r = get(gate, ("x-api-key", "sk-live-bob"))
        assert (r.status, r.message) == (403, EXPIRED)
        assert gate.wait_for(f"UserToken rejected: {EXPIRED}")
        # the IP limit counts the binding recorded after the first response (in memory)
        assert get(gate, ("x-api-key", "sk-live-carol"), ("X-Forwarded-For", "203.0.113.1")).from_echo
        r = get(gate, ("x-api-key", "sk-live-carol"), ("X-Forwarded-For", "203.0.113.2"))
        assert r.status == 403 and r.message.startswith("IP limit reached (1/1).")

        # the app adds a token: the next request sees it (one SELECT per lookup, no cache)
        conn = sqlite3.connect(data / "user_tokens.db")
        conn.execute("INSERT INTO user_tokens (id, token, username, expires_type, created_at, updated_at) "
                     "VALUES ('u-dave', 'sk-live-dave', 'dave', 'never', 0, 0)")
        conn.commit()
        conn.close()
        assert get(gate, ("x-api-key", "sk-live-dave")).from_echo
        before["user_tokens.db"] = snapshot_dir(data)["user_tokens.db"]  # the app's write, not the gate's

        # the app switches the mode: the next request
        write_gui_config(path, gui_config(mode="off", key=APP_KEY, port=gui_port(path)))
        assert get(gate).from_echo
        # the app's Regenerate: the old key is now an unknown token, the new one works
        write_gui_config(path, gui_config(mode="strict", key=NEW_KEY, port=gui_port(path)))
        r = get(gate, ("Authorization", f"Bearer {APP_KEY}"))
        assert (r.status, r.message) == (403, INVALID)
        assert get(gate, ("Authorization", f"Bearer {NEW_KEY}")).from_echo
        # an admin password set in the app: the admin routes take it, never the api_key
        write_gui_config(path, gui_config(mode="strict", key=NEW_KEY, port=gui_port(path), admin_password=PASSWORD))
        assert get(gate, ("x-api-key", NEW_KEY), path="/api/accounts").status == 401
        assert get(gate, ("x-api-key", PASSWORD), path="/api/accounts").from_echo
        assert get(gate, path="/api/health").json() == {"status": "ok", "version": "4.5.8"}
        expected = {**before, "gui_config.json": snapshot_dir(data)["gui_config.json"]}
        out = gate.stop()
    # the gate wrote nothing: every file as the app (the test) left it, nothing added (no journal)
    assert snapshot_dir(data) == expected
    assert expected["gui_config.json"][1] == before["gui_config.json"][1]  # the app rewrote its file in place
    assert "Traceback" not in out
    for secret in SECRETS:
        assert secret not in out


def gui_port(path) -> int:
    return json.loads(path.read_text())["proxy"]["port"]


def test_shadow_mode_predicts_the_apps_v4_answers_live(data, echo, tmp_path):
    """client → shadow gate (the app's files, auth_enforce false) → a stand-in for the app (a gate on
    the same files, bare answers as the original's) → upstream: v4 answers predicted, mismatches named."""
    real_cfg = tmp_path / "real" / "config.yaml"
    real_cfg.parent.mkdir()
    write_config(real_cfg, f"app_config: {data / 'gui_config.json'}\nupstream:\n  url: {echo.url}\n")
    with Gate(real_cfg, "--set", "auth_explain=false") as real:
        shadow_cfg = tmp_path / "shadow" / "config.yaml"
        shadow_cfg.parent.mkdir()
        write_config(shadow_cfg, f"app_config: {data / 'gui_config.json'}\nproxy:\n  auth_enforce: false\n"
                                 f"upstream:\n  url: {real.url}\n")
        with Gate(shadow_cfg) as shadow:
            cases = [
                ((("x-api-key", "sk-wrong"),), 403, "as_predicted"),
                ((("x-api-key", "sk-live-bob"),), 403, "as_predicted"),
                ((), 401, "as_predicted"),
                ((("x-api-key", APP_KEY),), 200, "passed"),
            ]
            for headers, status, verdict in cases:
                r = get(shadow, *headers)
                assert r.status == status and r.header("x-auth-gate").endswith(f"; shadow={verdict}"), (
                    headers, r.status, r.header("x-auth-gate"))
                if status == 403:  # the stand-in's bare body, as the original writes it, reaches the client
                    assert set(r.json()) == {"error"} and r.json()["error"]["type"] == "token_rejected"
        # the stand-in's key differs from what the shadow reads: named
        with Gate(real_cfg, "--set", "auth_explain=false", "--set", f"auth_api_key={NEW_KEY}") as other:
            write_config(shadow_cfg, f"app_config: {data / 'gui_config.json'}\nproxy:\n  auth_enforce: false\n"
                                     f"upstream:\n  url: {other.url}\n")
            with Gate(shadow_cfg) as shadow:
                r = get(shadow, ("x-api-key", APP_KEY))
                assert r.status == 403 and r.header("x-auth-gate").endswith("; shadow=other_403")
                assert shadow.wait_for("api_key or user tokens differ from what the gate reads")
                r = get(shadow, ("x-api-key", NEW_KEY))
                assert r.status == 200 and r.header("x-auth-gate").endswith("; shadow=should_refuse")
