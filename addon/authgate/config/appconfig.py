"""The app's own configuration, read as v4.5.8 reads it; never written.

Antigravity Tools keeps its settings in `<data dir>/gui_config.json`, the
proxy's under the top-level key "proxy", and its user tokens beside it in
`user_tokens.db`. `read_app_config()` reads the auth layer's fields from
there into the gate's own names (the same Settings fields config.yaml
gives), with v4.5.8's spellings, defaults and refusals:

* data dir: `$ABV_DATA_DIR` when set and not blank (the path untrimmed),
  else `~/.antigravity_tools` (account.rs:421-448). The app creates it; the
  gate does not.
* `auth_mode`: "off", "strict", "all_except_health", "auto", exactly (serde
  snake_case, no aliases, case-sensitive; config.rs:244-257); default auto.
* `allow_lan_access` false, `admin_password` None (null and "" mean unset)
  when missing; `enabled`, `port`, `api_key`, `auto_start` are required
  (no container default, config.rs:566-671); so are the top-level
  `language`, `theme`, `auto_refresh`, `refresh_interval`, `auto_sync`,
  `sync_interval` (models/config.rs:7-35). A file the app would refuse is
  a ConfigError here too, naming the file, the field and the fix.
* No "proxy" key: the app uses ProxyConfig::default(), whose api_key is a
  new random `sk-` key on every load (Q9): so does this reader, and says so
  in `notes`.
* A missing file: the app would create one with a random key (and save
  it); the gate writes nothing, so that is a ConfigError.

Only the fields the auth layer reads are checked; the rest of the file is
the app's business.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from authgate.config.read import read_text
from authgate.config.settings import ConfigError, FileConfig, generate_key
from authgate.rules.common import MODES

CONFIG_FILE = "gui_config.json"  # modules/config.rs:8
TOKEN_DB = "user_tokens.db"  # user_token_db.rs:59-63
DATA_DIR = ".antigravity_tools"  # account.rs:421
DEFAULT_PORT = 8045  # config.rs:682-711 (ProxyConfig::default)
DEFAULT_AUTH_MODE = "auto"  # config.rs:253-257, since v4.0.8
_TOP_REQUIRED = (("language", str), ("theme", str), ("auto_refresh", bool), ("refresh_interval", int),
                 ("auto_sync", bool), ("sync_interval", int))
_I32 = (-(2 ** 31), 2 ** 31 - 1)


@dataclass(frozen=True, slots=True)
class AppConfig:
    """The auth layer's slice of gui_config.json, in the gate's field names."""

    path: str
    data_dir: str
    auth_mode: str
    allow_lan_access: bool
    port: int
    api_key: str
    admin_password: str | None
    enabled: bool
    auto_start: bool
    notes: tuple[str, ...] = ()  # what the reader noticed (a random key, ...)

    @property
    def token_db(self) -> str:
        """The app's user-token database: open it with token_db.SqliteTokenStore (read-only)."""
        return str(Path(self.data_dir) / TOKEN_DB)

    def apply_to(self, cfg: FileConfig) -> FileConfig:
        """config.yaml's FileConfig with the app's auth fields in place of its own
        (upstream and the gate's other settings stay); profile v4."""
        return replace(cfg, auth_mode=self.auth_mode, allow_lan_access=self.allow_lan_access, port=self.port,
                       api_key=self.api_key, admin_password=self.admin_password, profile="v4")


def data_dir(environ=None, home: str | os.PathLike | None = None) -> Path:
    """account.rs:426-448: $ABV_DATA_DIR if not blank (used untrimmed), else ~/.antigravity_tools."""
    environ = os.environ if environ is None else environ
    custom = environ.get("ABV_DATA_DIR")
    if custom is not None and custom.strip():
        return Path(custom)
    return Path(home if home is not None else Path.home()) / DATA_DIR


def find_app_config(environ=None, home: str | os.PathLike | None = None) -> Path:
    return data_dir(environ, home) / CONFIG_FILE


def _type_name(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def parse_app_config(text: str, source: str, data_dir_: str = "") -> AppConfig:
    """gui_config.json's text -> AppConfig; ConfigError where the app's serde would refuse it."""
    fix_app = "fix it in the app (Settings), or repair the JSON by hand"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(source, "(JSON syntax)", f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}",
                          "repair the file (the app cannot read it either: failed_to_parse_config_file)") from None
    if not isinstance(data, dict):
        raise ConfigError(source, "(top level)", "is not a JSON object", fix_app)
    for name, kind in _TOP_REQUIRED:
        if name not in data:
            raise ConfigError(source, name, "is missing (the app refuses the file: missing field)",
                              f"add \"{name}\"; the app writes it on first start")
        value = data[name]
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool) and _I32[0] <= value <= _I32[1]
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise ConfigError(source, name, f"is {_type_name(value)}, not what the app expects", fix_app)
    notes: list[str] = []
    if "proxy" not in data:
        # #[serde(default)] proxy: ProxyConfig::default(), a new random key on every load (Q9).
        notes.append("no \"proxy\" key: the app uses its defaults, with a new random api_key on every load")
        return AppConfig(source, data_dir_, DEFAULT_AUTH_MODE, False, DEFAULT_PORT, generate_key(), None, False,
                         False, tuple(notes))
    proxy = data["proxy"]
    if not isinstance(proxy, dict):
        raise ConfigError(source, "proxy", f"is {_type_name(proxy)}, not an object", fix_app)

    def need(name: str, kind: str):
        if name not in proxy:
            raise ConfigError(source, f"proxy.{name}", "is missing (the app refuses the file: missing field)",
                              f"add \"{name}\" under \"proxy\" (or save the proxy settings once in the app)")
        return check(name, kind, proxy[name])

    def check(name: str, kind: str, value):
        ok = {"bool": isinstance(value, bool),
              "port": isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535,
              "str": isinstance(value, str),
              "opt_str": value is None or isinstance(value, str)}[kind]
        if not ok:
            want = {"bool": "true or false", "port": "a whole number from 0 to 65535", "str": "a string",
                    "opt_str": "a string or null"}[kind]
            raise ConfigError(source, f"proxy.{name}", f"is {_type_name(value)}, not {want}", fix_app)
        return value

    enabled = need("enabled", "bool")
    port = need("port", "port")
    api_key = need("api_key", "str")
    auto_start = need("auto_start", "bool")
    lan = check("allow_lan_access", "bool", proxy.get("allow_lan_access", False))
    password = check("admin_password", "opt_str", proxy.get("admin_password"))
    mode = proxy.get("auth_mode", DEFAULT_AUTH_MODE)
    if mode not in MODES:
        raise ConfigError(source, "proxy.auth_mode", f"{mode!r} is not one of the app's auth modes "
                          "(the app refuses the file: unknown variant)",
                          "use exactly " + ", ".join(f'"{m}"' for m in MODES) + " (lower case)")
    return AppConfig(source, data_dir_, mode, lan, port, api_key, password, enabled, auto_start, tuple(notes))


def read_app_config(path: str | os.PathLike | None = None, environ=None,
                    home: str | os.PathLike | None = None) -> AppConfig:
    """Read gui_config.json: `path`, or the app's own (ABV_DATA_DIR, else
    ~/.antigravity_tools). Read-only: nothing is created or written."""
    if path is None:
        path = find_app_config(environ, home)
    path = Path(path)
    text = read_text(path, missing="start Antigravity Tools once (it creates the file), set ABV_DATA_DIR to its "
                                   "data directory, or give the file's path")  # a regular file, size-capped
    return parse_app_config(text, str(path), str(path.parent))
