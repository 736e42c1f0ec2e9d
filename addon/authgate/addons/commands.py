"""The gate's commands (mitmweb's command bar, `POST /commands/<name>`, mitmproxy's console):
auth.explain, auth.regenerate, auth.status.
"""

from __future__ import annotations

import logging
import os

from mitmproxy import command, ctx, exceptions, flow, http

from authgate import mitmproxy_compat
from authgate.addons.state import GateAddon
from authgate.config import fields, sources
from authgate.config.edit import write_key
from authgate.config.settings import ConfigError, generate_key
from authgate.rules.credentials import fingerprint
from authgate.words import explain

log = logging.getLogger("authgate")


class Commands(GateAddon):
    name = "authgate.commands"

    @command.command("auth.explain")
    def explain_flow(self, f: flow.Flow) -> str:
        """The full decision trace for a flow, under the settings in force now;
        also written to the event log, one line each. In mitmweb, @focus is the
        flow open in the flow view."""
        if not isinstance(f, http.HTTPFlow):
            raise exceptions.CommandError("auth.explain takes an HTTP flow")
        self.state.files.reload_if_changed()
        lang = self.state.lang
        d = self.state.decide(f.request)
        out = explain.trace(d, f.request.method, f.request.path, lang)
        recorded = f.comment if "auth" in f.metadata else ""
        if recorded and not recorded.startswith(explain.comment(d, lang)):
            out += (f"\n{explain.phrase(lang, 'recorded', comment=recorded)}"
                    f"\n{explain.phrase(lang, 'recorded_changed')}")
        # mitmweb's command bar shows a result as one JSON string (\n and all):
        # the event log shows it as lines.
        log.info(explain.phrase(lang, "explain_logged", flow=f.id))
        for line in out.splitlines():
            log.info(f"  {line}")
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
        if mitmproxy_compat.explicit(ctx.options, "auth_api_key") is not None:
            # The option would keep the old key in force: the new key must win.
            ctx.options.update(auth_api_key=None)
            note = " (the auth_api_key option override was cleared)"
        self.state.files.reload_if_changed()
        msg = f"new api_key {fingerprint(key)} saved to {path}; the old key no longer works{note}"
        log.warning(msg)
        return msg

    @command.command("auth.status")
    def status(self) -> str:
        """Mode (and why), each setting in force and where it comes from (config.yaml
        or an option override, as the Options editor shows), counts."""
        self.state.files.reload_if_changed()
        s, lang = self.state.settings, self.state.lang
        words = lambda phrase, **kw: explain.phrase(lang, phrase, **kw)  # noqa: E731
        name = os.path.basename(s.config_path)
        rows = fields.in_force(s, self.state.files.as_read)

        def source(option: str) -> str:
            row, where = rows[option], fields.file_of(fields.BY_OPTION[option], s)
            return words("src_override", file=where, value=row.in_file) if row.overridden else words(
                "src_file", file=where)

        lines = [words("trace_mode", mode=s.effective_mode, why=explain.mode_why(s.auth_mode, s.allow_lan_access, lang)),
                 words("status_field", name="auth_mode", value=s.auth_mode, source=source("auth_mode")),
                 words("status_lan", value=rows["auth_allow_lan_access"].value, host=s.listen_host,
                       source=source("auth_allow_lan_access")),
                 words("status_field", name="api_key", value=fingerprint(s.api_key), source=source("auth_api_key")),
                 words("status_upstream", url=s.upstream.url, timeout=f"{s.upstream.timeout:g}",
                       source=source("auth_upstream") if rows["auth_upstream"].overridden
                       else source("auth_upstream_timeout")),
                 words("status_field", name="port", value=s.port, source=source("auth_port"))]
        for option, label, usual in (("auth_profile", "profile", "faq"), ("auth_enforce", "auth_enforce", "true")):
            if rows[option].overridden or rows[option].value != usual:
                lines.append(words("status_field", name=label, value=rows[option].value, source=source(option)))
        config = words("status_config", path=s.config_path)
        if s.overridden:
            config += words("status_overrides", names=", ".join(s.overridden))
        saving = "status_save_on" if ctx.options.auth_save and self.state.writable else "status_save_off"
        lines += [config, sources.describe_source(s, self.state.store), words(saving, file=name),
                  words("status_flows", passed=self.state.passed, denied=self.state.denied)]
        return "\n".join(lines)
