"""The gate's commands (mitmweb's command bar, `POST /commands/<name>`, mitmproxy's console):
auth.explain, auth.regenerate, auth.status.
"""

from __future__ import annotations

import logging

from mitmproxy import command, ctx, exceptions, flow, http

from . import explain, sources
from .settings import ConfigError, fingerprint, generate_key, write_key
from .state import GateAddon

log = logging.getLogger("authgate")


class Commands(GateAddon):
    name = "authgate.commands"

    @command.command("auth.explain")
    def explain_flow(self, f: flow.Flow) -> str:
        """The full decision trace for a flow, under the settings in force now."""
        if not isinstance(f, http.HTTPFlow):
            raise exceptions.CommandError("auth.explain takes an HTTP flow")
        self.state.reload_if_changed()
        lang = self.state.lang
        d = self.state.decide(f.request)
        out = explain.trace(d, f.request.method, f.request.path, lang)
        recorded = f.comment if "auth" in f.metadata else ""
        if recorded and not recorded.startswith(explain.comment(d, lang)):
            out += f"\nrecorded when the flow ran: {recorded}\n(settings have changed since; replay to decide again)"
        return out

    @command.command("auth.regenerate")
    def regenerate(self) -> str:
        """A new sk- key, saved to config.yaml at once; the old key stops working."""
        if self.state.settings.app_config is not None:  # the gate never writes the app's file
            raise exceptions.CommandError(
                f"the api_key comes from the app's {self.state.settings.app_config}, which the gate never "
                "writes: regenerate it in the app (API Proxy, Regenerate); the next request uses the new key")
        path = self.state.settings.config_path
        key = generate_key()
        try:
            write_key(path, key)
        except (OSError, ConfigError) as e:
            raise exceptions.CommandError(f"{path}: cannot save the new key ({e}); nothing changed") from None
        note = ""
        if ctx.options.auth_api_key is not None:
            # The option would keep the old key in force: the new key must win.
            ctx.options.update(auth_api_key=None)
            note = " (the auth_api_key option override was cleared)"
        self.state.reload_if_changed()
        msg = f"new api_key {fingerprint(key)} saved to {path}; the old key no longer works{note}"
        log.warning(msg)
        return msg

    @command.command("auth.status")
    def status(self) -> str:
        """Mode (and why), LAN flag, key fingerprint, upstream, config file, counts."""
        self.state.reload_if_changed()
        s = self.state.settings
        return "\n".join([
            f"effective mode: {s.effective_mode} ({explain.mode_why(s.auth_mode, s.allow_lan_access)})",
            f"allow_lan_access: {str(s.allow_lan_access).lower()} (listening on {s.listen_host})",
            f"api_key: {fingerprint(s.api_key)}",
            f"upstream: {s.upstream.url} (timeout {s.upstream.timeout:g} s, then 504)",
            f"config: {s.config_path}" + (f" (options override: {', '.join(s.overridden)})" if s.overridden else ""),
            sources.describe_source(s, self.state.store),
            f"flows: {self.state.passed} passed, {self.state.denied} denied",
        ])
