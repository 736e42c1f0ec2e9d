"""Reading the app's own gui_config.json as v4.5.8 reads it (never writing it)."""

import hashlib
import json
import re

import pytest

from authgate.config.appconfig import AppConfig, data_dir, find_app_config, parse_app_config, read_app_config
from authgate.config.read import merge
from authgate.config.settings import ConfigError, FileConfig, Overrides

TOP = {"language": "en", "theme": "system", "auto_refresh": True, "refresh_interval": 15, "auto_sync": False,
       "sync_interval": 5}
PROXY = {"enabled": True, "port": 8045, "api_key": "sk-app", "auto_start": False}


def text(proxy=PROXY, **top):
    data = {**TOP, **top}
    if proxy is not None:
        data["proxy"] = proxy
    return json.dumps(data)


def test_the_notes_minimal_file():
    # the smallest gui_config.json v4.5.8 accepts
    app = parse_app_config(text({**PROXY, "auth_mode": "all_except_health", "allow_lan_access": True,
                                 "admin_password": None}), "gui_config.json", "/data")
    assert (app.auth_mode, app.allow_lan_access, app.port, app.api_key, app.admin_password, app.enabled,
            app.auto_start) == ("all_except_health", True, 8045, "sk-app", None, True, False)
    assert app.token_db == "/data/user_tokens.db"


def test_defaults_are_v4_5_8s():
    # config.rs:575-593: auth_mode defaults to auto (since v4.0.8), allow_lan_access false, admin_password None
    app = parse_app_config(text(), "g.json")
    assert (app.auth_mode, app.allow_lan_access, app.admin_password, app.notes) == ("auto", False, None, ())


def test_unknown_fields_are_the_apps_business():
    app = parse_app_config(text({**PROXY, "custom_mapping": {}, "security_monitor": {"x": 1}}, extra=[1]), "g.json")
    assert app.api_key == "sk-app"


def test_no_proxy_key_means_a_random_key_each_load():
    # #[serde(default)] proxy: ProxyConfig::default() with a new random api_key (Q9)
    a, b = (parse_app_config(text(proxy=None), "g.json") for _ in range(2))
    assert re.fullmatch(r"sk-[0-9a-f]{32}", a.api_key) and a.api_key != b.api_key
    assert (a.auth_mode, a.port, a.allow_lan_access) == ("auto", 8045, False)
    assert "random api_key" in a.notes[0]


@pytest.mark.parametrize("mutate, field, words", [
    (lambda d: d["proxy"].update(auth_mode="Strict"), "proxy.auth_mode", '"off", "strict"'),
    (lambda d: d["proxy"].update(auth_mode="allexcepthealth"), "proxy.auth_mode", "unknown variant"),
    (lambda d: d["proxy"].pop("api_key"), "proxy.api_key", "is missing"),
    (lambda d: d["proxy"].pop("auto_start"), "proxy.auto_start", "is missing"),
    (lambda d: d["proxy"].update(port=70000), "proxy.port", "0 to 65535"),
    (lambda d: d["proxy"].update(port=8045.0), "proxy.port", "a number, not a whole number"),
    (lambda d: d["proxy"].update(port="8045"), "proxy.port", "is a string"),
    (lambda d: d["proxy"].update(allow_lan_access="true"), "proxy.allow_lan_access", "true or false"),
    (lambda d: d["proxy"].update(admin_password=5), "proxy.admin_password", "a string or null"),
    (lambda d: d["proxy"].update(api_key=None), "proxy.api_key", "is null"),
    (lambda d: d.update(proxy=None), "proxy", "not an object"),
    (lambda d: d.pop("theme"), "theme", "is missing"),
    (lambda d: d.update(refresh_interval=1.5), "refresh_interval", "not what the app expects"),
    (lambda d: d.update(refresh_interval="15"), "refresh_interval", "is a string"),
    (lambda d: d.update(auto_sync=0), "auto_sync", "is a number"),
    (lambda d: d.update(sync_interval=2 ** 31), "sync_interval", "not what the app expects"),
])
def test_what_the_app_refuses_is_refused(mutate, field, words):
    data = json.loads(text())
    mutate(data)
    with pytest.raises(ConfigError) as e:
        parse_app_config(json.dumps(data), "/home/u/.antigravity_tools/gui_config.json")
    assert e.value.field == field and words in str(e.value), str(e.value)
    assert str(e.value).startswith(f"/home/u/.antigravity_tools/gui_config.json: {field}: ")


def test_bad_json_names_the_line():
    with pytest.raises(ConfigError, match=r"line 2, column \d+"):
        parse_app_config('{\n  "language": ,\n}', "g.json")


def test_admin_password_null_and_empty():
    assert parse_app_config(text({**PROXY, "admin_password": ""}), "g").admin_password == ""  # "" acts as unset


@pytest.mark.parametrize("env, expected", [
    ({}, "HOME/.antigravity_tools"),
    ({"ABV_DATA_DIR": "/srv/abv"}, "/srv/abv"),
    ({"ABV_DATA_DIR": "  "}, "HOME/.antigravity_tools"),  # blank: ignored (account.rs:429)
    ({"ABV_DATA_DIR": " /srv/abv "}, " /srv/abv "),  # used untrimmed
])
def test_data_dir_discovery(env, expected, tmp_path):
    home = tmp_path / "home"
    assert str(data_dir(env, home)) == expected.replace("HOME", str(home))
    assert find_app_config(env, home).name == "gui_config.json"


def test_read_discovers_reads_and_never_writes(tmp_path):
    data = tmp_path / "abv"
    data.mkdir()
    path = data / "gui_config.json"
    path.write_text(text({**PROXY, "auth_mode": "strict", "admin_password": "pw"}))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    app = read_app_config(environ={"ABV_DATA_DIR": str(data)})
    assert (app.path, app.auth_mode, app.admin_password, app.token_db) == (
        str(path), "strict", "pw", str(data / "user_tokens.db"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in data.iterdir()) == ["gui_config.json"]
    assert read_app_config(path).api_key == "sk-app"


def test_a_missing_file_is_an_error_and_nothing_is_created(tmp_path):
    home = tmp_path / "home"
    with pytest.raises(ConfigError, match="does not exist.*start Antigravity Tools once"):
        read_app_config(environ={}, home=home)
    assert not home.exists()


def test_the_apps_fields_go_into_the_gates_settings():
    app = parse_app_config(text({**PROXY, "auth_mode": "auto", "allow_lan_access": True, "admin_password": "pw",
                                 "port": 9000}), "g.json")
    cfg = app.apply_to(FileConfig(auth_mode="strict", api_key="sk-mine"))
    s = merge(cfg, Overrides(), "config.yaml")
    assert (s.auth_mode, s.allow_lan_access, s.port, s.api_key, s.admin_password, s.profile, s.effective_mode) == (
        "auto", True, 9000, "sk-app", "pw", "v4", "all_except_health")
    assert isinstance(app, AppConfig)
