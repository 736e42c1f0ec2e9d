"""`just explain --profile v4`: the v4.5.8 decision for one request, in-process."""

import pytest

from appfiles import gui_config, make_token_db, snapshot_dir, write_gui_config
from authgate.cli import explain as explain_cli
from authgate.config.paths import TEMPLATE

KEY = "sk-0123456789abcdef0123456789abcdef"


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"""proxy:
  auth_mode: strict
  api_key: {KEY}
tokens:
  - token: sk-user-1
    username: alice
    max_ips: 1
    bound_ips: ["10.0.0.1"]
    curfew_start: "22:00"
    curfew_end: "06:00"
""")
    return str(path)


def test_faq_stays_the_default(config):
    out = explain_cli.run(["--config", config, "-H", "x-api-key: sk-user-1"])
    assert "comment: 401 · strict · x-api-key won (Authorization absent) · key mismatch" in out
    assert "original's answer" not in out


def test_v4_uses_the_config_tokens_and_client_ip_headers(config):
    out = explain_cli.run(["--config", config, "--profile", "v4", "-H", "x-api-key: sk-user-1",
                           "-H", "X-Forwarded-For: 10.0.0.1", "--now", "2026-12-01T12:00+08:00"])
    assert "comment: pass · strict · x-api-key won (Authorization absent) · user token ok" in out
    assert "recorded after the response: IP 10.0.0.1 for the token of alice" in out
    out = explain_cli.run(["--config", config, "--profile", "v4", "-H", "x-api-key: sk-user-1",
                           "-H", "X-Forwarded-For: 10.0.0.1", "--now", "2026-12-01T23:30+08:00"])
    assert "403 · strict" in out and "user token curfew" in out
    assert ('the original\'s answer: 403 {"error":{"message":"Service is not available between 22:00 and 06:00 '
            'Beijing Time (Curfew enabled). Current Beijing time: 23:30","type":"token_rejected",'
            '"code":"token_rejected"}}') in out
    out = explain_cli.run(["--config", config, "--profile", "v4", "-H", "x-api-key: sk-user-1", "--now", "0"])
    assert "IP limit reached (1/1)." in out and "client IP for user tokens: 127.0.0.1" in out
    assert "sk-user-1" not in out and KEY not in out


def test_v4_admin_password_and_admin_routes(config):
    out = explain_cli.run(["--config", config, "--profile", "v4", "--admin-password", "pw", "-H",
                           f"Authorization: Bearer {KEY}", "/api/config"])
    assert "comment: 401 · admin API · Authorization won · api_key refused on admin route" in out
    assert "the original's answer: 401 (empty body)" in out


def test_v4_reads_the_apps_database_read_only(config, tmp_path):
    db = make_token_db(tmp_path / "user_tokens.db", [{"id": "u", "token": "sk-db", "username": "bob",
                                                       "expires_type": "day", "expires_at": 100,
                                                       "created_at": 1, "updated_at": 1}])
    out = explain_cli.run(["--config", config, "--profile", "v4", "--tokens-db", str(db), "-H", "x-api-key: sk-db"])
    assert "user token expired" in out and "Your token has expired." in out
    out = explain_cli.run(["--config", config, "--profile", "v4", "--tokens-db", str(tmp_path / "none.db"),
                           "-H", "x-api-key: sk-db"])
    assert "500 · strict" in out and "the original's answer: 500 (empty body)" in out


def test_now_needs_a_time_zone(config, capsys):
    with pytest.raises(SystemExit):
        explain_cli.run(["--config", config, "--now", "2026-12-01T23:30"])
    assert "give a time zone" in capsys.readouterr().err


def test_the_apps_own_files_as_the_gate_reads_them(tmp_path, monkeypatch):
    data = tmp_path / "abv"
    data.mkdir()
    write_gui_config(data / "gui_config.json", gui_config(mode="all_except_health", key=KEY, admin_password="pw"))
    make_token_db(data / "user_tokens.db", [{"id": "u-1", "token": "sk-app-user", "username": "zoe",
                                             "expires_type": "day", "expires_at": 1000}])
    before = snapshot_dir(data)
    monkeypatch.setenv("ABV_DATA_DIR", str(data))
    # With the app's file the gate's own config.yaml is the default one: a fresh clone's (the shipped
    # defaults), never the user's config.yaml, whatever it holds (an upstream.headers ${VAR}, say).
    monkeypatch.setattr(explain_cli, "DEFAULT_CONFIG", TEMPLATE)
    out = explain_cli.run(["--config", "antigravity", "-H", "x-api-key: sk-app-user"])
    assert "comment: 403 · all_except_health · x-api-key won (Authorization absent) · user token expired" in out
    assert f"settings: {data / 'gui_config.json'}, api_key sk-…cdef" in out
    out = explain_cli.run(["--config", str(data / "gui_config.json"), "/api/accounts", "-H", f"x-api-key: {KEY}"])
    assert "401 · admin API" in out and "api_key refused" in out
    assert snapshot_dir(data) == before
