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
  unchanged (also after a ``100 Continue``, which mitmproxy counts as an answer
  sent). ``cut`` closes a flow's upstream connection through the
  proxyserver addon's connection handler, as mitmproxy does itself, so a
  stalled upstream ends in the error hook like a reset one.
* Answering at the request headers (``answer_now``): mitmproxy sends a
  response set in ``requestheaders`` only after the whole body (and a
  ``100 Continue`` first), so the answer is written to the client's socket,
  which is closed, and the flow killed: no body read, nothing of mitmproxy's.
* The client's connection (``close_client``, ``close_leaked``): closed as
  mitmproxy's inactivity timeout does (its handler task cancelled), for the
  request-head deadline; a socket 11.1+ on Python 3.12+ leaves open after
  closing a client still sending (until a GC pass) is closed when it goes.
* HTTP/1 guards (``install``, ``configure_guards``): ``Http1Connection.read_body``
  (chunked trailers: a 400 to a client, a 502 for an upstream's, instead of
  "mitmproxy has crashed!"; a chunked request body over the limit: 413),
  ``Http1Server.read_headers`` (a head past hyper's buffer: 431) and
  ``Http1Connection.wait`` (over 1 MiB sent ahead of a request in flight: closed).
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
from typing import Callable

from mitmproxy import contentviews, ctx, http, optmanager
from mitmproxy.connection import ConnectionState, Server
from mitmproxy.flow import Error
from mitmproxy.net.http import http1, status_codes
from mitmproxy.proxy import commands, events

try:
    from mitmproxy.proxy.layers.http import _http1
    from mitmproxy.proxy.layers.http._base import ReceiveHttp
    from mitmproxy.proxy.layers.http._events import RequestData, RequestProtocolError, ResponseProtocolError
except ImportError:  # pragma: no cover - a mitmproxy without these internals
    _http1 = ReceiveHttp = RequestData = RequestProtocolError = ResponseProtocolError = None

log = logging.getLogger("authgate")

_SETUP = "Proxyserver.setup_servers"
_STYLESHEETS = ("app.css", "index-*.css")  # 11.x, 12.x

HEAD_LIMIT = 8192 + 4096 * 100  # bytes of a request head: hyper's default buffer (the original's parser), then 431
PIPELINED_LIMIT = 1024 * 1024  # bytes a client may send ahead while its request is in flight
REFUSED = "refused by the auth gate: "  # + the kind: the error a guard's refusal leaves on the flow

_answers: dict[str, http.Response] = {}  # client connection id -> the answer to send instead
_originals: dict[tuple[str, str], Callable] = {}  # (class in _http1, method) -> mitmproxy's own
# What the HTTP/1 guards use (configure_guards): the request body limit (None: none) and
# refuse(kind) -> the response for "trailers", "body_too_large" or "head_too_large".
_guards: dict = {"body_limit": None, "refuse": None}


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

def _send(self, event):
    """Http1Server.send: the gate's answer instead of mitmproxy's error page."""
    if (isinstance(event, ResponseProtocolError)
            and (not self.response or self.response.status_code == 100)  # a 100 Continue is no answer yet
            and error_page_status(event.code) is not None
            and self.conn.state & ConnectionState.CAN_WRITE
            and (answer := _answers.pop(self.conn.id, None)) is not None):
        yield commands.SendData(self.conn, http1.assemble_response(answer))
        yield commands.CloseConnection(self.conn)
        return
    yield from _originals["Http1Server", "send"](self, event)


def error_page_status(code) -> int | None:
    """The status of the error page mitmproxy would send for a ResponseProtocolError's
    code, or None for none: an int up to 11.1 (NO_RESPONSE for none), an ErrorCode
    enum from 12.0 (``http_status_code()``)."""
    if hasattr(code, "http_status_code"):
        return code.http_status_code()
    return None if code == status_codes.NO_RESPONSE else code


def install() -> bool:
    """Put the wrappers in place (once): Http1Server.send and the HTTP/1 guards. False,
    with a warning naming what is missing, when this mitmproxy lacks one; the gate
    then goes without it (mitmproxy's HTML pages, its crash on trailers, no caps)."""
    ok = True
    for owner_name, name, wrapper in _WRAPPERS:
        if (owner_name, name) in _originals:
            continue
        owner = getattr(_http1, owner_name, None)
        original = vars(owner).get(name) if owner is not None and ReceiveHttp is not None else None
        if not callable(original):
            log.warning(f"auth gate: this mitmproxy has no {owner_name}.{name}: {_WITHOUT[name]}")
            ok = False
            continue
        _originals[owner_name, name] = original
        setattr(owner, name, wrapper)
    return ok


def uninstall() -> None:
    for (owner_name, name), original in _originals.items():
        setattr(getattr(_http1, owner_name), name, original)
    _originals.clear()
    _answers.clear()


def answer_instead(flow: http.HTTPFlow, answer: http.Response) -> bool:
    """From the error hook: send `answer` instead of mitmproxy's error page, and
    make it the flow's response (what mitmweb shows is what the client got).

    False, and nothing changes, when it cannot go out: the client is gone, the
    flow was killed, it is a replay (mitmproxy is its client), the client
    speaks HTTP/2 (left to mitmproxy), or there is no wrapper.
    """
    if (("Http1Server", "send") not in _originals or flow.is_replay == "request"
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


# ------------------------------------------------------------ the client's connection

def _client_io(client):
    """mitmproxy's ConnectionIO (handler task, reader, writer) of a client; None when gone."""
    handler = getattr(_proxyserver(), "connections", {}).get(client.id)
    return getattr(handler, "transports", {}).get(client)


def _writer(client) -> asyncio.StreamWriter | None:
    writer = getattr(_client_io(client), "writer", None)
    return writer if isinstance(writer, asyncio.StreamWriter) and not writer.is_closing() else None


def answer_now(flow: http.HTTPFlow, response: http.Response) -> bool:
    """From requestheaders: write `response` at once and close the connection, the
    request body never read; the flow is killed, so mitmproxy sends nothing of its
    own (nor a 100 Continue). False, and nothing done, without a plain HTTP/1
    connection to write on: then flow.response it is (sent after the body)."""
    writer = _writer(flow.client_conn)
    if (writer is None or flow.client_conn.tls or not flow.killable
            or not flow.client_conn.state & ConnectionState.CAN_WRITE  # (closed by a guard's answer)
            or not flow.request.http_version.startswith("HTTP/1")):
        return False
    response.headers["connection"] = "close"
    writer.write(http1.assemble_response(response))
    writer.close()  # what is written goes out first
    flow.response = response
    flow.kill()
    return True


def close_client(client) -> bool | None:
    """Close a client's connection as mitmproxy's inactivity timeout does (its
    handler task is cancelled). None, and nothing done, while a response is still
    being written to it (a slow reader); False when it is gone already."""
    io = _client_io(client)
    handler = getattr(io, "handler", None)
    if handler is None or handler.done():
        return False
    writer = io.writer
    if isinstance(writer, asyncio.StreamWriter) and writer.transport.get_write_buffer_size():
        return None
    handler.cancel("request head deadline")
    return True


def close_leaked(client) -> None:
    """From client_disconnected: close the client's socket if mitmproxy left it open."""
    if (writer := _writer(client)) is not None:
        writer.close()


# ------------------------------------------------------------ HTTP/1 guards

def configure_guards(body_limit: int | None, refuse: Callable[[str], http.Response]) -> None:
    _guards.update(body_limit=body_limit, refuse=refuse)


def _refuse(self, kind: str, flow_error: bool):
    """Answer the client on this Http1Server connection and close it; with
    flow_error, the flow under way ends in the error hook, naming `kind`."""
    if self.conn.state & ConnectionState.CAN_WRITE and _guards["refuse"] is not None:
        yield commands.SendData(self.conn, http1.assemble_response(_guards["refuse"](kind)))
    yield commands.CloseConnection(self.conn)
    if flow_error:
        yield ReceiveHttp(RequestProtocolError(self.stream_id, REFUSED + kind,
                                               code=RequestProtocolError.code))
    self.state = self.done


def _read_body(self, event):
    """Http1Connection.read_body: trailers answered (never a crash); a chunked request body counted."""
    server = isinstance(self, _http1.Http1Server)
    limit = _guards["body_limit"] if server else None
    try:
        if limit is None or "chunked" not in self.request.headers.get("transfer-encoding", "").lower():
            yield from _originals["Http1Connection", "read_body"](self, event)
            return
        seen = self.__dict__.get("_authgate_body")
        total = seen[1] if seen and seen[0] is self.request else 0
        for command in _originals["Http1Connection", "read_body"](self, event):
            if isinstance(command, ReceiveHttp) and isinstance(command.event, RequestData):
                total += len(command.event.data)
                if total > limit:
                    yield from _refuse(self, "body_too_large", flow_error=True)
                    return
            yield command
        self._authgate_body = (self.request, total)
    except NotImplementedError:  # trailers: mitmproxy can neither read nor pass them on
        if server:
            yield from _refuse(self, "trailers", flow_error=True)
        else:  # from the upstream: its client gets a 502 (the gate's, see Replies)
            yield commands.CloseConnection(self.conn)
            yield ReceiveHttp(self.ReceiveProtocolError(self.stream_id, "HTTP trailers in the upstream's response",
                                                        code=self.ReceiveProtocolError.code))
            self.state = self.done


def _read_headers(self, event):
    """Http1Server.read_headers: a request head that grows past HEAD_LIMIT gets 431."""
    yield from _originals["Http1Server", "read_headers"](self, event)
    if self.state == self.read_headers and len(self.buf) > HEAD_LIMIT:
        yield from _refuse(self, "head_too_large", flow_error=False)


def _wait(self, event):
    """Http1Connection.wait: a client sending more than PIPELINED_LIMIT ahead is closed."""
    if (isinstance(event, events.DataReceived) and len(self.buf) > PIPELINED_LIMIT
            and isinstance(self, _http1.Http1Server)):
        yield commands.CloseConnection(self.conn)  # a response may be on its way: no second answer
        self.state = self.done
        return
    yield from _originals["Http1Connection", "wait"](self, event)


_WRAPPERS = (("Http1Server", "send", _send), ("Http1Connection", "read_body", _read_body),
             ("Http1Server", "read_headers", _read_headers), ("Http1Connection", "wait", _wait))
_WITHOUT = {"send": "upstream failures get mitmproxy's HTML page",
            "read_body": "chunked trailers crash mitmproxy's HTTP/1 layer, chunked bodies have no limit",
            "read_headers": "a request head is buffered without a limit",
            "wait": "what a client sends ahead is buffered without a limit"}


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
