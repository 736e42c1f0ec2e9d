"""config.yaml read into a FileConfig, and merge(): the FileConfig with the options
that are set on top, the immutable Settings snapshot in force.

Nothing else parses config.yaml. read_text reads only a small regular file (a
FIFO, a device or a huge file would hang or exhaust the gate), and the YAML loader
refuses anchors and aliases. Each field goes through its check in checks.py.

For `profile: v4` (v4.5.8) the file also holds `proxy.admin_password`,
`proxy.version` (the health answer's), a `tokens:` list (user tokens, as the
app's user_tokens rows, for teaching without the app) and `headless: true`
(the app's headless start: headless.py). The app's own gui_config.json is read
by appconfig.py.
"""

from __future__ import annotations

import os
import stat
from dataclasses import fields as dataclass_fields
from dataclasses import replace

import yaml

from authgate.config.checks import (
    check_bool,
    check_key,
    check_mode,
    check_password,
    check_port,
    check_profile,
    check_timeout,
    check_version,
    only_fields,
    parse_headers,
    parse_tokens,
)
from authgate.config.headless import apply_headless
from authgate.config.settings import (
    DEFAULT_UPSTREAM_TIMEOUT,
    ConfigError,
    FileConfig,
    Overrides,
    Settings,
    parse_upstream,
    shown,
)
from authgate.rules.v4 import VERSION as V4_VERSION

# config.yaml is read only when it is a regular file of at most this size: a FIFO, a
# device (a symlink to /dev/zero) or a huge file would hang or exhaust the gate.
MAX_CONFIG_BYTES = 256 * 1024

_PROXY_FIELDS = ("port", "allow_lan_access", "auth_mode", "api_key", "profile", "auth_enforce",
                 "admin_password", "version")
_UPSTREAM_FIELDS = ("url", "headers", "timeout")
_TOP_FIELDS = ("proxy", "upstream", "tokens", "headless", "app_config")


def _section(data: dict, section: str, allowed: tuple[str, ...], source: str) -> dict:
    value = data.get(section)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(source, section, "is not a section of fields",
                          f"write `{section}:` followed by indented fields ({', '.join(allowed)})")
    only_fields(value, allowed, section, section, source)
    return value


class _AliasRefused(yaml.YAMLError):
    def __init__(self, mark) -> None:
        super().__init__("anchor or alias")
        self.mark = mark


class _PlainLoader(yaml.SafeLoader):
    """safe_load without anchors (&) and aliases (*): config.yaml needs neither, and
    a few hundred bytes of nested aliases (an alias bomb) stand for gigabytes of
    data that whoever walks them (a repr() in an error message) builds."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AliasRefused(event.start_mark)
        return super().compose_node(parent, index)


def parse_config(text: str, source: str, environ=os.environ) -> FileConfig:
    """Validate config.yaml's text; raises ConfigError. `environ`: for ${VAR} and headless."""
    try:
        data = yaml.load(text, Loader=_PlainLoader)  # noqa: S506 (a SafeLoader)
    except _AliasRefused as e:
        raise ConfigError(source, "(YAML)", f"an anchor (&) or alias (*) at line {e.mark.line + 1}, "
                          f"column {e.mark.column + 1}: config.yaml takes plain values only",
                          "write each value out in full") from None
    except (RecursionError, ValueError) as e:  # nested thousands deep; an integer of thousands of digits
        raise ConfigError(source, "(YAML)", f"cannot be read ({type(e).__name__}: {str(e)[:80]})",
                          "write plain values, a few levels deep, as addon/config.default.yaml does") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(source, "(YAML syntax)", f"invalid YAML{at}: {problem}",
                          "fix the indentation or quoting there; see docs/configuration.md") from None
    if data is None:
        # An empty file is a truncated one far more often than a wish for
        # defaults, and the defaults would turn auth off: refuse it.
        raise ConfigError(source, "(file)", "is empty",
                          "restore it (addon/config.default.yaml has the shipped defaults)")
    if not isinstance(data, dict):
        raise ConfigError(source, "(top level)", "is not a mapping of sections",
                          "start with `proxy:` and `upstream:` sections")
    for key in data:
        if key not in _TOP_FIELDS:
            raise ConfigError(source, str(key), "unknown section", "sections are: " + ", ".join(_TOP_FIELDS))
    proxy = _section(data, "proxy", _PROXY_FIELDS, source)
    upstream = _section(data, "upstream", _UPSTREAM_FIELDS, source)
    app_config = data.get("app_config")
    if app_config is not None and (not isinstance(app_config, str) or not app_config.strip()):
        raise ConfigError(source, "app_config", f"{shown(app_config)} is not a file",
                          "write app_config: antigravity (the app's own gui_config.json), or its path")
    if "auth_mode" not in proxy:
        if app_config is None:
            # Never defaulted: a half-written file must not fall back to auto → off.
            raise ConfigError(source, "proxy.auth_mode", "is missing",
                              "add `auth_mode:` under `proxy:` (off, strict, all_except_health or auto)")
        proxy = {**proxy, "auth_mode": "auto"}  # not read: the app's file gives it
    defaults = FileConfig(auth_mode=proxy["auth_mode"])  # only its other fields' defaults are read
    cfg = FileConfig(
        auth_mode=check_mode(proxy["auth_mode"], source, "proxy.auth_mode"),
        port=check_port(proxy.get("port", defaults.port), source, "proxy.port"),
        allow_lan_access=check_bool(proxy.get("allow_lan_access", defaults.allow_lan_access), source,
                                    "proxy.allow_lan_access"),
        api_key=check_key(proxy["api_key"], source, "proxy.api_key") if "api_key" in proxy else None,
        profile=check_profile(proxy.get("profile", defaults.profile), source, "proxy.profile"),
        enforce=check_bool(proxy.get("auth_enforce", defaults.enforce), source, "proxy.auth_enforce"),
        upstream=replace(
            parse_upstream(upstream["url"], source, "upstream.url") if "url" in upstream else defaults.upstream,
            headers=parse_headers(upstream.get("headers"), source, environ),
            timeout=check_timeout(upstream.get("timeout", DEFAULT_UPSTREAM_TIMEOUT), source, "upstream.timeout")),
        admin_password=check_password(proxy.get("admin_password"), source, "proxy.admin_password"),
        version=check_version(proxy["version"], source, "proxy.version") if "version" in proxy else None,
        tokens=parse_tokens(data.get("tokens"), source),
        headless=check_bool(data.get("headless", False), source, "headless"),
        app_config=app_config,
        given=frozenset([f"proxy.{k}" for k in proxy] + [f"upstream.{k}" for k in upstream]),
    )
    return apply_headless(cfg, source, environ) if cfg.headless else cfg


def read_config(path: str | os.PathLike, environ=os.environ) -> FileConfig:
    return parse_config(read_text(path), str(path), environ)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_text(path: str | os.PathLike, limit: int = MAX_CONFIG_BYTES,
              missing: str = "create it (copy addon/config.default.yaml) or point --set auth_config=PATH at one") -> str:
    """A settings file's text (UTF-8), read only when it is a regular file (a
    symlink to one is fine) of at most `limit` bytes; ConfigError otherwise. It
    never waits: a FIFO or a device is refused before it is opened, and opened
    without blocking in case it was swapped in between."""
    source = str(path)
    try:
        kind = os.stat(path).st_mode
        if stat.S_ISREG(kind):
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
            with open(fd, "rb") as f:
                st = os.fstat(fd)
                kind, size = st.st_mode, st.st_size
                data = f.read(limit + 1) if stat.S_ISREG(kind) and size <= limit else b""
    except FileNotFoundError:
        raise ConfigError(source, "(file)", "does not exist", missing) from None
    except OSError as e:
        raise ConfigError(source, "(file)", f"cannot be read ({e.strerror or e})",
                          "check the file's permissions") from None
    if not stat.S_ISREG(kind):
        what = next((name for test, name in _KINDS if test(kind)), "not a regular file")
        raise ConfigError(source, "(file)", f"is {what}, which the gate never reads (it could block or never end)",
                          "point it at a plain file")
    if size > limit or len(data) > limit:
        raise ConfigError(source, "(file)", f"is larger than {limit // 1024} KiB",
                          "a settings file is a few lines: restore it from addon/config.default.yaml")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(source, "(file)", f"is not UTF-8 text ({e.reason} at byte {e.start})",
                          "save it as UTF-8") from None


def merge(cfg: FileConfig, over: Overrides, config_path: str) -> Settings:
    """The snapshot in force: the file, with the options that are set on top."""
    src = "option"
    overridden = tuple(f.name for f in dataclass_fields(over) if getattr(over, f.name) is not None)
    upstream = cfg.upstream
    if over.upstream is not None:  # a URL given as an option keeps the file's headers and timeout
        upstream = replace(parse_upstream(over.upstream, src, "auth_upstream"),
                           headers=upstream.headers, timeout=upstream.timeout)
    if over.upstream_timeout is not None:
        upstream = replace(upstream, timeout=check_timeout(over.upstream_timeout, src, "auth_upstream_timeout"))
    return Settings(
        port=check_port(over.port, src, "auth_port") if over.port is not None else cfg.port,
        allow_lan_access=over.allow_lan_access if over.allow_lan_access is not None else cfg.allow_lan_access,
        auth_mode=check_mode(over.auth_mode, src, "auth_mode") if over.auth_mode is not None else cfg.auth_mode,
        api_key=check_key(over.api_key, src, "auth_api_key") if over.api_key is not None else (cfg.api_key or ""),
        upstream=upstream,
        config_path=config_path,
        profile=check_profile(over.profile, src, "auth_profile") if over.profile is not None else cfg.profile,
        enforce=over.enforce if over.enforce is not None else cfg.enforce,
        overridden=overridden,
        admin_password=(check_password(over.admin_password, src, "auth_admin_password")
                        if over.admin_password is not None else cfg.admin_password),
        version=(check_version(over.version, src, "auth_version") if over.version is not None
                 else cfg.version or V4_VERSION),
        tokens=cfg.tokens,
        headless=cfg.headless,
        startup_log=cfg.startup_log,
    )
