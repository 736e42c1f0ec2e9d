"""The client connections: how long a client may take to send a request head,
and no socket left open behind a closed connection.

mitmproxy bounds nothing but inactivity (600 s, reset by every byte), so a
client sending its headers a byte at a time holds a connection for ever, and a
thousand such clients hold a thousand (slowloris). The gate gives each
connection auth_head_timeout seconds (30 by default, as hyper's
header_read_timeout) to deliver a complete request head: from the connection's
start, and again after each response (a kept-alive connection's next request,
or its idle time). A connection past it is closed as mitmproxy's own inactivity
timeout closes one (mitmproxy_compat.close_client); a connection still
receiving a response is left alone. The deadlines are checked together, about
once a second, so a request costs two dictionary operations.
"""

from __future__ import annotations

import asyncio
import logging
import time

from mitmproxy import connection, ctx, exceptions, http

from authgate import mitmproxy_compat
from authgate.addons.state import GateAddon, GateState

log = logging.getLogger("authgate")

HEAD_TIMEOUT = 30  # seconds, auth_head_timeout's default
_HTTP1 = (b"HTTP/1.1", b"HTTP/1.0")


class Connections(GateAddon):
    name = "authgate.connections"

    def __init__(self, state: GateState) -> None:
        super().__init__(state)
        self.timeout = float(HEAD_TIMEOUT)
        self._deadlines: dict[str, tuple[float, connection.Client]] = {}  # client id -> (deadline, client)
        self._sweeper: asyncio.Task | None = None
        self.closed = 0  # connections closed for a late request head

    def load(self, loader) -> None:
        loader.add_option("auth_head_timeout", int, HEAD_TIMEOUT,
                          "Seconds a client may take to send a complete request head (from the connection's "
                          "start, or the previous response); then its connection closes. 0: no limit.")

    def configure(self, updated: set[str]) -> None:
        if "auth_head_timeout" in updated:
            value = ctx.options.auth_head_timeout
            if not 0 <= value < 600:
                raise exceptions.OptionsError(f"option auth_head_timeout: {value} is not a number of seconds "
                                              f"from 0 (no limit) to 599. Fix: --set auth_head_timeout=30")
            self.timeout = float(value)
            if not value:
                self._deadlines.clear()

    async def running(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def done(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()

    def client_connected(self, client: connection.Client) -> None:
        if self.timeout:
            self._deadlines[client.id] = (time.monotonic() + self.timeout, client)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._deadlines.pop(flow.client_conn.id, None)

    def response(self, flow: http.HTTPFlow) -> None:
        # The next request on a kept-alive HTTP/1 connection (not one upgraded to a WebSocket
        # or a tunnel; an HTTP/2 connection's streams have no "next").
        response = flow.response  # (raw attributes: mitmproxy's properties decode on every read)
        if (self.timeout and response is not None and response.data.status_code != 101
                and flow.request.data.http_version in _HTTP1 and flow.is_replay != "request"):
            self._deadlines[flow.client_conn.id] = (time.monotonic() + self.timeout, flow.client_conn)

    def client_disconnected(self, client: connection.Client) -> None:
        self._deadlines.pop(client.id, None)
        mitmproxy_compat.close_leaked(client)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.timeout / 4 or 1.0))
            try:
                self._expire(time.monotonic())
            except Exception:  # never the end of the deadlines
                log.exception("auth gate: checking request-head deadlines failed")

    def _expire(self, now: float) -> None:
        late = [(cid, client) for cid, (deadline, client) in self._deadlines.items() if deadline <= now]
        for cid, client in late:
            closed = mitmproxy_compat.close_client(client)
            if closed is None:  # still receiving a response: look again later
                self._deadlines[cid] = (now + 1.0, client)
                continue
            del self._deadlines[cid]
            if closed:
                self.closed += 1
                log.debug(f"{client.peername}: no complete request head within {self.timeout:g} s "
                          f"(auth_head_timeout); connection closed")
