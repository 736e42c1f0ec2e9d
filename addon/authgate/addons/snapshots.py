"""The files behind the settings: config.yaml (and the app's gui_config.json and
user_tokens.db when they are named, sources.py) read into snapshots, and read
again when one changed. A snapshot is put in force (GateState.install) only when
it is valid; a bad edit is said once and the last good one stays; the next good
one says it is valid again.

On the event loop, `stale()` and `await refresh()` re-read the files in a
worker thread: they are read and parsed off the loop, so a slow or huge file
never stops the gate from answering others (config_read.read_text refuses what is
not a small regular file anyway). No mitmproxy import.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Protocol

from authgate.config import sources
from authgate.config.appconfig import TOKEN_DB
from authgate.config.settings import ConfigError, FileConfig, Overrides, Settings
from authgate.words.explain import phrase as _words

log = logging.getLogger("authgate")
READ_WAIT = 1.0  # seconds a request waits for the files being read, at most


class Holder(Protocol):
    """Where the snapshots go (GateState): what is in force, and how to put a new one in force."""

    snap: sources.Snapshot | None
    settings: Settings | None
    lang: str

    def summary(self) -> str: ...

    def install(self, snap: sources.Snapshot, why: str, always: bool = False) -> None: ...


class Snapshots:
    def __init__(self, state: Holder) -> None:
        self._state = state  # where a good snapshot is put in force
        self._source: sources.Source | None = None  # the files the snapshot comes from
        self._stamp: tuple | None = None  # the files' stat when last read (sources.stamp)
        self._overrides = Overrides()
        self._broken = False  # the last edit of a file was refused (or the file is gone)
        self._inflight: asyncio.Task | None = None  # refresh(): the read under way in a worker thread
        self._inflight_since = 0.0
        self._said_slow = False

    @property
    def loaded(self) -> bool:
        return self._source is not None

    @property
    def as_read(self) -> FileConfig | None:
        """What the files say (config.yaml, with the app's auth fields when its
        gui_config.json is in force), before the option overrides."""
        snap = self._state.snap
        if snap is None or snap.app is None:
            return snap.own if snap else None
        return sources.combine(snap.own, snap.app, self._source.config)

    def load(self, source: sources.Source, over: Overrides) -> None:
        """Read the files (config.yaml generating a missing key, and the app's) and put
        them in force with the overrides; ConfigError, and nothing changes, when invalid."""
        snap = sources.read(source, over)
        self._source, self._overrides, self._broken = source, over, False
        self._put(snap, _words(self._state.lang, "why_loaded"))

    def override(self, over: Overrides) -> None:
        """The options changed: the files as last read, with these overrides on top."""
        snap = sources.rebuild(self._state.snap, self._source, over)
        self._overrides = over
        self._put(snap, _words(self._state.lang, "why_options"))

    def reload_if_changed(self, why: str | None = None, over: Overrides | None = None) -> None:
        """Read the files again if one changed (here, on this thread).
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
                                f"config stays in force meanwhile ({self._state.summary()})")

    async def _refresh(self, changed: tuple) -> None:
        try:
            self._apply(changed, await asyncio.to_thread(self._fetch))
        finally:
            self._inflight = None

    def _app(self) -> str | None:
        settings = self._state.settings
        return settings.app_config if settings else self._source.app

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
        if isinstance(fetched, (str, Exception)):
            self._broken = True
            log.error(_refusal(fetched, self._source.config, f"keeping the last good config "
                                                              f"({self._state.summary()})"))
            return
        names = (self._source.config, app, TOKEN_DB)
        changed_names = ", ".join(os.path.basename(p) for p, before, after in zip(names, previous or (), stamp)
                                  if p and before != after) or os.path.basename(self._source.config)
        fixed, self._broken = self._broken, False
        if fixed:  # said even when the fix restores the very settings in force
            why = _words(self._state.lang, "why_valid_again", file=changed_names)
        self._put(fetched, why or _words(self._state.lang, "why_file", file=changed_names), always=fixed)

    def _put(self, snap: sources.Snapshot, why: str, always: bool = False) -> None:
        self._stamp = snap.stamp
        self._state.install(snap, why, always)


def _refusal(fetched: str | Exception, config: str, keeping: str) -> str:
    """The one line that says why a read of the files was not put in force."""
    if isinstance(fetched, str):
        return f"{fetched}: the file is gone; {keeping}"
    if isinstance(fetched, ConfigError):
        return f"{fetched} — {keeping}"
    if isinstance(fetched, OSError):
        return f"{config}: cannot be read ({fetched}); {keeping}"
    return f"{config}: cannot be read ({type(fetched).__name__}: {str(fetched)[:200]}); {keeping}"
