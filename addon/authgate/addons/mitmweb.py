"""The gate's touches of mitmweb (none under mitmdump):

* the flow list's comment column on (`web_columns`), and widened: mitmweb cuts
  it at 150px (11.0 to 12.x), too narrow to read which header won. The gate
  serves mitmweb's own stylesheet with that one column widened, through
  tornado's public add_handlers (host rules match before the app's own routes);
  if a release moves the stylesheet (see mitmproxy_compat), the column keeps
  mitmweb's width and the gate says so once;
* the UI kept on loopback where mitmweb has no password (11.0.x), unless forced
  with auth_web_remote.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from pathlib import Path

import tornado.web
from mitmproxy import ctx, exceptions

from authgate import mitmproxy_compat
from authgate.addons.config_file import refused_at_start
from authgate.addons.state import GateAddon

log = logging.getLogger("authgate")

OVERRIDE = (b"\n/* antigravity auth gate: room for the decision line in the comment column */\n"
            b".flow-table .col-comment{width:50%}\n"
            b".flow-table td.col-comment{text-align:left}\n")


class Mitmweb(GateAddon):
    name = "authgate.mitmweb"

    def load(self, loader) -> None:
        loader.add_option("auth_web_remote", bool, False,
                          "Allow mitmweb's UI on a non-loopback web_host where mitmweb has no password "
                          "(11.0.x): anyone who reaches it sees every key and can change the auth settings. "
                          "mitmweb 11.1.2+ asks for a token or web_password, and is allowed there.")

    def configure(self, updated: set[str]) -> None:
        if self.state.inert:
            return
        opts = ctx.options
        with refused_at_start(self.state):
            if updated & {"web_host", "auth_web_remote"} and "web_host" in opts:
                check_web_host(opts.web_host, opts.auth_web_remote, mitmproxy_compat.web_has_password())
        if self.state.settings is None and "web_columns" in opts and "comment" not in opts.web_columns:
            # The comment column is where each row says which header won and why.
            opts.update(web_columns=[*opts.web_columns, "comment"])

    def running(self) -> None:
        if not self.state.inert and (app := mitmproxy_compat.web_app()):
            widen_comment_column(app)


def check_web_host(host: str, remote_ok: bool, has_password: bool) -> None:
    """mitmweb 11.0.x has no password: keep its UI on loopback unless forced.
    11.1.2+ asks for a token (or web_password): a remote UI is allowed, and said."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return
    where = host or "(all interfaces)"
    if has_password:
        log.warning(f"mitmweb on {where}: whoever has its token or web_password sees the keys in every flow "
                    f"and can change the auth settings")
        return
    if not remote_ok:
        raise exceptions.OptionsError(
            f"web_host {where} is not a loopback address. This mitmweb has no password, "
            f"so anyone who reaches the UI sees the keys and can change the auth settings. "
            f"Fix: --set web_host=127.0.0.1, upgrade to mitmproxy 11.1.2+ (token-protected UI), "
            f"or force it with --set auth_web_remote=true")


class _Stylesheet(tornado.web.RequestHandler):
    def initialize(self, css: bytes) -> None:
        self.css = css

    def get(self) -> None:
        self.set_header("Content-Type", "text/css; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.write(self.css)


def widen_comment_column(app: tornado.web.Application) -> bool:
    static = Path(app.settings.get("static_path", ""))
    path = mitmproxy_compat.stylesheet(static) if static.is_dir() else None
    if path is None:
        log.warning(f"auth gate: no mitmweb stylesheet with the comment column in {static}; "
                    f"the comment column keeps mitmweb's width (150px)")
        return False
    app.add_handlers(r".*", [(f"/static/{re.escape(path.name)}", _Stylesheet,
                              {"css": path.read_bytes() + OVERRIDE})])
    return True
