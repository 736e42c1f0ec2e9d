"""config.yaml and option overrides, turned into one immutable Settings snapshot.

Nothing else reads YAML. Every problem raises ConfigError naming where the
value came from (the file, the environment or an option), the field, what is
wrong and the fix, so a bad edit can be reported in one line and the last
good snapshot kept.

For `profile: v4` (v4.5.8) the file also holds `proxy.admin_password`,
`proxy.version` (the health answer's), a `tokens:` list (user tokens, as the
app's user_tokens rows, for teaching without the app) and `headless: true`
(the app's headless start: its environment overrides, in its order). The
app's own gui_config.json is read by appconfig.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import reprlib
import secrets
import stat
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from . import tokens as _tokens
from .decision import MODES, PROFILES, effective_mode
from .v4 import VERSION as V4_VERSION

DEFAULT_PORT = 8045
DEFAULT_UPSTREAM = "http://127.0.0.1:8046"
DEFAULT_UPSTREAM_TIMEOUT = 300.0  # seconds for the upstream's response headers, then a JSON 504
IDLE_LIMIT = 600  # mitmproxy drops a connection idle this long (its TCP_TIMEOUT): a timeout must be below
# config.yaml is read only when it is a regular file of at most this size: a FIFO, a
# device (a symlink to /dev/zero) or a huge file would hang or exhaust the gate.
MAX_CONFIG_BYTES = 256 * 1024
PROBLEM_LIMIT = 300  # characters of a problem an error message quotes

_PROXY_FIELDS = ("port", "allow_lan_access", "auth_mode", "api_key", "profile", "auth_enforce",
                 "admin_password", "version")
_UPSTREAM_FIELDS = ("url", "headers", "timeout")
_TOP_FIELDS = ("proxy", "upstream", "tokens", "headless", "app_config")
_TOKEN_FIELDS = ("token", "username", "description", "expires_type", "expires_at", "max_ips",
                 "curfew_start", "curfew_end", "enabled", "bound_ips")
# A key travels in a header: visible ASCII, no spaces.
_KEY_RE = re.compile(r"[\x21-\x7e]*")
# A password too, spaces allowed inside (a header value keeps them; it loses only its outer ones).
_PASSWORD_RE = re.compile(r"([\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?)?")
_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+-]*")
_HHMM_RE = re.compile(r"[0-9]{1,2}:[0-9]{2}")  # "9:00" is allowed: it shows the original's string comparison
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    def __init__(self, source: str, field_name: str, problem: str, fix: str):
        if len(problem) > PROBLEM_LIMIT:  # whatever a file holds, one error stays one short line
            problem = f"{problem[:PROBLEM_LIMIT]}… ({len(problem)} characters)"
        self.source = source
        self.field = field_name
        self.problem = problem
        self.fix = fix
        super().__init__(f"{source}: {field_name}: {problem}. Fix: {fix}")


@dataclass(frozen=True, slots=True)
class Upstream:
    scheme: str
    host: str
    port: int
    prefix: str  # path prefix without trailing slash, "" when none
    # Credentials the gate adds when forwarding (${ENV} already expanded).
    # Secret: never logged, never shown in a flow comment; only names are.
    headers: tuple[tuple[str, str], ...] = ()
    # Seconds to wait for the response headers before answering 504 (a
    # streamed body may then take as long as it takes).
    timeout: float = DEFAULT_UPSTREAM_TIMEOUT

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.prefix}"

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FileConfig:
    """What config.yaml says; api_key is None when the field is missing.

    auth_mode has no default: a file without it is refused (see parse_config).
    """

    auth_mode: str
    port: int = DEFAULT_PORT
    allow_lan_access: bool = False
    api_key: str | None = None
    profile: str = "faq"
    enforce: bool = True  # false: shadow mode, predict and forward everything unchanged
    upstream: Upstream = field(default_factory=lambda: parse_upstream(DEFAULT_UPSTREAM, "default", "upstream.url"))
    admin_password: str | None = None  # v4: the admin routes' credential; None or "" = not set
    version: str | None = None  # v4: the health answer's "version"; None = V4_VERSION
    tokens: tuple[_tokens.TokenRow, ...] = ()  # v4: user tokens, as user_tokens rows
    headless: bool = False  # the app's headless start: its environment overrides applied (apply_headless)
    # What the original logs at a headless start, (level, line) in its order.
    startup_log: tuple[tuple[str, str], ...] = ()
    # The app's gui_config.json, as written (antigravity, or a path): its proxy.* give
    # the auth fields (sources.py); None: config.yaml gives them.
    app_config: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    port: int
    allow_lan_access: bool
    auth_mode: str
    api_key: str
    upstream: Upstream
    config_path: str
    profile: str = "faq"
    enforce: bool = True
    # Which fields an option overrides, for auth.status and the reload log.
    overridden: tuple[str, ...] = ()
    # ---- profile v4 (faq reads none of these)
    admin_password: str | None = None
    version: str = V4_VERSION  # v4's health answer: {"status":"ok","version":...}
    tokens: tuple[_tokens.TokenRow, ...] = ()  # config.yaml's tokens: (see tokens.MemoryTokenStore)
    headless: bool = False
    startup_log: tuple[tuple[str, str], ...] = ()
    # ---- the app's own config in force (sources.py); None when config.yaml gives the auth fields
    app_config: str | None = None  # gui_config.json's path
    app_port: int | None = None  # where the app itself listens (its proxy.port)
    # The listener's LAN flag when it is not allow_lan_access: with the app's file, the
    # gate listens as its own config.yaml says, whatever the app's flag (None: allow_lan_access).
    listen_lan: bool | None = None

    @property
    def effective_mode(self) -> str:
        return effective_mode(self.auth_mode, self.allow_lan_access)

    @property
    def listen_host(self) -> str:
        # The original binds 0.0.0.0 when LAN access is allowed.
        lan = self.allow_lan_access if self.listen_lan is None else self.listen_lan
        return "0.0.0.0" if lan else "127.0.0.1"


def generate_key() -> str:
    return "sk-" + secrets.token_hex(16)


def fingerprint(key: str | bytes | None) -> str:
    """A recognisable, non-secret handle on a key: never the key itself."""
    if key is None:
        return "(none)"
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    if not key:
        return "(empty)"
    if len(key) < 12:
        return f"…({len(key)} char{'s' if len(key) != 1 else ''})"
    return f"{key[:3]}…{key[-4:]} ({len(key)} chars)"


# ---------------------------------------------------------------- validation

_QUOTE = reprlib.Repr()  # repr() that never walks or builds more than a few dozen characters
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother = 2, 80, 40
_QUOTE.maxlist = _QUOTE.maxdict = _QUOTE.maxtuple = _QUOTE.maxset = 4


def _shown(value) -> str:
    """A wrong value, quoted in an error: long or key-like strings only as a fingerprint,
    anything else cut short (a list of a million items costs what four do)."""
    if isinstance(value, str) and (value.startswith("sk-") or len(value) > 24):
        return fingerprint(value)
    return _QUOTE.repr(value)


def check_port(value, source: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(source, name, f"{_shown(value)} is not a port number",
                          "use a whole number from 1 to 65535 (0 picks any free port)")
    return value


def check_mode(value, source: str, name: str) -> str:
    if value is False:  # YAML 1.1 reads an unquoted `auth_mode: off` as false
        return "off"
    if value not in MODES:
        raise ConfigError(source, name, f"{_shown(value)} is not an auth mode",
                          "use one of " + ", ".join(MODES))
    return value


def check_profile(value, source: str, name: str) -> str:
    if value not in PROFILES:
        raise ConfigError(source, name, f"{_shown(value)} is not a profile",
                          "use faq (the behaviour the FAQ describes) or v4 (v4.5.8, rule for rule)")
    return value


def check_bool(value, source: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(source, name, f"{_shown(value)} is not true or false",
                          "write true or false (no quotes)")
    return value


def check_key(value, source: str, name: str) -> str:
    if value is None:  # `api_key:` with nothing after it: an empty key
        return ""
    if not isinstance(value, str):
        raise ConfigError(source, name, f"a {type(value).__name__} is not a key",
                          'quote the key, e.g. api_key: "sk-..."')
    if not _KEY_RE.fullmatch(value):
        raise ConfigError(source, name, "the key holds spaces or non-ASCII characters, which no header can carry",
                          "use visible ASCII characters only, e.g. the generated sk- key")
    return value


def check_password(value, source: str, name: str) -> str | None:
    """proxy.admin_password: None or "" is "not set" (the original falls back to the api_key)."""
    if value is None:
        return None
    if not isinstance(value, str):  # never echoed: it is a secret
        raise ConfigError(source, name, f"a {type(value).__name__} is not a password",
                          'quote the password, e.g. admin_password: "..."')
    if not _PASSWORD_RE.fullmatch(value):
        raise ConfigError(source, name, "the password holds non-ASCII or control characters, or starts or ends "
                          "with a space, so no header can carry it (the original could never match it either)",
                          "use visible ASCII characters, spaces only inside")
    return value


def check_version(value, source: str, name: str) -> str:
    if not isinstance(value, str) or not _VERSION_RE.fullmatch(value):
        raise ConfigError(source, name, f"{_shown(value)} is not a version string",
                          'quote it, e.g. version: "4.5.8" (an unquoted 4.5 is a number to YAML)')
    return value


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_tokens(value, source: str) -> tuple[_tokens.TokenRow, ...]:
    """The `tokens:` list: user tokens as the app's user_tokens rows (v4 only)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(source, "tokens", "is not a list of tokens",
                          "write `tokens:` followed by items such as `- token: sk-user-1`")
    rows: list[_tokens.TokenRow] = []
    seen: dict[str, str] = {}
    for i, item in enumerate(value):
        where = f"tokens[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(source, where, "is not a mapping of fields",
                              f"write `- token: sk-...` with fields among: {', '.join(_TOKEN_FIELDS)}")
        _only_fields(item, _TOKEN_FIELDS, where, "a token", source)
        if "token" not in item:
            raise ConfigError(source, f"{where}.token", "is missing", "add `token: sk-...` (the value clients send)")
        token = item["token"]
        if not isinstance(token, str) or not token or not _KEY_RE.fullmatch(token):
            raise ConfigError(source, f"{where}.token", "is not a token a header can carry",
                              'use visible ASCII without spaces, quoted, e.g. token: "sk-user-1"')
        if token in seen:
            raise ConfigError(source, f"{where}.token", f"is the same token as {seen[token]}",
                              "give each token its own value (the app's token column is UNIQUE)")
        seen[token] = where
        username = item.get("username", where)
        if not isinstance(username, str):
            raise ConfigError(source, f"{where}.username", f"{_shown(username)} is not a name", "quote it")
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            raise ConfigError(source, f"{where}.description", f"{_shown(description)} is not text", "quote it")
        expires_type = item.get("expires_type", "never")
        if expires_type not in _tokens.EXPIRES_TYPES:
            raise ConfigError(source, f"{where}.expires_type", f"{_shown(expires_type)} is not an expiry type",
                              "use one of " + ", ".join(_tokens.EXPIRES_TYPES) + " (only never ignores expires_at)")
        expires_at = item.get("expires_at")
        if expires_at is not None and not _int(expires_at):
            raise ConfigError(source, f"{where}.expires_at", f"{_shown(str(expires_at))} is not a Unix time",
                              "write Unix seconds, e.g. expires_at: 1767225600 (`date -d 2026-01-01 +%s`)")
        max_ips = item.get("max_ips", 0)
        if not _int(max_ips) or not 0 <= max_ips < 2 ** 31:
            raise ConfigError(source, f"{where}.max_ips", f"{_shown(max_ips)} is not an IP count",
                              "use a whole number, 0 for no limit")
        curfew = []
        for name in ("curfew_start", "curfew_end"):
            v = item.get(name)
            if _int(v):  # YAML 1.1 reads an unquoted 22:00 as the sexagesimal number 1320
                raise ConfigError(source, f"{where}.{name}", f"{v} is a number (YAML reads an unquoted HH:MM "
                                  "as minutes)", f'quote the time, e.g. {name}: "22:00"')
            if v is not None and not (isinstance(v, str) and (v == "" or _HHMM_RE.fullmatch(v))):
                raise ConfigError(source, f"{where}.{name}", f"{_shown(v)} is not a time",
                                  f'write HH:MM, Beijing time (UTC+8), quoted, e.g. {name}: "22:00"')
            curfew.append(v)
        enabled = check_bool(item.get("enabled", True), source, f"{where}.enabled")
        bound = item.get("bound_ips", [])
        if not isinstance(bound, list) or not all(isinstance(ip, str) and ip for ip in bound):
            raise ConfigError(source, f"{where}.bound_ips", "is not a list of IP addresses",
                              'write e.g. bound_ips: ["203.0.113.7"] (IPs the token is already bound to)')
        rows.append(_tokens.TokenRow(
            id="cfg-" + hashlib.sha256(token.encode()).hexdigest()[:12],  # stable, and not the token itself
            token=token, username=username, enabled=enabled, expires_type=expires_type, expires_at=expires_at,
            max_ips=max_ips, curfew_start=curfew[0], curfew_end=curfew[1], description=description,
            bound_ips=tuple(dict.fromkeys(bound))))
    return tuple(rows)


# ------------------------------------------------------------- headless start

_MODE_DEBUG = {"off": "Off", "strict": "Strict", "all_except_health": "AllExceptHealth", "auto": "Auto"}


def _env(environ, name: str) -> str | None:
    """std::env::var: None when unset or not valid Unicode."""
    value = environ.get(name)
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes (surrogateescape)
        return None
    return value


def _env_pair(environ, first: str, second: str) -> tuple[str | None, str]:
    """`env::var(first).or_else(|_| env::var(second))`: an empty `first` still masks `second` (Q20)."""
    value = _env(environ, first)
    if value is not None:
        return value, first
    return _env(environ, second), second


def _credential_state(value: str | None) -> str:
    return "not set" if value is None or not value.strip() else "set"  # lib.rs:76-82


def apply_headless(cfg: FileConfig, source: str, environ=os.environ) -> FileConfig:
    """The app's headless start (lib.rs:255-338), in its order, on the file's values;
    never writes anything (the app saves them into gui_config.json, Q20).

    1. allow_lan_access = not ABV_BIND_LOCAL_ONLY (1, true, yes, on; lower-cased, not trimmed)
    2. auth_mode off or auto becomes all_except_health
    3. ABV_API_KEY, else API_KEY: applied when not blank, untrimmed
    4. ABV_WEB_PASSWORD, else WEB_PASSWORD: the admin_password, same rule
    5. ABV_AUTH_MODE, else AUTH_MODE, lower-cased: applied when valid (may undo 2), else a warning
    """
    log: list[tuple[str, str]] = []
    where = f"{source} (headless: true)"
    local_only = (_env(environ, "ABV_BIND_LOCAL_ONLY") or "").lower() in ("1", "true", "yes", "on")
    mode = cfg.auth_mode
    if mode in ("off", "auto"):
        log.append(("info", "Headless mode: Forcing auth_mode to AllExceptHealth for Web UI security"))
        mode = "all_except_health"
    api_key = cfg.api_key
    key, var = _env_pair(environ, "ABV_API_KEY", "API_KEY")
    if key is not None and key.strip():
        api_key = check_key(key, where, var)
        log.append(("info", "Using API Key from environment variable"))
    password = cfg.admin_password
    pwd, var = _env_pair(environ, "ABV_WEB_PASSWORD", "WEB_PASSWORD")
    if pwd is not None and pwd.strip():
        password = check_password(pwd, where, var)
        log.append(("info", "Using Web UI Password from environment variable"))
    wanted, var = _env_pair(environ, "ABV_AUTH_MODE", "AUTH_MODE")
    if wanted is not None:
        if wanted.lower() in _MODE_DEBUG:
            mode = wanted.lower()
            log.append(("info", f"Using Auth Mode from environment variable: {_MODE_DEBUG[mode]}"))
        else:
            log.append(("warn", f"Invalid AUTH_MODE: {wanted}, ignoring"))
    log.append(("info", f"\U0001f511 Current API Key: {_credential_state(api_key)}"))
    log.append(("info", "\U0001f510 Web UI Password: " + (
        _credential_state(password) if password is not None else "(Same as API Key)")))
    return replace(cfg, allow_lan_access=not local_only, auth_mode=mode, api_key=api_key, admin_password=password,
                   startup_log=tuple(log))


def check_timeout(value, source: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < IDLE_LIMIT:
        raise ConfigError(source, name, f"{_shown(value)} is not a timeout in seconds",
                          f"use a number of seconds above 0 and below {IDLE_LIMIT} "
                          f"(mitmproxy drops a connection idle for {IDLE_LIMIT} s), e.g. 300")
    return float(value)


def parse_upstream(value, source: str, name: str) -> Upstream:
    fix = "write a URL such as http://127.0.0.1:8046 (http or https, host, optional port and path)"
    if not isinstance(value, str) or not value:
        raise ConfigError(source, name, f"{_QUOTE.repr(value)} is not a URL", fix)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as e:
        raise ConfigError(source, name, f"{_QUOTE.repr(value)} is not a valid URL ({e})", fix) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(source, name, f"{_QUOTE.repr(value)} needs an http:// or https:// scheme and a host", fix)
    if parts.query or parts.fragment:
        raise ConfigError(source, name, f"{_QUOTE.repr(value)} has a query or fragment", fix)
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return Upstream(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


def _section(data: dict, section: str, allowed: tuple[str, ...], source: str) -> dict:
    value = data.get(section)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(source, section, "is not a section of fields",
                          f"write `{section}:` followed by indented fields ({', '.join(allowed)})")
    _only_fields(value, allowed, section, section, source)
    return value


def _only_fields(mapping: dict, allowed: tuple[str, ...], where: str, whose: str, source: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(source, f"{where}.{key}", "unknown field",
                              f"fields of {whose} are: {', '.join(allowed)}")


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
                          "write plain values, a few levels deep, as the repository's config.yaml does") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(source, "(YAML syntax)", f"invalid YAML{at}: {problem}",
                          "fix the indentation or quoting there; see the README's config reference") from None
    if data is None:
        # An empty file is a truncated one far more often than a wish for
        # defaults, and the defaults would turn auth off: refuse it.
        raise ConfigError(source, "(file)", "is empty",
                          "restore it (the repository's config.yaml is a template)")
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
        raise ConfigError(source, "app_config", f"{_shown(app_config)} is not a file",
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
    )
    return apply_headless(cfg, source, environ) if cfg.headless else cfg


def parse_headers(value, source: str, environ=os.environ) -> tuple[tuple[str, str], ...]:
    """upstream.headers: a mapping of header name to value, ${VAR} from the environment."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ConfigError(source, "upstream.headers", "is not a mapping of header names to values",
                          'write e.g. `headers: {x-goog-api-key: "${GEMINI_API_KEY}"}`')
    out = []
    for name, raw in value.items():
        field_name = f"upstream.headers.{name}"
        if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
            raise ConfigError(source, field_name, "is not a valid header name", "use letters, digits and dashes")
        if not isinstance(raw, str):
            raise ConfigError(source, field_name, f"a {type(raw).__name__} is not a header value",
                              'quote the value, e.g. "${MY_KEY}"')

        def expand(m):
            var = m.group(1)
            if var not in environ:
                raise ConfigError(source, field_name, f"environment variable {var} is not set",
                                  f"export {var}=... before starting the gate, or remove the header")
            return environ[var]

        text = _ENV_REF.sub(expand, raw)
        if any(not (c == "\t" or " " <= c <= "~") for c in text):
            raise ConfigError(source, field_name, "the value holds control or non-ASCII characters",
                              "use visible ASCII only")
        out.append((name, text))
    return tuple(out)


def read_config(path: str | os.PathLike, environ=os.environ) -> FileConfig:
    return parse_config(read_text(path), str(path), environ)


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_text(path: str | os.PathLike, limit: int = MAX_CONFIG_BYTES,
              missing: str = "create it (copy the repository's config.yaml) or point --set auth_config=PATH at one") -> str:
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
                kind, size = os.fstat(fd).st_mode, os.fstat(fd).st_size
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
                          "a settings file is a few lines: restore it from the repository's config.yaml")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(source, "(file)", f"is not UTF-8 text ({e.reason} at byte {e.start})",
                          "save it as UTF-8") from None


@dataclass(frozen=True, slots=True)
class Overrides:
    """Option values that win over the file; None means "not set"."""

    auth_mode: str | None = None
    api_key: str | None = None
    allow_lan_access: bool | None = None
    port: int | None = None
    upstream: str | None = None
    profile: str | None = None
    enforce: bool | None = None
    upstream_timeout: float | None = None
    admin_password: str | None = None  # "" sets it empty (not set, for the original)
    version: str | None = None


def merge(cfg: FileConfig, over: Overrides, config_path: str) -> Settings:
    """The snapshot in force: the file, with the options that are set on top."""
    src = "option"
    overridden = tuple(name for name in ("auth_mode", "api_key", "allow_lan_access", "port", "upstream",
                                         "profile", "enforce", "upstream_timeout", "admin_password", "version")
                       if getattr(over, name) is not None)
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


# ------------------------------------------------------------- key write-back

_PROXY_LINE = re.compile(r"^proxy:[ \t]*(#.*)?$", re.M)
_KEY_LINE = re.compile(r"^([ \t]+)api_key:.*$", re.M)
_INDENTED = re.compile(r"^([ \t]+)\S", re.M)


def set_key_in_text(text: str, key: str) -> str:
    """config.yaml's text with proxy.api_key set to `key`, comments kept."""
    line = f"api_key: {key}"
    if _KEY_LINE.search(text):
        new = _KEY_LINE.sub(lambda m: m.group(1) + line, text, count=1)
    elif m := _PROXY_LINE.search(text):
        rest = text[m.end():]
        indent_m = _INDENTED.search(rest)
        indent = indent_m.group(1) if indent_m and indent_m.start() == 1 else "  "
        new = text[:m.end()] + "\n" + indent + line + rest
    else:
        sep = "" if not text or text.endswith("\n") else "\n"
        new = f"{text}{sep}proxy:\n  {line}\n"
    return new


def write_key(path: str | os.PathLike, key: str) -> None:
    """Save the key into config.yaml atomically; refuses to write a broken file."""
    path = Path(path)
    text = read_text(path)
    new = set_key_in_text(text, key)
    if parse_config(new, str(path)).api_key != key:  # never write what would not load back
        raise ConfigError(str(path), "proxy.api_key", "could not be written back safely",
                          "add an `api_key:` line under `proxy:` by hand")
    replace_file(path, new)


def replace_file(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path`
    (readers see the old file or the new one, never half of it)."""
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=path.suffix or ".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
