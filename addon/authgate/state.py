"""What the gate's addons share: the settings snapshot in force, read from
config.yaml with the option overrides on top, and how to say things.

auth.py makes one GateState and hands it to every addon. The ConfigFile addon
feeds it (options, the file, the idle watcher); the others read `settings`,
`lang` and `explain`, call `reload_if_changed()` before they act, and
`decide()` a request under the snapshot. A new
snapshot replaces the old only when it is valid; whoever must follow it (the
listener) subscribes with `on_change`. No mitmproxy import.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

from .decision import Decision, RequestView, decide
from .settings import (ConfigError, FileConfig, Overrides, Settings, fingerprint, generate_key, merge,
                       read_config, write_key)

log = logging.getLogger("authgate")


class GateState:
    def __init__(self) -> None:
        self.settings: Settings | None = None  # the snapshot in force; None until the first good one
        self.explain = True  # explained 401 bodies and the x-auth-gate header (auth_explain)
        self.lang = "en"  # comments, logs and commands (auth_lang)
        self.inert = False  # a start-up error: every addon stays inert while mitmproxy exits
        self.passed = 0
        self.denied = 0
        self._file: FileConfig | None = None  # last good config.yaml
        self._path = ""
        self._stamp: tuple | None = None  # config.yaml's (mtime, size, inode) when last read
        self._overrides = Overrides()
        self._subscribers: list[Callable[[Settings], None]] = []

    def on_change(self, callback: Callable[[Settings], None]) -> None:
        """Call `callback` with every snapshot put in force (also when equal to the last)."""
        self._subscribers.append(callback)

    def count(self, allowed: bool) -> None:
        if allowed:
            self.passed += 1
        else:
            self.denied += 1

    def decide(self, req) -> Decision:
        """The decision on a request (mitmproxy's http.Request) under the snapshot in force."""
        return decide(RequestView(req.method, req.path, req.headers.fields), self.settings)

    @property
    def loaded(self) -> bool:
        return self._file is not None

    def load(self, path: str, over: Overrides) -> None:
        """Read config.yaml (generating a missing key) and put it in force with
        the overrides; ConfigError, and nothing changes, when either is invalid."""
        file, stamp = _read(path, over)
        new = merge(file, over, path)
        self._file, self._stamp, self._path, self._overrides = file, stamp, path, over
        self._install(new, "loaded")

    def override(self, over: Overrides) -> None:
        """The options changed: the last good file with these overrides on top."""
        new = merge(self._file, over, self._path)
        self._overrides = over
        self._install(new, "options changed")

    def reload_if_changed(self) -> None:
        """Read config.yaml again if it changed; a bad edit is logged once and
        the last good snapshot stays."""
        path = self._path
        stamp = _stamp(path)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        keeping = f"keeping the last good config ({describe(self.settings)})"
        if stamp is None:
            log.error(f"{path}: the file is gone; {keeping}")
            return
        try:
            file, self._stamp = _read(path, self._overrides)
            new = merge(file, self._overrides, path)
        except ConfigError as e:
            log.error(f"{e} — {keeping}")
            return
        except OSError as e:
            log.error(f"{path}: cannot be read ({e}); {keeping}")
            return
        self._file = file
        self._install(new, f"{os.path.basename(path)} changed")

    def _install(self, new: Settings, why: str) -> None:
        old, self.settings = self.settings, new
        if old != new:
            log.info(f"auth gate ({why}): {describe(new)}")
        for callback in self._subscribers:
            callback(new)


def _read(path: str, over: Overrides) -> tuple[FileConfig, tuple | None]:
    """Read config.yaml; a missing api_key is generated once and written back."""
    stamp = _stamp(path)
    file = read_config(path)
    if file.api_key is None and over.api_key is None:
        key = generate_key()
        write_key(path, key)
        log.warning(f"{path}: proxy.api_key was missing; generated {fingerprint(key)} and saved it there")
        stamp = _stamp(path)
        file = read_config(path)
    return file, stamp


def _stamp(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def describe(s: Settings) -> str:
    """One line about a snapshot: never the key, only its fingerprint."""
    mode = s.auth_mode if s.auth_mode == s.effective_mode else f"{s.auth_mode} → {s.effective_mode}"
    over = f", options override {', '.join(s.overridden)}" if s.overridden else ""
    added = f" (adds {', '.join(n for n, _ in s.upstream.headers)})" if s.upstream.headers else ""
    profile = f", profile {s.profile}" if s.profile != "faq" else ""
    shadow = ", SHADOW MODE (forwards everything, predicts)" if not s.enforce else ""
    return (f"mode {mode} (allow_lan_access={str(s.allow_lan_access).lower()}), "
            f"api_key {fingerprint(s.api_key)}, upstream {s.upstream.url}{added}, port {s.port}"
            f"{profile}{shadow}{over}")


class GateAddon:
    """The base of the gate's addons: each gets the one GateState, and nothing else of the others."""

    def __init__(self, state: GateState) -> None:
        self.state = state
