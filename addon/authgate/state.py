"""What the gate's addons share: the settings snapshot in force, read from
config.yaml (and the app's gui_config.json when it is named, sources.py) with
the option overrides on top, the user-token store, and how to say things.

auth.py makes one GateState and hands it to every addon. The ConfigFile addon
feeds it (options, the files, the idle watcher); the others read `settings`,
`lang` and `explain`, call `reload_if_changed()` before they act, `decide()` a
request under the snapshot and its token store, and `record()` the IP binding
a decision names once its response is out. A new snapshot replaces the old
only when it is valid; whoever must follow it (the listener) subscribes with
`on_change`. No mitmproxy import.

On the event loop, `stale()` and `await refresh()` re-read the files in a
worker thread: they are read and parsed off the loop, so a slow or huge file
never stops the gate from answering others (settings.read_text refuses what is
not a small regular file anyway).
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from typing import Callable

from . import sources
from .appconfig import AppConfig
from .decision import Decision, RequestView, decide
from .explain import phrase as _words
from .settings import ConfigError, FileConfig, Overrides, Settings, fingerprint

log = logging.getLogger("authgate")
REMEMBERED = 10_000  # decisions kept for the flow view, the oldest forgotten first


class GateState:
    def __init__(self) -> None:
        self.settings: Settings | None = None  # the snapshot in force; None until the first good one
        self.explain = True  # explained 401 bodies and the x-auth-gate header (auth_explain)
        self.lang = "en"  # comments, logs and commands (auth_lang)
        self.inert = False  # a start-up error: every addon stays inert while mitmproxy exits
        self.max_body: int | None = None  # bytes a forwarded request body may hold (auth_max_body_size, Limits)
        self.passed = 0
        self.denied = 0
        self.store = None  # the user-token store in force (profile v4; None: no user tokens)
        self.app: AppConfig | None = None  # the app's gui_config.json in force, if one is
        self._source: sources.Source | None = None  # the files the snapshot comes from
        self._snap: sources.Snapshot | None = None  # the last good one: settings and the files as read
        self._stamp: tuple | None = None  # the files' stat when last read (sources.stamp)
        self._recorded: dict = {}  # IP bindings recorded in memory, per token source: survive reloads
        self._overrides = Overrides()
        self._subscribers: list[Callable[[Settings], None]] = []
        self._broken = False  # the last edit of a file was refused (or the file is gone)
        # flow id -> its Decision, for the flow view (flow.metadata holds only plain data)
        self._decisions: OrderedDict[str, Decision] = OrderedDict()
        self.announcing = False  # the gate itself is showing option values (see editor.py)
        self._inflight: asyncio.Task | None = None  # refresh(): the read under way in a worker thread
        self._inflight_since = 0.0
        self._said_slow = False

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
        return decide(RequestView(req.method, req.path, req.headers.fields), self.settings, self.store)

    def remember(self, flow_id: str, d: Decision) -> None:
        """Keep a flow's decision for the flow view (the newest REMEMBERED flows)."""
        decisions = self._decisions
        decisions[flow_id] = d
        if len(decisions) > REMEMBERED:
            decisions.popitem(last=False)

    def recall(self, flow_id: str) -> Decision | None:
        return self._decisions.get(flow_id)

    @property
    def file(self) -> FileConfig | None:
        """What the files say (config.yaml, with the app's auth fields when its
        gui_config.json is in force), before the option overrides."""
        snap = self._snap
        if snap is None or snap.app is None:
            return snap.own if snap else None
        return sources.combine(snap.own, snap.app, self._source.config)

    @property
    def writable(self) -> bool:
        """Whether a setting may be saved into config.yaml: never with the app's file in force."""
        return self.settings is not None and self.settings.app_config is None

    def record(self, bind: tuple[str, str]) -> None:
        """The IP binding the original records once the response is built (monitor.rs),
        whatever its status: in memory, never in the app's database."""
        if self.store is not None:
            self.store.record(*bind)

    @property
    def loaded(self) -> bool:
        return self._source is not None

    def load(self, source: sources.Source, over: Overrides) -> None:
        """Read the files (config.yaml generating a missing key, and the app's) and put
        them in force with the overrides; ConfigError, and nothing changes, when invalid."""
        snap = sources.read(source, over)
        self._source, self._overrides, self._broken = source, over, False
        self._install(snap, _words(self.lang, "why_loaded"))

    def override(self, over: Overrides) -> None:
        """The options changed: the files as last read, with these overrides on top."""
        snap = sources.rebuild(self._snap, self._source, over)
        self._overrides = over
        self._install(snap, _words(self.lang, "why_options"))

    def reload_if_changed(self, why: str | None = None, over: Overrides | None = None) -> None:
        """Read the files again if one changed; a bad edit is logged once and
        the last good snapshot stays; the next good one says it is valid again.
        `why`: the reason the log line gives (default: which file changed);
        `over`: new overrides to put in force with it."""
        if over is not None:
            self._overrides = over
        changed = self._changed()
        if changed is not None:
            self._apply(changed, self._fetch(), why)

    def stale(self) -> bool:
        """Whether a file changed since it was last read (or is being read): a stat or three."""
        return self._inflight is not None or sources.stamp(self._source, self._app()) != self._stamp

    async def refresh(self) -> None:
        """reload_if_changed(), with the files read and parsed in a worker thread so that
        the event loop serves everyone else meanwhile. Callers while a read is under way
        wait for that one, none longer than READ_WAIT after it began: then they go on
        with the last good snapshot, and the read applies when it ends."""
        loop = asyncio.get_running_loop()
        if self._inflight is None:
            changed = self._changed()
            if changed is None:
                return
            self._inflight_since, self._said_slow = loop.time(), False
            self._inflight = loop.create_task(self._refresh(changed))
        left = self._inflight_since + READ_WAIT - loop.time()
        if left > 0:
            try:
                await asyncio.wait_for(asyncio.shield(self._inflight), left)
            except asyncio.TimeoutError:
                if not self._said_slow:  # once per read
                    self._said_slow = True
                    log.warning(f"{self._source.config}: still being read after {READ_WAIT:g} s; the last good "
                                f"config stays in force meanwhile ({describe(self.settings)})")

    async def _refresh(self, changed: tuple) -> None:
        try:
            self._apply(changed, await asyncio.to_thread(self._fetch))
        finally:
            self._inflight = None

    def _app(self) -> str | None:
        return self.settings.app_config if self.settings else self._source.app

    def _changed(self) -> tuple | None:
        """(app file, stamp, previous stamp) when a file changed, taken as read (a bad
        file is reported once); None when none did."""
        app = self._app()
        stamp, previous = sources.stamp(self._source, app), self._stamp
        if stamp == previous:
            return None
        self._stamp = stamp
        return app, stamp, previous

    def _fetch(self):
        """Read the files (any thread): the snapshot, or what went wrong: the path of a
        file that is gone, or the exception (never raised: a file must not end a hook)."""
        source = self._source
        if missing := sources.gone(source, self._app()):
            return missing
        try:
            return sources.read(source, self._overrides)
        except Exception as e:  # ConfigError, OSError, and whatever else a file can cause
            return e

    def _apply(self, changed: tuple, fetched, why: str | None = None) -> None:
        """On the event loop: put a fetched snapshot in force, or say once why not; the
        next good one after a refused one says it is valid again."""
        app, stamp, previous = changed
        source = self._source
        keeping = f"keeping the last good config ({describe(self.settings)})"
        if isinstance(fetched, (str, Exception)):
            self._broken = True
            if isinstance(fetched, str):
                log.error(f"{fetched}: the file is gone; {keeping}")
            elif isinstance(fetched, ConfigError):
                log.error(f"{fetched} — {keeping}")
            elif isinstance(fetched, OSError):
                log.error(f"{source.config}: cannot be read ({fetched}); {keeping}")
            else:
                log.error(f"{source.config}: cannot be read ({type(fetched).__name__}: {str(fetched)[:200]}); "
                          f"{keeping}")
            return
        names = (source.config, app, "user_tokens.db")
        changed_names = ", ".join(os.path.basename(p) for p, before, after in zip(names, previous or (), stamp)
                                  if p and before != after) or os.path.basename(source.config)
        fixed, self._broken = self._broken, False
        if fixed:  # said even when the fix restores the very settings in force
            why = _words(self.lang, "why_valid_again", file=changed_names)
        self._install(fetched, why or _words(self.lang, "why_file", file=changed_names), always=fixed)

    def close(self) -> None:
        if hasattr(self.store, "close"):
            self.store.close()

    def _install(self, snap: sources.Snapshot, why: str, always: bool = False) -> None:
        new, last = snap.settings, self._snap
        old, self.settings, self.app, self._stamp, self._snap = self.settings, new, snap.app, snap.stamp, snap
        store, self.store = self.store, sources.token_store(new, snap.app, self.store, self._recorded)
        if store is not self.store and hasattr(store, "close"):
            store.close()  # the app's database no longer in force
        if old != new or always:
            summary = f"{describe(new, self.lang)}; {sources.describe_source(new, self.store)}"
            log.info(_words(self.lang, "gate_line", why=why, summary=summary))
            if old is None or new.startup_log != old.startup_log:
                for level, line in new.startup_log:  # the original's own lines at a headless start
                    log.log(LEVELS[level], f"headless start, as the original logs it: {line}")
            before = sources.warnings(old, last.app) if old else []
            for line in sources.warnings(new, snap.app):
                if line not in before:
                    log.warning(line)
        for callback in self._subscribers:
            callback(new)


LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO}
READ_WAIT = 1.0  # seconds a request waits for the files being read, at most


def describe(s: Settings, lang: str = "en") -> str:
    """One line about a snapshot (the start-up line's): never the key, only its
    fingerprint; the fields an option overrides are named (auth.status and the
    Options editor say the same)."""
    mode = s.auth_mode if s.auth_mode == s.effective_mode else f"{s.auth_mode} → {s.effective_mode}"
    upstream = _words(lang, "describe_upstream", url=s.upstream.url)
    if s.upstream.headers:
        upstream += f" ({_words(lang, 'describe_adds', names=', '.join(n for n, _ in s.upstream.headers))})"
    parts = [_words(lang, "describe_mode", mode=mode, lan=str(s.allow_lan_access).lower()),
             _words(lang, "describe_key", fingerprint=fingerprint(s.api_key)), upstream,
             _words(lang, "describe_port", port=s.port)]
    if s.profile != "faq":
        parts.append(_words(lang, "describe_profile", profile=s.profile))
    if s.profile == "v4":
        parts.append(_words(lang, "describe_admin_set" if s.admin_password else "describe_admin_unset"))
    if not s.enforce:
        parts.append(_words(lang, "describe_shadow"))
    if s.overridden:
        parts.append(_words(lang, "describe_overrides", names=", ".join(s.overridden)))
    return ", ".join(parts)


class GateAddon:
    """The base of the gate's addons: each gets the one GateState, and nothing else of the others."""

    def __init__(self, state: GateState) -> None:
        self.state = state

    def hooks_when(self, on: bool, *names: str) -> None:
        """Handlers an addon needs under some snapshots only (shadow mode, profile v4). Off, the
        instance answers mitmproxy's lookup with None, "no handler here", as the script module
        does (auth.py): each handler mitmproxy calls costs 1-2 µs per flow. A flow in flight when
        the setting changes is finished under the new one."""
        for name in names:
            if on:
                self.__dict__.pop(name, None)
            else:
                setattr(self, name, None)
