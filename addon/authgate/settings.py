"""config.yaml and option overrides, turned into one immutable Settings snapshot.

Nothing else reads YAML. Every problem raises ConfigError naming where the
value came from (the file or an option), the field, what is wrong and the fix,
so a bad edit can be reported in one line and the last good snapshot kept.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from .decision import MODES, PROFILES, effective_mode

DEFAULT_PORT = 8045
DEFAULT_UPSTREAM = "http://127.0.0.1:8046"
DEFAULT_UPSTREAM_TIMEOUT = 300.0  # seconds for the upstream's response headers, then a JSON 504
IDLE_LIMIT = 600  # mitmproxy drops a connection idle this long (its TCP_TIMEOUT): a timeout must be below

_PROXY_FIELDS = ("port", "allow_lan_access", "auth_mode", "api_key", "profile", "auth_enforce")
_UPSTREAM_FIELDS = ("url", "headers", "timeout")
_TOP_FIELDS = ("proxy", "upstream")
# A key travels in a header: visible ASCII, no spaces.
_KEY_RE = re.compile(r"[\x21-\x7e]*")
_HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(ValueError):
    def __init__(self, source: str, field_name: str, problem: str, fix: str):
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

    @property
    def effective_mode(self) -> str:
        return effective_mode(self.auth_mode, self.allow_lan_access)

    @property
    def listen_host(self) -> str:
        # The original binds 0.0.0.0 when LAN access is allowed.
        return "0.0.0.0" if self.allow_lan_access else "127.0.0.1"


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

def _shown(value) -> str:
    """A wrong value, quoted in an error: long or key-like strings only as a fingerprint."""
    if isinstance(value, str) and (value.startswith("sk-") or len(value) > 24):
        return fingerprint(value)
    return repr(value)


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
                          "use faq (the behaviour the FAQ describes) or v4 (newer releases)")
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


def check_timeout(value, source: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < IDLE_LIMIT:
        raise ConfigError(source, name, f"{_shown(value)} is not a timeout in seconds",
                          f"use a number of seconds above 0 and below {IDLE_LIMIT} "
                          f"(mitmproxy drops a connection idle for {IDLE_LIMIT} s), e.g. 300")
    return float(value)


def parse_upstream(value, source: str, name: str) -> Upstream:
    fix = "write a URL such as http://127.0.0.1:8046 (http or https, host, optional port and path)"
    if not isinstance(value, str) or not value:
        raise ConfigError(source, name, f"{value!r} is not a URL", fix)
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as e:
        raise ConfigError(source, name, f"{value!r} is not a valid URL ({e})", fix) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(source, name, f"{value!r} needs an http:// or https:// scheme and a host", fix)
    if parts.query or parts.fragment:
        raise ConfigError(source, name, f"{value!r} has a query or fragment", fix)
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
    for key in value:
        if key not in allowed:
            raise ConfigError(source, f"{section}.{key}", "unknown field",
                              f"fields of {section} are: {', '.join(allowed)}")
    return value


def parse_config(text: str, source: str) -> FileConfig:
    """Validate config.yaml's text; raises ConfigError."""
    try:
        data = yaml.safe_load(text)
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
            raise ConfigError(source, str(key), "unknown section", "sections are: proxy, upstream")
    proxy = _section(data, "proxy", _PROXY_FIELDS, source)
    upstream = _section(data, "upstream", _UPSTREAM_FIELDS, source)
    if "auth_mode" not in proxy:
        # Never defaulted: a half-written file must not fall back to auto → off.
        raise ConfigError(source, "proxy.auth_mode", "is missing",
                          "add `auth_mode:` under `proxy:` (off, strict, all_except_health or auto)")
    defaults = FileConfig(auth_mode=proxy["auth_mode"])  # only its other fields' defaults are read
    return FileConfig(
        auth_mode=check_mode(proxy["auth_mode"], source, "proxy.auth_mode"),
        port=check_port(proxy.get("port", defaults.port), source, "proxy.port"),
        allow_lan_access=check_bool(proxy.get("allow_lan_access", defaults.allow_lan_access), source,
                                    "proxy.allow_lan_access"),
        api_key=check_key(proxy["api_key"], source, "proxy.api_key") if "api_key" in proxy else None,
        profile=check_profile(proxy.get("profile", defaults.profile), source, "proxy.profile"),
        enforce=check_bool(proxy.get("auth_enforce", defaults.enforce), source, "proxy.auth_enforce"),
        upstream=replace(
            parse_upstream(upstream["url"], source, "upstream.url") if "url" in upstream else defaults.upstream,
            headers=parse_headers(upstream.get("headers"), source),
            timeout=check_timeout(upstream.get("timeout", DEFAULT_UPSTREAM_TIMEOUT), source, "upstream.timeout")),
    )


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


def read_config(path: str | os.PathLike) -> FileConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "(file)", "does not exist",
                          "create it (copy the repository's config.yaml) or point --set auth_config=PATH at one") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), "(file)", f"cannot be read ({e})", "check the file's permissions and encoding") from None
    return parse_config(text, str(path))


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


def merge(cfg: FileConfig, over: Overrides, config_path: str) -> Settings:
    """The snapshot in force: the file, with the options that are set on top."""
    src = "option"
    overridden = tuple(name for name in ("auth_mode", "api_key", "allow_lan_access", "port", "upstream",
                                         "profile", "enforce", "upstream_timeout")
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
    text = path.read_text(encoding="utf-8")
    new = set_key_in_text(text, key)
    if parse_config(new, str(path)).api_key != key:  # never write what would not load back
        raise ConfigError(str(path), "proxy.api_key", "could not be written back safely",
                          "add an `api_key:` line under `proxy:` by hand")
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".yaml", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(new)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
