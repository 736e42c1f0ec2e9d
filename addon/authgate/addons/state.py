"""What the gate's addons share: the settings snapshot in force (config.yaml,
and the app's gui_config.json when it is named, with the option overrides on
top), the user-token store, the flows' decisions and how to say things.

auth.py makes one GateState and hands it to every addon. The ConfigFile addon
feeds it through `files` (snapshots.py: the files read, watched and read again);
the others read `settings`, `lang` and `explain`, `decide()` a request under the
snapshot and its token store, and `record()` the IP binding a decision names
once its response is out. Whoever must follow each new snapshot (the listener,
the Options editor, hooks needed under some settings only) subscribes with
`on_change`. No mitmproxy import.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Callable

from authgate.addons.snapshots import Snapshots
from authgate.config import sources
from authgate.config.settings import Settings
from authgate.rules.common import Decision, RequestView
from authgate.rules.credentials import fingerprint
from authgate.rules.decide import decide
from authgate.words.explain import phrase as _words

log = logging.getLogger("authgate")
REMEMBERED = 10_000  # decisions kept for the flow view, the oldest forgotten first
LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO}


class GateState:
    def __init__(self) -> None:
        self.settings: Settings | None = None  # the snapshot in force; None until the first good one
        self.snap: sources.Snapshot | None = None  # the last good one: settings and the files as read
        self.files = Snapshots(self)  # the files behind it: loaded, watched, read again
        self.explain = True  # explained 401 bodies and the x-auth-gate header (auth_explain)
        self.lang = "en"  # comments, logs and commands (auth_lang)
        self.inert = False  # a start-up error: every addon stays inert while mitmproxy exits
        self.max_body: int | None = None  # bytes a forwarded request body may hold (auth_max_body_size, Limits)
        self.keep_body = 1 << 20  # bytes of each streamed body a flow keeps for mitmweb (auth_keep_body, Limits)
        self.passed = 0
        self.denied = 0
        self.store = None  # the user-token store in force (profile v4; None: no user tokens)
        self.announcing = False  # the gate itself is showing option values (see editor.py)
        self._recorded: dict = {}  # IP bindings recorded in memory, per token source: survive reloads
        self._subscribers: list[Callable[[Settings], None]] = []
        # flow id -> its Decision, for the flow view (flow.metadata holds only plain data)
        self._decisions: OrderedDict[str, Decision] = OrderedDict()

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
    def writable(self) -> bool:
        """Whether a setting may be saved into config.yaml: never with the app's file in force."""
        return self.settings is not None and self.settings.app_config is None

    def record(self, bind: tuple[str, str]) -> None:
        """The IP binding the original records once the response is built (monitor.rs),
        whatever its status: in memory, never in the app's database."""
        if self.store is not None:
            self.store.record(*bind)

    def summary(self) -> str:
        return describe(self.settings)

    def close(self) -> None:
        if hasattr(self.store, "close"):
            self.store.close()

    def install(self, snap: sources.Snapshot, why: str, always: bool = False) -> None:
        """Put a valid snapshot in force (Snapshots calls this), with its token store; say
        so when it changed anything, and tell every subscriber."""
        new, last = snap.settings, self.snap
        old, self.settings, self.snap = self.settings, new, snap
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
    """The base of the gate's addons: each gets the one GateState, and nothing else of the others.

    `follows`: handlers an addon needs under some snapshots only (shadow mode, profile v4), on
    while `needed(settings)` says so. Off, the instance answers mitmproxy's lookup with None, "no
    handler here", as the script module does (auth.py): each handler mitmproxy calls costs 1-2 µs
    per flow. A flow in flight when the setting changes is finished under the new one."""
    follows: tuple[str, ...] = ()

    def __init__(self, state: GateState) -> None:
        self.state = state
        if self.follows:
            state.on_change(self._follow)

    def needed(self, s: Settings) -> bool:
        return True

    def _follow(self, s: Settings) -> None:
        on = self.needed(s)
        for name in self.follows:
            if on:
                self.__dict__.pop(name, None)
            else:
                setattr(self, name, None)
