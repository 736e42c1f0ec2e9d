"""The app's own config in force (authgate/sources.py through ConfigFile and GateState):
auth_config names gui_config.json (or `antigravity` finds it), its proxy.* fields decide,
edits in the app apply to the next request, user_tokens.db gives the user tokens, and
the gate writes neither file. The gate's own listener and upstream stay config.yaml's."""

import json
import logging
from pathlib import Path

import pytest

import auth
from appfiles import digest, make_token_db, snapshot_dir, write_gui_config
from gate_harness import KEY, default_config, running_gate, send, upstream  # noqa: F401

APP_KEY = "sk-app0123456789abcdef0123456789ab"
NEW_KEY = "sk-new0123456789abcdef0123456789ab"


@pytest.fixture
def data(tmp_path):
    folder = tmp_path / "antigravity_tools"
    folder.mkdir()
    write_gui_config(folder / "gui_config.json", mode="strict", key=APP_KEY)
    make_token_db(folder / "user_tokens.db", [
        {"id": "u-1", "token": "sk-alice", "username": "alice"},
        {"id": "u-2", "token": "sk-old", "username": "bob", "expires_type": "day", "expires_at": 1000},
        {"id": "u-3", "token": "sk-one-ip", "username": "carol", "max_ips": 1},
    ])
    return folder


@pytest.fixture
def app_gate(data):
    with running_gate(data / "gui_config.json") as g:
        yield g


def status(f):
    return f.response.status_code if f.response else "forwarded"


async def test_the_apps_fields_decide_and_the_gate_keeps_its_own_listener(app_gate, data):
    s = app_gate.settings
    assert (s.auth_mode, s.api_key, s.profile, s.app_config, s.app_port) == (
        "strict", APP_KEY, "v4", str(data / "gui_config.json"), 8045)
    # the default config.yaml gives the gate's own fields; its port is the app's, so the one below
    assert s.port == 8044 and s.upstream.url == auth_default_upstream()
    assert status(await send(app_gate, headers=[("Authorization", f"Bearer {APP_KEY}")])) == "forwarded"
    assert status(await send(app_gate, headers=[("Authorization", f"Bearer {KEY}")])) == 403  # config.yaml's: unread


async def test_edits_in_the_app_apply_to_the_next_request_and_the_file_is_never_written(app_gate, data):
    path = data / "gui_config.json"
    before = snapshot_dir(data)
    assert status(await send(app_gate)) == 401
    write_gui_config(path, mode="off", key=APP_KEY)  # the app's mode switch
    assert status(await send(app_gate)) == "forwarded"
    write_gui_config(path, mode="strict", key=NEW_KEY)  # the app's Regenerate
    assert status(await send(app_gate, headers=[("x-api-key", APP_KEY)])) == 403  # now an unknown token
    assert status(await send(app_gate, headers=[("x-api-key", NEW_KEY)])) == "forwarded"
    after = snapshot_dir(data)
    assert after.keys() == before.keys()  # no journal, no new file
    assert after["user_tokens.db"] == before["user_tokens.db"]
    assert after["gui_config.json"][1] == before["gui_config.json"][1]  # the app's own inode, rewritten by the app
    assert json.loads(path.read_text())["proxy"]["api_key"] == NEW_KEY  # as the app left it


async def test_user_tokens_come_from_the_apps_database_read_only(app_gate, data):
    db = data / "user_tokens.db"
    before = digest(db)
    f = await send(app_gate, headers=[("x-api-key", "sk-alice")])
    assert status(f) == "forwarded" and f.metadata["auth"]["reason"] == "token_ok"
    f = await send(app_gate, headers=[("x-api-key", "sk-old")])
    assert status(f) == 403 and json.loads(f.response.content)["error"]["message"] == (
        "Your token has expired. Please contact the administrator to renew it.")
    # the IP limit counts the binding recorded after the first response, in memory
    f = await send(app_gate, headers=[("x-api-key", "sk-one-ip"), ("X-Forwarded-For", "203.0.113.1")])
    assert status(f) == "forwarded"
    app_gate.response(f)
    f = await send(app_gate, headers=[("x-api-key", "sk-one-ip"), ("X-Forwarded-For", "203.0.113.2")])
    assert status(f) == 403 and "IP limit reached (1/1)" in json.loads(f.response.content)["error"]["message"]
    assert digest(db) == before


async def test_a_database_that_appears_later_is_used_from_the_next_request(tmp_path):
    write_gui_config(tmp_path / "gui_config.json", mode="strict", key=APP_KEY)
    with running_gate(tmp_path / "gui_config.json") as g:
        f = await send(g, headers=[("x-api-key", "sk-alice")])
        assert status(f) == 403 and "no_token_store" in f.metadata["auth"]["notes"]
        make_token_db(tmp_path / "user_tokens.db", [{"id": "u-1", "token": "sk-alice", "username": "alice"}])
        assert status(await send(g, headers=[("x-api-key", "sk-alice")])) == "forwarded"


async def test_antigravity_finds_the_apps_file_as_the_app_does(data, monkeypatch, tmp_path):
    monkeypatch.setenv("ABV_DATA_DIR", str(data))
    with running_gate(None, auth_config="antigravity") as g:
        assert g.settings.app_config == str(data / "gui_config.json")
    monkeypatch.delenv("ABV_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    data.rename(tmp_path / ".antigravity_tools")
    with running_gate(None, auth_config="antigravity") as g:
        assert g.settings.app_config == str(tmp_path / ".antigravity_tools" / "gui_config.json")


def test_a_missing_app_file_at_start_is_one_error_and_no_listener(tmp_path, caplog):
    with running_gate(tmp_path / "gui_config.json") as g:
        assert g.settings is None and g.tctx.options.server is False
        assert "gui_config.json: (file): does not exist" in caplog.text


async def test_config_yaml_can_name_the_apps_file_and_keeps_its_own_fields(data, tmp_path, upstream):
    cfg = tmp_path / "gate.yaml"
    cfg.write_text(f"app_config: {data.name}/gui_config.json\nproxy:\n  port: 9100\n  allow_lan_access: false\n"
                   f"upstream:\n  url: http://127.0.0.1:{upstream}\n")
    write_gui_config(data / "gui_config.json", mode="auto", lan=True, key=APP_KEY)
    with running_gate(cfg) as g:
        s = g.settings
        assert (s.port, s.upstream.port, s.effective_mode, s.listen_host) == (
            9100, upstream, "all_except_health", "127.0.0.1")  # the app's LAN flag decides auto, not the listener
        assert g.tctx.options.mode == [f"reverse:http://127.0.0.1:{upstream}@127.0.0.1:9100"]
        assert "api_key" not in cfg.read_text()  # no key generated into config.yaml with the app's file


async def test_options_win_over_the_apps_file(app_gate):
    app_gate.configure(auth_mode="off", auth_admin_password="pw", auth_version="4.4.0")
    assert status(await send(app_gate)) == "forwarded"
    f = await send(app_gate, "/api/health")
    assert json.loads(f.response.content) == {"status": "ok", "version": "4.4.0"}
    assert status(await send(app_gate, "/api/accounts", headers=[("x-api-key", APP_KEY)])) == 401
    assert status(await send(app_gate, "/api/accounts", headers=[("x-api-key", "pw")])) == "forwarded"


async def test_a_half_written_app_file_keeps_the_last_good_config(app_gate, data, caplog):
    path = data / "gui_config.json"
    path.write_text('{"language": "en", "proxy": {')  # the app caught mid-write
    assert status(await send(app_gate, headers=[("x-api-key", APP_KEY)])) == "forwarded"
    assert "invalid JSON" in caplog.text and "keeping the last good config" in caplog.text
    write_gui_config(path, mode="off", key=APP_KEY)
    assert status(await send(app_gate)) == "forwarded"


def test_regenerate_never_writes_the_apps_file_and_status_says_where_auth_comes_from(app_gate, data):
    from mitmproxy import exceptions
    before = digest(data / "gui_config.json")
    with pytest.raises(exceptions.CommandError, match="regenerate it in the app"):
        app_gate.commands.regenerate()
    assert digest(data / "gui_config.json") == before
    out = app_gate.commands.status()
    assert f"auth from the app's {data / 'gui_config.json'}" in out and "user_tokens.db (read-only" in out
    assert APP_KEY not in out


def test_shadow_mode_with_the_apps_file_warns_when_the_upstream_is_not_the_app(data, caplog, upstream):
    caplog.set_level(logging.INFO)
    with running_gate(data / "gui_config.json", auth_enforce="false") as g:
        assert "the verdicts judge that upstream's answers, not the app's" in caplog.text
        caplog.clear()
        g.configure(auth_upstream="http://127.0.0.1:8045")
        assert "not the app's" not in caplog.text


def auth_default_upstream() -> str:
    from authgate.config.read import read_config
    return read_config(Path(auth.DEFAULT_CONFIG)).upstream.url


def test_an_app_file_without_proxy_says_its_key_is_random(tmp_path, caplog):
    # #[serde(default)] proxy: the app's defaults, a new random api_key on every load (Q9)
    from appfiles import TOP
    write_gui_config(tmp_path / "gui_config.json", dict(TOP))
    with running_gate(tmp_path / "gui_config.json") as g:
        assert g.settings.effective_mode == "off" and g.settings.api_key.startswith("sk-")
        assert "no \"proxy\" key: the app uses its defaults, with a new random api_key on every load" in caplog.text
        assert g.settings.api_key not in caplog.text
