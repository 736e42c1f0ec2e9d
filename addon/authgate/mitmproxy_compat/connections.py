"""The live connections, through the proxyserver addon's connection handlers
(``proxyserver.connections[client id]``, its ``transports`` and
``close_connection``: 11.0 to 12.3 alike).

* ``cut`` closes a flow's upstream connection as mitmproxy does itself, so a
  stalled upstream ends in the error hook like a reset one (mitmproxy has no
  per-request upstream timeout).
* ``answer_now``, at the request headers: mitmproxy sends a response set in
  ``requestheaders`` only after the whole body (and a ``100 Continue`` first),
  so the answer is written to the client's socket, which is closed, and the
  flow killed: no body read, nothing of mitmproxy's. Also when mitmproxy has
  already given the connection up for a malformed body that came with the
  head (mitmproxy 11.0 on Python 3.11 runs the hook after that).
* ``close_client``, ``close_leaked``: the client's connection closed as
  mitmproxy's inactivity timeout does (its handler task cancelled), for the
  request-head deadline; a socket 11.1+ on Python 3.12+ leaves open after
  closing a client still sending (until a GC pass) is closed when it goes.
"""

from __future__ import annotations

import asyncio

from mitmproxy import http
from mitmproxy.connection import Server
from mitmproxy.net.http import http1

from authgate.mitmproxy_compat import http1_guards
from authgate.mitmproxy_compat.listener import proxyserver


def cut(flow: http.HTTPFlow) -> bool:
    """Close the flow's upstream connection (connecting or connected): the flow
    then ends in the error hook. False when there is nothing to close."""
    handler = getattr(proxyserver(), "connections", {}).get(flow.client_conn.id)
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


def _client_io(client):
    """mitmproxy's ConnectionIO (handler task, reader, writer) of a client; None when gone."""
    handler = getattr(proxyserver(), "connections", {}).get(client.id)
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
    # Not mitmproxy's CAN_WRITE: it is gone already when mitmproxy closed the connection for
    # a malformed body in the head's segment, before this hook ran (mitmproxy 11 on Python 3.11
    # runs hooks as tasks of their own); the socket is still open and the client waits.
    if (writer is None or flow.client_conn.tls or not flow.killable
            or http1_guards.answered(flow.client_conn.id)  # (a guard answered, and closed it)
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
