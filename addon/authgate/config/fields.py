"""The settings a person can change while the gate runs, one row each: the
auth_* option, the config.yaml field it stands for, and the value in force
with where it comes from (the file, or an option override).

auth.status and mitmweb's Options editor both read this table, so they say
the same thing. No mitmproxy import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, NamedTuple

from authgate.config.settings import FileConfig, Settings
from authgate.rules.credentials import fingerprint
from authgate.rules.v4 import VERSION as V4_VERSION


def _tristate(value: bool) -> str:
    return "true" if value else "false"


def _whole_seconds(seconds: float) -> int | None:
    # auth_upstream_timeout takes whole seconds; a fractional file value has no option form
    return int(seconds) if float(seconds).is_integer() else None


@dataclass(frozen=True)
class Field:
    option: str  # the mitmproxy option: auth_mode
    key: str  # the config.yaml field: proxy.auth_mode
    setting: str  # its name in Settings.overridden (and Overrides)
    of_file: Callable[[FileConfig], object]  # the file's value, in the option's form
    of_settings: Callable[[Settings], object]  # the value in force, in the option's form
    kind: str = "str"  # str, bool (an option of "true"/"false"), int
    secret: bool = False  # never shown in full (the key): its fingerprint stands for it

    def text(self, value: object) -> str:
        """A value as people read it: the key as its fingerprint."""
        if self.secret:
            return fingerprint(value)
        return "-" if value is None else str(value)

    def for_file(self, value: object) -> object:
        """An option's value as config.yaml holds it; ValueError when it has no such form."""
        if self.kind == "bool":
            if value not in ("true", "false"):
                raise ValueError(f"option {self.option}: {value!r} is not true or false. "
                                 f"Fix: --set {self.option}=true")
            return value == "true"
        return value


FIELDS: tuple[Field, ...] = (
    Field("auth_mode", "proxy.auth_mode", "auth_mode", lambda c: c.auth_mode, lambda s: s.auth_mode),
    Field("auth_allow_lan_access", "proxy.allow_lan_access", "allow_lan_access",
          lambda c: _tristate(c.allow_lan_access), lambda s: _tristate(s.allow_lan_access), kind="bool"),
    Field("auth_api_key", "proxy.api_key", "api_key", lambda c: c.api_key, lambda s: s.api_key, secret=True),
    Field("auth_port", "proxy.port", "port", lambda c: c.port, lambda s: s.port, kind="int"),
    Field("auth_upstream", "upstream.url", "upstream", lambda c: c.upstream.url, lambda s: s.upstream.url),
    Field("auth_upstream_timeout", "upstream.timeout", "upstream_timeout",
          lambda c: _whole_seconds(c.upstream.timeout), lambda s: _whole_seconds(s.upstream.timeout), kind="int"),
    Field("auth_profile", "proxy.profile", "profile", lambda c: c.profile, lambda s: s.profile),
    Field("auth_enforce", "proxy.auth_enforce", "enforce",
          lambda c: _tristate(c.enforce), lambda s: _tristate(s.enforce), kind="bool"),
    Field("auth_admin_password", "proxy.admin_password", "admin_password", lambda c: c.admin_password,
          lambda s: s.admin_password, secret=True),
    Field("auth_version", "proxy.version", "version", lambda c: c.version or V4_VERSION, lambda s: s.version),
)
BY_OPTION = {f.option: f for f in FIELDS}
# With the app's gui_config.json in force these come from it (sources.py), the rest from config.yaml.
APP_FIELDS = frozenset({"auth_mode", "auth_allow_lan_access", "auth_api_key", "auth_admin_password", "auth_profile"})


def file_of(f: Field, s: Settings) -> str:
    """The name of the file a field's value comes from: config.yaml, or the app's file."""
    if s.app_config is not None and f.option in APP_FIELDS:
        return os.path.basename(s.app_config)
    return os.path.basename(s.config_path)


class InForce(NamedTuple):
    field: Field
    value: str  # in force, as people read it
    overridden: bool  # an option override, not saved
    in_file: str  # what config.yaml says, as people read it (its default when the field is missing)
    given: bool  # whether the file writes the field out


def in_force(s: Settings, cfg: FileConfig) -> dict[str, InForce]:
    """Each field's value in force and whether an option overrides the file's."""
    out = {}
    for f in FIELDS:
        value = f.of_settings(s)
        if f.option == "auth_upstream_timeout":
            shown = f"{s.upstream.timeout:g}"
            in_file = f"{cfg.upstream.timeout:g}"
        else:
            shown, in_file = f.text(value), f.text(f.of_file(cfg))
        given = f.key in cfg.given or (s.app_config is not None and f.option in APP_FIELDS)
        out[f.option] = InForce(f, shown, f.setting in s.overridden, in_file, given)
    return out
