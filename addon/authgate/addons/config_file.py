"""The settings and their files: the gate's options, config.yaml (or the app's
gui_config.json, see sources.py) read at start and again whenever one changes,
invalid values refused.

Options win over the file. A bad value at start is one plain error line and no
listener at all (mitmdump then exits 1); a bad live change is refused and rolled
back by mitmproxy; a bad edit of the file keeps the last good snapshot (GateState).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from typing import Optional

from mitmproxy import ctx, exceptions

from authgate import mitmproxy_compat
from authgate.addons.state import GateAddon, GateState
from authgate.config import sources
from authgate.config.edit import create_from_template
from authgate.config.fields import BY_OPTION, FIELDS, Field
from authgate.config.settings import ConfigError, Overrides, generate_key
from authgate.rules.common import MODES, PROFILES
from authgate.rules.credentials import fingerprint
from authgate.words import explain

log = logging.getLogger("authgate")

RELOAD_INTERVAL = 1.0  # seconds between config.yaml checks while idle
# The options that feed the snapshot (auth_explain and auth_lang only change the words).
SNAPSHOT_OPTIONS = frozenset({"auth_config", *BY_OPTION})


class ConfigFile(GateAddon):
    name = "authgate.config_file"

    def __init__(self, state: GateState, default_config: str, template: str | None = None) -> None:
        super().__init__(state)
        self.default_config = default_config  # auth_config's default: config.yaml at the repository's root
        self.template = template  # what a missing default config.yaml is made from on first start
        self._watcher: asyncio.Task | None = None

    def load(self, loader) -> None:
        loader.add_option("auth_config", str, self.default_config,
                          "The config.yaml to read (proxy.* and upstream.url), or the app's gui_config.json "
                          "(antigravity: the app's own, in $ABV_DATA_DIR or ~/.antigravity_tools; read only) "
                          "for the auth fields; edits apply to the next request.")
        loader.add_option("auth_mode", Optional[str], None,
                          "Override proxy.auth_mode: off, strict, all_except_health or auto.",
                          choices=MODES)
        loader.add_option("auth_api_key", Optional[str], None, "Override proxy.api_key.")
        loader.add_option("auth_allow_lan_access", Optional[str], None,
                          "Override proxy.allow_lan_access: true or false.", choices=("true", "false"))
        loader.add_option("auth_port", Optional[int], None, "Override proxy.port (0 picks a free port).")
        loader.add_option("auth_upstream", Optional[str], None, "Override upstream.url.")
        loader.add_option("auth_upstream_timeout", Optional[int], None,
                          "Override upstream.timeout: seconds (1-599) to wait for the upstream's answer "
                          "to begin, then a JSON 504.")
        loader.add_option("auth_explain", bool, True,
                          "Explain each 401 in a JSON body; false gives the original's bare 401.")
        loader.add_option("auth_profile", Optional[str], None,
                          "Override proxy.profile: faq (as the FAQ describes) or v4 (newer releases).",
                          choices=PROFILES)
        loader.add_option("auth_enforce", Optional[str], None,
                          "Override proxy.auth_enforce: false is shadow mode (forward everything unchanged, "
                          "predict the real proxy's decision, flag surprises).", choices=("true", "false"))
        loader.add_option("auth_admin_password", Optional[str], None,
                          "Override proxy.admin_password (profile v4: the /api/ admin routes' credential; "
                          "empty: not set, the api_key guards them).")
        loader.add_option("auth_version", Optional[str], None,
                          "Override proxy.version: the version profile v4's health answer gives (default 4.5.8).")
        loader.add_option("auth_lang", str, "en",
                          "Language of comments, logs and commands (and of 401 bodies when the client "
                          "sends no usable Accept-Language): " + ", ".join(explain.LANGUAGES),
                          choices=explain.LANGUAGES)

    def configure(self, updated: set[str]) -> None:
        if self.state.inert or self.state.announcing:
            return
        with refused_at_start(self.state):
            opts = ctx.options
            # Before the first load, whatever the update: another addon's configure (mitmweb's
            # web_columns) may trigger the load before these reach the gate.
            first = not self.state.files.loaded
            if "auth_explain" in updated or first:
                self.state.explain = opts.auth_explain
            if "auth_lang" in updated or first:
                if opts.auth_lang not in explain.CATALOGS:
                    raise exceptions.OptionsError(f"option auth_lang: {opts.auth_lang!r} is not available. "
                                                  f"Fix: use one of {', '.join(explain.CATALOGS)}")
                self.state.lang = opts.auth_lang
            try:
                if not self.state.files.loaded or "auth_config" in updated:
                    self.state.files.load(self._source(opts.auth_config), overrides())
                elif updated & SNAPSHOT_OPTIONS:
                    self.state.files.override(overrides())
            except ConfigError as e:
                raise exceptions.OptionsError(str(e)) from None

    def _source(self, auth_config: str) -> sources.Source:
        """The files to read. A missing default config.yaml is made from the shipped defaults
        (first start); with the app's file in force, which the gate never writes, the shipped
        defaults are read as they are instead."""
        source = sources.source_for(auth_config, self.default_config)
        if self.template and source.config == os.path.abspath(self.default_config) \
                and not os.path.exists(source.config):
            if source.app is not None:
                return dataclasses.replace(source, config=os.path.abspath(self.template))
            first_start(source.config, self.template)
        return source

    async def running(self) -> None:
        if not self.state.inert:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def done(self) -> None:
        if self._watcher:
            self._watcher.cancel()
        self.state.close()

    async def _watch(self) -> None:
        # Requests check the file too; this catches edits while idle (a port
        # change rebinds at once, a bad edit is reported at once). The file is
        # read in a worker thread (state.files.refresh). Nothing ends the watcher: a
        # failure is said once, and again only after a pass that went well.
        failing = False
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            try:
                await self.state.files.refresh()
            except Exception as e:
                if not failing:
                    log.error(f"auth gate: checking {self.state.settings.config_path} failed "
                              f"({type(e).__name__}: {str(e)[:200]}); still checking every {RELOAD_INTERVAL:g} s")
                failing = True
            else:
                failing = False


@contextlib.contextmanager
def refused_at_start(state: GateState):
    """Around a configure hook that may refuse a value (OptionsError): a live
    change is rolled back by mitmproxy, which says why; at start, one plain line
    (mitmdump then exits 1), the gate stays inert, and never a listener, not
    even mitmproxy's default open proxy on *:8080."""
    try:
        yield
    except exceptions.OptionsError as e:
        if state.settings is not None:
            raise
        state.inert = True
        log.error(str(e))
        if not mitmproxy_compat.hold_start():
            ctx.options.update(server=False)


def first_start(config: str, template: str) -> None:
    """The default config.yaml, made from the shipped defaults with a new key if it is missing
    (only that one: a missing file someone named is an error, not a file to invent)."""
    if os.path.exists(config):
        return
    key = generate_key()
    if create_from_template(config, template, key):
        log.warning(f"{config}: created from {os.path.relpath(template, os.path.dirname(config))} with a new "
                    f"key {fingerprint(key)}; edit it there (it is yours: git does not track it)")


def overrides() -> Overrides:
    """The options someone set (an option nobody set reads as config.yaml's value: editor.py)."""
    return Overrides(**{f.setting: _override(f) for f in FIELDS})


def _override(f: Field):
    """An option's value if someone set it, as the file holds it (a true/false option is a
    string: mitmproxy has no Optional[bool]); None when nobody did."""
    value = mitmproxy_compat.explicit(ctx.options, f.option)
    if value is None or f.kind != "bool":
        return value
    try:
        return f.for_file(value)
    except ValueError as e:
        raise exceptions.OptionsError(str(e)) from None
