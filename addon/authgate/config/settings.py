"""The settings' types: the Settings snapshot in force and its parts (FileConfig, what
config.yaml says; Upstream; Overrides, the options that win), ConfigError, and how a
key or a wrong value is shown (fingerprint, shown): never the key itself.

Every problem raises ConfigError naming where the value came from (the file, the
environment or an option), the field, what is wrong and the fix, so a bad edit can be
reported in one line and the last good snapshot kept. The checks that raise it are in
checks.py; config.yaml is read, and merged with the options, in config_read.py; a
field is saved into it by config_edit.py.
"""

from __future__ import annotations

import reprlib
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from authgate.rules import tokens as _tokens
from authgate.rules.common import effective_mode
from authgate.rules.credentials import fingerprint
from authgate.rules.v4 import VERSION as V4_VERSION

DEFAULT_PORT = 8045
DEFAULT_UPSTREAM = "http://127.0.0.1:8046"
DEFAULT_UPSTREAM_TIMEOUT = 300.0  # seconds for the upstream's response headers, then a JSON 504
PROBLEM_LIMIT = 300  # characters of a problem an error message quotes


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
        return self.origin + self.prefix

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FileConfig:
    """What config.yaml says; api_key is None when the field is missing.

    auth_mode has no default: a file without it is refused (see parse_config),
    unless the app's gui_config.json gives it (app_config).
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
    # The fields the file writes out ("proxy.profile"), so that "a default" is not said to be "in the file".
    given: frozenset[str] = frozenset()


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


def generate_key() -> str:
    return "sk-" + secrets.token_hex(16)


_QUOTE = reprlib.Repr()  # repr() that never walks or builds more than a few dozen characters
_QUOTE.maxlevel, _QUOTE.maxstring, _QUOTE.maxother = 2, 80, 40
_QUOTE.maxlist = _QUOTE.maxdict = _QUOTE.maxtuple = _QUOTE.maxset = 4


def shown(value) -> str:
    """A wrong value, quoted in an error: long or key-like strings only as a fingerprint,
    anything else cut short (a list of a million items costs what four do)."""
    if isinstance(value, str) and (value.startswith("sk-") or len(value) > 24):
        return fingerprint(value)
    return _QUOTE.repr(value)


def parse_upstream(value, source: str, name: str) -> Upstream:
    """upstream.url or auth_upstream as an Upstream (here, beside it: FileConfig's default is one)."""
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
