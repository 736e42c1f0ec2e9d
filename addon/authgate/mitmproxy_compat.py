"""Every touch of mitmproxy internals, and everything that differs by mitmproxy
version, in one place (11.0 to 12.3). The gate's addons call these and never
reach into mitmproxy themselves. If a release moves one of them, the gate warns
(or falls back) and the tests that exercise it fail at once.

* Listener start-up (``hold_start``, ``start_listeners``). mitmproxy loads a
  ``-s`` script one event-loop turn after it starts bringing up its listeners.
  On Python 3.11 its start-up task has not run yet by then, so the gate's
  ``mode`` option wins. On Python 3.12+ mitmproxy runs with asyncio's eager task
  factory: the start-up task has already read ``options.mode`` (the default
  forward proxy on ``*:8080``) and is binding it when the gate loads, and the
  proxyserver addon drops mode changes made before it is running
  (``addons/proxyserver.py``, ``configure``: ``if self.is_running``). So the
  gate cancels mitmproxy's pending ``Proxyserver.setup_servers`` task before it
  has bound anything (binding waits on a resolver thread, which the loop serves
  only after the script's load has returned), and brings the listeners up
  itself in ``running``. Later changes go through the ``mode`` option as usual.
* Upstream failures (``install``, ``answer_instead``, ``cut``). mitmproxy
  answers an upstream failure with an HTML page built deep in its HTTP/1
  layer, and has no per-request upstream timeout; no hook can change either
  (mitmproxy#4854; mitmproxy#7999 proposes letting the error hook set
  flow.response). ``Http1Server.send`` is wrapped: when an upstream error is
  about to go to a client for which the gate left an answer, that answer goes
  out instead of the HTML page; anything else goes to mitmproxy's own code
  unchanged. ``cut`` closes a flow's upstream connection through the
  proxyserver addon's connection handler, as mitmproxy does itself, so a
  stalled upstream ends in the error hook like a reset one.
* mitmweb (``web_app``, ``web_has_password``, ``stylesheet``): the tornado
  application, the token or password that 11.1.2+ asks for, and the stylesheet
  that holds the flow list's column widths (``static/app.css`` up to 11.1,
  ``static/index-<hash>.css`` from 12.0).
* Options shown as in force (``explicit``, ``show_option``, ...): no public
  way changes an option's default or help once added, so the gate sets
  ``_Option._default`` and ``.help`` (11.0 to 12.3 alike): an option nobody set
  reads, and mitmweb shows, config.yaml's value, and mitmweb shows the file's
  value as "Default" under an override. ``_Option.value`` is
  ``optmanager.unset`` when nobody set it.
* Content views: 11.x ``contentviews.View`` (styled lines), 12.x the
  ``Contentview`` protocol (text, no way to remove one); mitmweb's @focus.
* A listener that failed: the proxyserver addon's logger says so.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from mitmproxy import contentviews, ctx, http, optmanager
from mitmproxy.connection import ConnectionState, Server
from mitmproxy.flow import Error
from mitmproxy.net.http import http1, status_codes
from mitmproxy.proxy import commands

try:
    from mitmproxy.proxy.layers.http import _http1
    from mitmproxy.proxy.layers.http._events import ResponseProtocolError
except ImportError:  # pragma: no cover - a mitmproxy without these internals
    _http1 = ResponseProtocolError = None

log = logging.getLogger("authgate")

_SETUP = "Proxyserver.setup_servers"
_STYLESHEETS = ("app.css", "index-*.css")  # 11.x, 12.x

_answers: dict[str, http.Response] = {}  # client connection id -> the answer to send instead
_original_send = None


# ------------------------------------------------------------ listener start-up

def _proxyserver():
    return ctx.master.addons.get("proxyserver")


def hold_start() -> bool:
    """Cancel mitmproxy's own listener start-up if it is still pending.
    True when the gate must bring the listeners up itself (`start_listeners`)."""
    ps = _proxyserver()
    if ps is None or ps.is_running:
        return False
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no running loop (taddons tests): nothing to take over
        return False
    held = False
    for task in tasks:
        if not task.done() and getattr(task.get_coro(), "__qualname__", "") == _SETUP:
            task.cancel()
            held = True
    return held


async def start_listeners() -> bool:
    """From `running`: bring up the listeners of ``options.mode``. False when one
    failed to bind (mitmproxy has logged why; as a start-up error it makes
    mitmdump exit 1, as it would have without the gate)."""
    ps = _proxyserver()
    # The cancelled start-up may have registered a server it never started;
    # drop it, or the next update would try to stop it.
    instances = getattr(ps.servers, "_instances", None)
    if isinstance(instances, dict):
        for mode, instance in list(instances.items()):
            if not instance.is_running:
                del instances[mode]
    return await ps.setup_servers()


# ------------------------------------------------------------ upstream failures

def install() -> bool:
    """Wrap Http1Server.send once; False when this mitmproxy has no such thing."""
    global _original_send
    if _original_send is not None:
        return True
    server = getattr(_http1, "Http1Server", None)
    if server is None or ResponseProtocolError is None:
        log.warning("auth gate: this mitmproxy has no Http1Server; upstream failures get mitmproxy's HTML page")
        return False
    _original_send = server.send

    def send(self, event):
        if (isinstance(event, ResponseProtocolError) and not self.response
                and error_page_status(event.code) is not None
                and self.conn.state & ConnectionState.CAN_WRITE
                and (answer := _answers.pop(self.conn.id, None)) is not None):
            yield commands.SendData(self.conn, http1.assemble_response(answer))
            yield commands.CloseConnection(self.conn)
            return
        yield from _original_send(self, event)

    server.send = send
    return True


def error_page_status(code) -> int | None:
    """The status of the error page mitmproxy would send for a ResponseProtocolError's
    code, or None for none: an int up to 11.1 (NO_RESPONSE for none), an ErrorCode
    enum from 12.0 (``http_status_code()``)."""
    if hasattr(code, "http_status_code"):
        return code.http_status_code()
    return None if code == status_codes.NO_RESPONSE else code


def uninstall() -> None:
    global _original_send
    if _original_send is not None:
        _http1.Http1Server.send = _original_send
        _original_send = None
    _answers.clear()


def answer_instead(flow: http.HTTPFlow, answer: http.Response) -> bool:
    """From the error hook: send `answer` instead of mitmproxy's error page, and
    make it the flow's response (what mitmweb shows is what the client got).

    False, and nothing changes, when it cannot go out: the client is gone, the
    flow was killed, it is a replay (mitmproxy is its client), the client
    speaks HTTP/2 (left to mitmproxy), or there is no wrapper.
    """
    if (_original_send is None or flow.is_replay == "request"
            or not flow.request.http_version.startswith("HTTP/1")
            or not flow.client_conn.state & ConnectionState.CAN_WRITE
            or (flow.error and flow.error.msg == Error.KILLED_MESSAGE)):
        return False
    answer.headers["connection"] = "close"  # mitmproxy closes the connection after an upstream error
    flow.response = _answers[flow.client_conn.id] = answer
    return True


def forget(client_id: str) -> None:
    _answers.pop(client_id, None)


def cut(flow: http.HTTPFlow) -> bool:
    """Close the flow's upstream connection (connecting or connected): the flow
    then ends in the error hook. False when there is nothing to close."""
    handler = getattr(_proxyserver(), "connections", {}).get(flow.client_conn.id)
    transports = getattr(handler, "transports", {})
    if flow.server_conn in transports:
        conn = flow.server_conn
    else:
        # Still connecting: the flow gets its server connection only once that
        # is open. An HTTP/1 client has one request, so one such connection.
        conn = next((c for c in transports if isinstance(c, Server) and c.address == flow.server_conn.address), None)
        if conn is None:
            return False
    handler.close_connection(conn)
    return True


# ------------------------------------------------------------ mitmweb

def web_app():
    """mitmweb's tornado application; None under mitmdump."""
    return getattr(ctx.master, "app", None)


def web_has_password() -> bool:
    """mitmweb 11.1.2+ asks for a token or web_password; 11.0.x has neither."""
    return "web_password" in ctx.options


def stylesheet(static: Path) -> Path | None:
    """The mitmweb stylesheet that holds the flow list's column widths, if any."""
    for pattern in _STYLESHEETS:
        for path in sorted(static.glob(pattern)):
            if b".col-comment" in path.read_bytes():
                return path
    return None


# ------------------------------------------------------------ options shown as in force

def _option(options, name: str):
    opts = getattr(options, "_options", None)
    return opts.get(name) if isinstance(opts, dict) else None


def explicit(options, name: str):
    """The value someone set for an option (--set, the Options editor, an addon);
    None when it follows its default (or was set to None)."""
    opt = _option(options, name)
    value = getattr(options, name, None) if opt is None else getattr(opt, "value", optmanager.unset)
    return None if value is optmanager.unset else value


def show_option(options, name: str, default, help: str | None) -> bool:
    """Give the option this default (what it reads and shows while nobody sets
    it) and help; True when either changed (False too on a mitmproxy without them)."""
    opt = _option(options, name)
    if opt is None or not hasattr(opt, "_default"):
        return False
    changed = (opt._default, opt.help) != (default, help)
    opt._default, opt.help = default, help
    return changed


def follow_default(options, name: str) -> None:
    """Forget the value set for an option: it reads (and shows) its default again."""
    if (opt := _option(options, name)) is not None:
        opt.reset()


def announce(options, names) -> None:
    """Tell whoever shows options (mitmweb, the console, every configure hook) that these changed."""
    options.changed.send(updated=set(names))


# ------------------------------------------------------------ content views

def add_contentview(name: str, render, priority):
    """Register a content view. render(data, flow, message) -> (description,
    [(style, text) per line]); priority(data, flow, message) -> float."""
    if hasattr(contentviews, "registry"):  # 12.x: the Contentview protocol, text out
        class View(contentviews.Contentview):
            syntax_highlight = "none"

            @property
            def name(self) -> str:
                return name

            def prettify(self, data, metadata) -> str:
                return "\n".join(text for _, text in render(data, metadata.flow, metadata.http_message)[1])

            def render_priority(self, data, metadata) -> float:
                return priority(data, metadata.flow, metadata.http_message)
    else:  # 11.x: View, styled lines out; a second one of a name (a script reload) replaces the first
        class View(contentviews.View):
            def __call__(self, data, *, flow=None, http_message=None, **unknown):
                description, lines = render(data, flow, http_message)
                return description, iter([[line] for line in lines])

            def render_priority(self, data, *, flow=None, http_message=None, **unknown) -> float:
                return priority(data, flow, http_message)

        View.name = name
        for old in [v for v in contentviews.views if v.name == name]:
            contentviews.remove(old)
    view = View()
    contentviews.add(view)
    return view


def remove_contentview(view) -> None:
    if hasattr(contentviews, "registry"):  # 12.x has no public way to remove one
        getattr(contentviews.registry, "_by_name", {}).pop(view.name.lower(), None)
    elif view in contentviews.views:
        contentviews.remove(view)


def focus(flow) -> None:
    """In mitmweb, make `flow` the one @focus names (mitmweb's focus does not follow the flow opened)."""
    view = ctx.master.addons.get("view") if web_app() else None
    if view is not None and flow in view and view.focus.flow is not flow:
        view.focus.flow = flow


# ------------------------------------------------------------ listener errors

class _ListenErrors(logging.Handler):
    def __init__(self, callback) -> None:
        super().__init__(logging.ERROR)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        self.callback(record.getMessage())


def watch_listen_errors(callback) -> logging.Handler:
    """callback(message) for each error mitmproxy logs about its listeners (a busy port)."""
    handler = _ListenErrors(callback)
    logging.getLogger("mitmproxy.addons.proxyserver").addHandler(handler)
    return handler


def unwatch_listen_errors(handler: logging.Handler) -> None:
    logging.getLogger("mitmproxy.addons.proxyserver").removeHandler(handler)
