"""The gate's own JSON answer when the upstream fails: 502 (refused, reset,
garbage) and 504 (no response headers within upstream.timeout).

mitmproxy (11.0 to 12.3) answers an upstream failure with an HTML page built
deep in its HTTP/1 layer, and has no per-request upstream timeout; no hook can change
either (mitmproxy#4854; mitmproxy#7999 proposes letting the error hook set
flow.response, which is what this module provides until then). Two narrow
touches of mitmproxy internals live here and nowhere else:

* ``Http1Server.send`` is wrapped: when an upstream error is about to be sent
  to a client for which the gate left an answer, that answer goes out instead
  of the HTML page. Anything else goes to mitmproxy's own code unchanged.
* ``cut`` closes a flow's upstream connection through the proxyserver addon's
  connection handler, as mitmproxy does itself, so a stalled upstream ends in
  the error hook like a reset one.

If a mitmproxy release moves either, ``install`` returns False and the gate
keeps working with mitmproxy's HTML answers (the tests notice at once).
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, http
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

_answers: dict[str, http.Response] = {}  # client connection id -> the answer to send instead
_original_send = None


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
    server = ctx.master.addons.get("proxyserver")
    handler = getattr(server, "connections", {}).get(flow.client_conn.id)
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
