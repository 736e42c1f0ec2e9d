"""Where the snapshot comes from: the gate's config.yaml and, when it names one,
the app's own gui_config.json with user_tokens.db beside it. No mitmproxy import.

How the two files combine (docs/versions-and-v4.md, "Point the gate at a running Antigravity
Tools app"):

* `auth_config` names the gate's config.yaml (default: the repository's), or
  the app's gui_config.json (any path ending in `.json`), or `antigravity`:
  the app's own, found as the app finds it ($ABV_DATA_DIR, else
  ~/.antigravity_tools). With the app's file, the gate's config.yaml is the
  default one. A config.yaml can name the app's file itself:
  `app_config: antigravity` or a path (relative to the config.yaml).
* **From the app's file** (appconfig.py reads it as v4.5.8 does):
  proxy.auth_mode, allow_lan_access, api_key, admin_password; profile v4;
  the user tokens of user_tokens.db beside it (read-only; none while it is missing).
* **From config.yaml**, the gate's own: the listener (proxy.port and, for the
  listen address only, proxy.allow_lan_access), upstream.*, auth_enforce,
  version, headless. Its auth fields and `tokens:` are not read. When
  proxy.port is the app's own port, the gate takes the one below it (8044
  for 8045): the app listens there.
* `headless: true` applies the app's headless start to the app's values
  (as the app does to the same file) and to the listener as without the app.
* **Options win over both.**
* Neither file is ever written with the app's file in force: no key is
  generated (the app's is used), the database is opened read-only.

Every file is checked with one stat per request (and once a second while
idle): an edit applies to the next request, as config.yaml's always did.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from authgate.config.appconfig import TOKEN_DB, AppConfig, find_app_config, read_app_config
from authgate.config.edit import write_key
from authgate.config.headless import apply_headless
from authgate.config.read import merge, read_config
from authgate.config.settings import FileConfig, Overrides, Settings, generate_key
from authgate.config.token_db import SqliteTokenStore
from authgate.rules import tokens as _tokens
from authgate.rules.credentials import fingerprint

log = logging.getLogger("authgate")

APP_SHORTCUT = "antigravity"  # --set auth_config=antigravity: the app's own gui_config.json


@dataclass(frozen=True, slots=True)
class Source:
    config: str  # the gate's config.yaml, absolute
    app: str | None = None  # the app's gui_config.json named by auth_config; else config.yaml's app_config


class Snapshot(NamedTuple):
    settings: Settings
    own: FileConfig  # config.yaml as read
    app: AppConfig | None  # gui_config.json as read
    stamp: tuple  # every file's stat when read (see stamp())


def source_for(value: str, default_config: str, environ=None, home=None) -> Source:
    """auth_config's value -> the files to read."""
    if value == APP_SHORTCUT:
        return Source(_absolute(default_config), str(find_app_config(environ, home)))
    path = _absolute(value)
    if path.endswith(".json"):
        return Source(_absolute(default_config), path)
    return Source(path)


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def app_path(source: Source, own: FileConfig, environ=None, home=None) -> str | None:
    """The gui_config.json in force: auth_config's, else config.yaml's app_config."""
    if source.app is not None:
        return source.app
    if own.app_config is None:
        return None
    if own.app_config == APP_SHORTCUT:
        return str(find_app_config(environ, home))
    return _absolute(os.path.join(os.path.dirname(source.config), os.path.expanduser(own.app_config)))


def _stat(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def stamp(source: Source, app: str | None) -> tuple:
    """What tells an edit: config.yaml's and gui_config.json's (mtime, size, inode),
    and whether user_tokens.db exists (its content is read on every lookup)."""
    if app is None:
        return (_stat(source.config),)
    return _stat(source.config), _stat(app), os.path.exists(Path(app).parent / TOKEN_DB)


def gone(source: Source, app: str | None) -> str | None:
    """The file of the two that is missing, if one is."""
    for path in (source.config, app):
        if path is not None and _stat(path) is None:
            return path
    return None


def gate_port(own_port: int, app_port: int) -> int:
    """config.yaml's port, unless it is the app's own (the app listens there): the one below."""
    return own_port if own_port != app_port or own_port == 0 else app_port - 1


def combine(own: FileConfig, app: AppConfig, source: str, environ=os.environ) -> FileConfig:
    """config.yaml (the gate's own fields) with the app's auth fields in place of its own."""
    cfg = replace(app.apply_to(own), port=gate_port(own.port, app.port), tokens=())
    # headless: the app's start applies the environment to its own file's values
    return apply_headless(cfg, source, environ) if own.headless else cfg


def read(source: Source, over: Overrides, environ=os.environ, home=None) -> Snapshot:
    """Read the files into a snapshot; ConfigError when one is invalid. A missing
    api_key in config.yaml is generated and written back, without the app's file only."""
    before = _stat(source.config)
    own = read_config(source.config, environ)
    app_file = app_path(source, own, environ, home)
    if app_file is None:
        if own.api_key is None and over.api_key is None:
            key = generate_key()
            write_key(source.config, key)
            log.warning(f"{source.config}: proxy.api_key was missing; generated {fingerprint(key)} "
                        f"and saved it there")
            before = _stat(source.config)
            own = read_config(source.config, environ)
        return rebuild(Snapshot(None, own, None, (before,)), source, over, environ)
    stamps = (before, *stamp(source, app_file)[1:])
    return rebuild(Snapshot(None, own, read_app_config(app_file), stamps), source, over, environ)


def rebuild(snap: Snapshot, source: Source, over: Overrides, environ=os.environ) -> Snapshot:
    """The files as last read, with these overrides on top (no file is read again)."""
    if snap.app is None:
        return snap._replace(settings=merge(snap.own, over, source.config))
    settings = merge(combine(snap.own, snap.app, source.config, environ), over, source.config)
    settings = replace(settings, app_config=snap.app.path, app_port=snap.app.port,
                       listen_lan=snap.own.allow_lan_access)
    return snap._replace(settings=settings)


def token_store(settings: Settings, app: AppConfig | None, old, recorded: dict):
    """The user-token store for a snapshot (v4): the app's user_tokens.db (read-only;
    None while it is missing), else config.yaml's tokens: list (None when empty).
    The IP bindings recorded in memory survive every reload (`recorded`, per source)."""
    if app is not None:
        db = app.token_db
        if not os.path.exists(db):
            return None
        if isinstance(old, SqliteTokenStore) and str(old.path) == db:
            return old
        store = SqliteTokenStore(db)
        store.recorded = recorded.setdefault(db, {})
        return store
    if settings.tokens:
        return _tokens.MemoryTokenStore(settings.tokens, recorded=recorded.setdefault("tokens:", {}))
    return None


def warnings(s: Settings, app: AppConfig | None = None) -> list[str]:
    """What a snapshot should make the gate say out loud at start (and when it changes)."""
    out = [f"{app.path}: {note}" for note in app.notes] if app is not None else []
    if s.app_config is not None and not s.enforce and s.upstream.port != s.app_port:
        out.append(f"shadow mode with the app's config, but upstream.url is {s.upstream.url}, not the app's "
                   f"port {s.app_port}: the verdicts judge that upstream's answers, not the app's. "
                   f"Fix: --set auth_upstream=http://127.0.0.1:{s.app_port}")
    return out


def describe_source(s: Settings, store) -> str:
    """Where the auth fields and the user tokens come from, for the load log and auth.status."""
    if s.app_config is None:
        tokens = f"{len(s.tokens)} user token(s) from tokens:" if s.tokens else "no user tokens"
        return f"auth from {s.config_path}; {tokens}" if s.profile == "v4" else f"auth from {s.config_path}"
    where = (f"user tokens from {store.path} (read-only; IP bindings kept in memory)" if store is not None
             else "no user_tokens.db beside it: no user tokens")
    return f"auth from the app's {s.app_config} (never written; the app listens on {s.app_port}); {where}"
