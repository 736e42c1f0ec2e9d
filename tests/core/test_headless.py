"""headless.py: `headless: true`, the app's headless start, its environment overrides in its order."""

import pytest

from authgate.config.read import merge, parse_config
from authgate.config.settings import ConfigError, Overrides
from config_texts import V4

HEADLESS = "proxy:\n  auth_mode: {mode}\n  api_key: sk-file\n  profile: v4\nheadless: true\n"


@pytest.mark.parametrize("mode, env, expected", [
    # lib.rs:260-268, 272-276, 280-290, 294-304, 308-328, in that order
    ("auto", {}, {"allow_lan_access": True, "auth_mode": "all_except_health", "api_key": "sk-file",
                  "admin_password": None}),
    ("off", {}, {"auth_mode": "all_except_health"}),
    ("strict", {}, {"auth_mode": "strict"}),
    ("auto", {"ABV_BIND_LOCAL_ONLY": "TRUE"}, {"allow_lan_access": False}),
    ("auto", {"ABV_BIND_LOCAL_ONLY": "on"}, {"allow_lan_access": False}),
    ("auto", {"ABV_BIND_LOCAL_ONLY": " 1"}, {"allow_lan_access": True}),  # not trimmed
    ("auto", {"ABV_BIND_LOCAL_ONLY": "no"}, {"allow_lan_access": True}),
    ("auto", {"ABV_API_KEY": "sk-env"}, {"api_key": "sk-env"}),
    ("auto", {"API_KEY": "sk-env2"}, {"api_key": "sk-env2"}),
    ("auto", {"ABV_API_KEY": "sk-env", "API_KEY": "sk-env2"}, {"api_key": "sk-env"}),
    ("auto", {"ABV_API_KEY": "", "API_KEY": "sk-env2"}, {"api_key": "sk-file"}),  # an empty ABV_ masks (Q20)
    ("auto", {"ABV_API_KEY": "   "}, {"api_key": "sk-file"}),  # blank: not applied
    ("auto", {"WEB_PASSWORD": "pw pw"}, {"admin_password": "pw pw"}),
    ("auto", {"ABV_WEB_PASSWORD": "pw1", "WEB_PASSWORD": "pw2"}, {"admin_password": "pw1"}),
    ("auto", {"ABV_AUTH_MODE": "OFF"}, {"auth_mode": "off"}),  # after the force: it can undo it
    ("strict", {"AUTH_MODE": "auto", "ABV_BIND_LOCAL_ONLY": "yes"}, {"auth_mode": "auto", "allow_lan_access": False}),
    ("strict", {"ABV_AUTH_MODE": "bogus"}, {"auth_mode": "strict"}),
    ("auto", {"ABV_AUTH_MODE": " strict"}, {"auth_mode": "all_except_health"}),  # not trimmed: invalid
])
def test_headless_start_overrides_in_the_originals_order(mode, env, expected):
    cfg = parse_config(HEADLESS.format(mode=mode), "c.yaml", environ=env)
    for name, value in expected.items():
        assert getattr(cfg, name) == value, name
    assert cfg.headless


def test_headless_log_lines_are_the_originals():
    cfg = parse_config(HEADLESS.format(mode="auto"), "c.yaml",
                       environ={"ABV_API_KEY": "sk-env", "WEB_PASSWORD": "pw", "AUTH_MODE": "strict"})
    assert cfg.startup_log == (
        ("info", "Headless mode: Forcing auth_mode to AllExceptHealth for Web UI security"),
        ("info", "Using API Key from environment variable"),
        ("info", "Using Web UI Password from environment variable"),
        ("info", "Using Auth Mode from environment variable: Strict"),
        ("info", "\U0001f511 Current API Key: set"),
        ("info", "\U0001f510 Web UI Password: set"),
    )
    cfg = parse_config(HEADLESS.format(mode="strict"), "c.yaml", environ={"ABV_AUTH_MODE": "nope"})
    assert ("warn", "Invalid AUTH_MODE: nope, ignoring") in cfg.startup_log
    assert cfg.startup_log[-1] == ("info", "\U0001f510 Web UI Password: (Same as API Key)")
    assert merge(cfg, Overrides(), "c.yaml").startup_log == cfg.startup_log


def test_headless_env_values_are_checked_and_never_echoed():
    with pytest.raises(ConfigError) as e:
        parse_config(HEADLESS.format(mode="auto"), "c.yaml", environ={"ABV_API_KEY": "sk secret value"})
    assert e.value.field == "ABV_API_KEY" and "headless" in e.value.source and "secret" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_config(HEADLESS.format(mode="auto"), "c.yaml", environ={"WEB_PASSWORD": "pw\u00e9"})
    assert e.value.field == "WEB_PASSWORD"


def test_headless_options_still_win_and_nothing_is_written(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(HEADLESS.format(mode="auto"))
    before = path.read_bytes()
    cfg = parse_config(path.read_text(), str(path), environ={"ABV_API_KEY": "sk-env"})
    s = merge(cfg, Overrides(auth_mode="strict", api_key="sk-opt"), str(path))
    assert (s.auth_mode, s.api_key, s.allow_lan_access, s.listen_host) == ("strict", "sk-opt", True, "0.0.0.0")
    assert path.read_bytes() == before


def test_without_headless_the_environment_is_not_read():
    cfg = parse_config(V4, "c.yaml", environ={"ABV_API_KEY": "sk-env", "ABV_AUTH_MODE": "off"})
    assert (cfg.api_key, cfg.auth_mode, cfg.startup_log) == ("sk-abc", "strict", ())
