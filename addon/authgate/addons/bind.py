"""Where the gate listens: reverse mode to upstream.url, on 127.0.0.1 (0.0.0.0
with allow_lan_access) and proxy.port, following every snapshot (a changed port
or LAN flag rebinds). Flags the user gave (--mode, --listen-host,
--listen-port) win. On Python 3.12+ the gate takes mitmproxy's listener start-up
over (see mitmproxy_compat), so mitmproxy's default *:8080 proxy never opens.
`headless: true` listens on 0.0.0.0 as the app's headless start does, and says so.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re

from mitmproxy import ctx

from authgate import mitmproxy_compat
from authgate.addons.state import GateAddon, GateState
from authgate.config import ports
from authgate.config.settings import Settings
from authgate.words import explain

log = logging.getLogger("authgate")
# mitmproxy's words for a busy port: errno 98 (Linux), 48 (macOS), 10048 (Windows)
_IN_USE = re.compile(rf"\[Errno ({errno.EADDRINUSE}|98|48|10048)\]|already in use|only one usage", re.I)
_WHERE = re.compile(r"listen on (\S+):(\d+)")


class Bind(GateAddon):
    name = "authgate.bind"

    def __init__(self, state: GateState) -> None:
        super().__init__(state)
        self._user: tuple[bool, str, int | None] | None = None  # the user's --mode, listen_host, listen_port
        self._held = False  # the gate took mitmproxy's listener start-up over
        state.on_change(self._bind)

    def _bind(self, s: Settings) -> None:
        opts = ctx.options
        if self._user is None:  # before the gate changes any of them
            self._user = (opts.mode != ["regular"], opts.listen_host, opts.listen_port)
        user_mode, user_host, user_port = self._user
        if user_mode:
            return
        host = user_host or s.listen_host
        port = user_port if user_port is not None else s.port
        # Reverse mode: never an open forward proxy. Lazy: /healthz and 401s
        # answer even when the upstream is down.
        spec = f"reverse:{s.upstream.origin}@{host}:{port}"
        if s.headless and host == "0.0.0.0" and opts.mode != [spec]:
            log.warning(
                f"headless: true: the gate listens on 0.0.0.0:{port}, every network interface, as the app's "
                "headless start does (allow_lan_access is true unless ABV_BIND_LOCAL_ONLY=1): anyone who can "
                "reach this machine can reach it. To stay on this machine: ABV_BIND_LOCAL_ONLY=1, "
                "or --listen-host 127.0.0.1")
        if opts.mode != [spec]:
            # listen_host/port too, so mitmweb's status bar shows the real address
            opts.update(mode=[spec], connection_strategy="lazy", listen_host=host, listen_port=port)
        if not self._held:
            self._held = mitmproxy_compat.hold_start()

    def load(self, loader) -> None:
        self._watch = mitmproxy_compat.watch_listen_errors(self._listen_failed)

    def done(self) -> None:
        mitmproxy_compat.unwatch_listen_errors(self._watch)

    async def running(self) -> None:
        if self._held and not self.state.inert:
            await mitmproxy_compat.start_listeners()

    def _listen_failed(self, message: str) -> None:
        """A busy port: mitmproxy says only "[Errno 98] ... address already in use";
        the gate says who holds it, as the OS tells, and which settings move it (after mitmproxy's line)."""
        s = self.state.settings
        if s is None or not _IN_USE.search(message):
            return
        host, port = m.groups() if (m := _WHERE.search(message)) else (s.listen_host, s.port)
        lang = self.state.lang
        hint = explain.phrase(lang, "port_in_use", host=host, port=port, file=os.path.basename(s.config_path),
                              holder=ports.holder(int(port)) or explain.phrase(lang, "port_holder_unknown"))
        try:
            asyncio.get_running_loop().call_soon(log.error, hint)
        except RuntimeError:  # no event loop running: say it now
            log.error(hint)
