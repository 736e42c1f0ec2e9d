"""sources.py (pure): which files the snapshot comes from and how config.yaml and the
app's gui_config.json combine."""

import os

import pytest

from appfiles import gui_config, write_gui_config
from authgate.config import sources
from authgate.config.read import parse_config
from authgate.config.settings import ConfigError, Overrides


def test_auth_config_values(tmp_path):
    default = str(tmp_path / "config.yaml")
    assert sources.source_for("other.yaml", default) == sources.Source(os.path.abspath("other.yaml"))
    assert sources.source_for(str(tmp_path / "gui_config.json"), default) == sources.Source(
        default, str(tmp_path / "gui_config.json"))
    env = {"ABV_DATA_DIR": str(tmp_path / "abv")}
    assert sources.source_for("antigravity", default, env) == sources.Source(
        default, str(tmp_path / "abv" / "gui_config.json"))
    assert sources.source_for("antigravity", default, {}, home=tmp_path).app == str(
        tmp_path / ".antigravity_tools" / "gui_config.json")


@pytest.mark.parametrize("own, app, port", [(8045, 8045, 8044), (9000, 8045, 9000), (0, 0, 0), (8044, 8045, 8044)])
def test_the_gate_never_takes_the_apps_own_port(own, app, port):
    assert sources.gate_port(own, app) == port


def test_config_yaml_names_the_apps_file_relative_to_itself(tmp_path):
    own = parse_config("app_config: data/gui_config.json\n", "c.yaml")  # auth_mode not needed: the app's
    src = sources.Source(str(tmp_path / "c.yaml"))
    assert sources.app_path(src, own) == str(tmp_path / "data" / "gui_config.json")
    own = parse_config("app_config: antigravity\n", "c.yaml")
    assert sources.app_path(src, own, {"ABV_DATA_DIR": "/srv/abv"}) == "/srv/abv/gui_config.json"
    with pytest.raises(ConfigError, match="app_config: '' is not a file"):
        parse_config("app_config: ''\n", "c.yaml")
    with pytest.raises(ConfigError, match="proxy.auth_mode: is missing"):
        parse_config("proxy:\n  port: 1\n", "c.yaml")  # without the app's file it is still required


def test_the_two_files_combine(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("proxy:\n  port: 8045\n  allow_lan_access: false\n  auth_mode: off\n  api_key: sk-mine\n"
                   "  profile: faq\n  auth_enforce: false\n  version: '4.5.0'\n"
                   "upstream:\n  url: http://127.0.0.1:8045\n  timeout: 30\n"
                   "tokens:\n  - token: sk-yaml-token\n")
    app = write_gui_config(tmp_path / "gui_config.json",
                           gui_config(mode="auto", key="sk-app", lan=True, admin_password="pw"))
    snap = sources.read(sources.Source(str(cfg), str(app)), Overrides(), environ={})
    s = snap.settings
    # the app's: the auth fields, profile v4
    assert (s.auth_mode, s.allow_lan_access, s.api_key, s.admin_password, s.profile, s.effective_mode) == (
        "auto", True, "sk-app", "pw", "v4", "all_except_health")
    # config.yaml's: the listener (its own LAN flag), upstream, enforce, version; never its tokens
    assert (s.port, s.listen_host, s.upstream.url, s.upstream.timeout, s.enforce, s.version, s.tokens) == (
        8044, "127.0.0.1", "http://127.0.0.1:8045", 30.0, False, "4.5.0", ())
    assert (s.app_config, s.app_port) == (str(app), 8045)
    assert sources.warnings(s) == []  # shadow mode pointed at the app itself
    # options win over both
    s = sources.rebuild(snap, sources.Source(str(cfg), str(app)), Overrides(auth_mode="strict", port=7000)).settings
    assert (s.auth_mode, s.port, s.api_key) == ("strict", 7000, "sk-app")


def test_headless_applies_to_the_apps_values(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text("headless: true\nproxy:\n  port: 9000\n  auth_mode: strict\n  api_key: sk-mine\n")
    app = write_gui_config(tmp_path / "gui_config.json", gui_config(mode="auto", key="sk-app"))
    env = {"ABV_API_KEY": "sk-from-env", "ABV_BIND_LOCAL_ONLY": "true"}
    s = sources.read(sources.Source(str(cfg), str(app)), Overrides(), environ=env).settings
    assert (s.auth_mode, s.api_key, s.allow_lan_access, s.listen_host) == (
        "all_except_health", "sk-from-env", False, "127.0.0.1")
    assert ("info", "Using API Key from environment variable") in s.startup_log
