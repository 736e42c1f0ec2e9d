"""Each field's check: a value as config.yaml, the environment or an option gives it,
returned as the gate uses it, or a ConfigError naming the source, the field, what is
wrong and the fix (a wrong value quoted by settings.shown: never a key). Also the
sections that are lists or mappings of their own: `tokens:` (v4's user tokens, as the
app's user_tokens rows) and upstream.headers (${VAR} from the environment).
"""

from __future__ import annotations

import hashlib
import os
import re

from authgate.config.settings import ConfigError, shown
from authgate.rules import tokens as _tokens
from authgate.rules.common import MODES, PROFILES

IDLE_LIMIT = 600  # mitmproxy drops a connection idle this long (its TCP_TIMEOUT): a timeout must be below

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


def check_port(value, source: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ConfigError(source, name, f"{shown(value)} is not a port number",
                          "use a whole number from 1 to 65535 (0 picks any free port)")
    return value


def check_mode(value, source: str, name: str) -> str:
    if value is False:  # YAML 1.1 reads an unquoted `auth_mode: off` as false
        return "off"
    if value not in MODES:
        raise ConfigError(source, name, f"{shown(value)} is not an auth mode",
                          "use one of " + ", ".join(MODES))
    return value


def check_profile(value, source: str, name: str) -> str:
    if value not in PROFILES:
        raise ConfigError(source, name, f"{shown(value)} is not a profile",
                          "use faq (the behaviour the FAQ describes) or v4 (v4.5.8, rule for rule)")
    return value


def check_bool(value, source: str, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(source, name, f"{shown(value)} is not true or false",
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
        raise ConfigError(source, name, f"{shown(value)} is not a version string",
                          'quote it, e.g. version: "4.5.8" (an unquoted 4.5 is a number to YAML)')
    return value


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_timeout(value, source: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < IDLE_LIMIT:
        raise ConfigError(source, name, f"{shown(value)} is not a timeout in seconds",
                          f"use a number of seconds above 0 and below {IDLE_LIMIT} "
                          f"(mitmproxy drops a connection idle for {IDLE_LIMIT} s), e.g. 300")
    return float(value)


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
        only_fields(item, _TOKEN_FIELDS, where, "a token", source)
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
            raise ConfigError(source, f"{where}.username", f"{shown(username)} is not a name", "quote it")
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            raise ConfigError(source, f"{where}.description", f"{shown(description)} is not text", "quote it")
        expires_type = item.get("expires_type", "never")
        if expires_type not in _tokens.EXPIRES_TYPES:
            raise ConfigError(source, f"{where}.expires_type", f"{shown(expires_type)} is not an expiry type",
                              "use one of " + ", ".join(_tokens.EXPIRES_TYPES) + " (only never ignores expires_at)")
        expires_at = item.get("expires_at")
        if expires_at is not None and not _int(expires_at):
            raise ConfigError(source, f"{where}.expires_at", f"{shown(str(expires_at))} is not a Unix time",
                              "write Unix seconds, e.g. expires_at: 1767225600 (`date -d 2026-01-01 +%s`)")
        max_ips = item.get("max_ips", 0)
        if not _int(max_ips) or not 0 <= max_ips < 2 ** 31:
            raise ConfigError(source, f"{where}.max_ips", f"{shown(max_ips)} is not an IP count",
                              "use a whole number, 0 for no limit")
        curfew = []
        for name in ("curfew_start", "curfew_end"):
            v = item.get(name)
            if _int(v):  # YAML 1.1 reads an unquoted 22:00 as the sexagesimal number 1320
                raise ConfigError(source, f"{where}.{name}", f"{v} is a number (YAML reads an unquoted HH:MM "
                                  "as minutes)", f'quote the time, e.g. {name}: "22:00"')
            if v is not None and not (isinstance(v, str) and (v == "" or _HHMM_RE.fullmatch(v))):
                raise ConfigError(source, f"{where}.{name}", f"{shown(v)} is not a time",
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


def only_fields(mapping: dict, allowed: tuple[str, ...], where: str, whose: str, source: str) -> None:
    """An unknown field refused, in a config.yaml section or a token alike."""
    for key in mapping:
        if key not in allowed:
            raise ConfigError(source, f"{where}.{key}", "unknown field",
                              f"fields of {whose} are: {', '.join(allowed)}")


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
