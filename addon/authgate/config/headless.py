"""`headless: true` in config.yaml: the app's headless start (v4.5.8's lib.rs), its
environment overrides applied to the file's values in its order, with the lines the
original logs. Nothing is written (the app saves them into gui_config.json, Q20).
"""

from __future__ import annotations

import os
from dataclasses import replace

from authgate.config.checks import check_key, check_password
from authgate.config.settings import FileConfig

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
