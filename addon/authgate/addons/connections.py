"""The client connections: what a connection may speak, how long a client may
take to send a request head, and no socket left open behind a closed connection.

One protocol, as the original's: plain HTTP/1.x. The original serves port 8045
with hyper's HTTP/1 server on a plain TCP listener (app45 proxy/server.rs:849-874;
app33 server.rs:231-233): no TLS, no HTTP/2. mitmproxy's reverse mode would take
both (TLS with its own CA, HTTP/2 by ALPN). So at a connection's first bytes (the
next_layer hook), before any TLS or HTTP layer runs, what hyper refuses is
refused as hyper does (rules/wire.py, connection_start): a TLS ClientHello, or
any first byte that cannot start a method, gets hyper's 400 (explained with
auth_explain on) and the connection closes; the HTTP/2 prior-knowledge preface
closes it without a byte; one log line says which. An h2c upgrade (`Upgrade: h2c`
on HTTP/1.1) is served as plain HTTP/1.1 with the upgrade ignored, as hyper
serves it (mitmproxy's disable_h2c addon takes the upgrade headers out). What
each request head may hold is Limits' business (the HTTP/1 guards). This is a
hook here rather than an addon of its own: mitmproxy visits every addon object
for every event of every request.

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
from authgate.addons import responses
from authgate.addons.state import GateAddon, GateState
from authgate.rules import wire

log = logging.getLogger("authgate")

HEAD_TIMEOUT = 30  # seconds, auth_head_timeout's default
_HTTP1 = (b"HTTP/1.1", b"HTTP/1.0")
_REFUSED = {  # what a connection began with, by wire.connection_start's kind
    "tls": "a TLS ClientHello",
    "not_http1": "bytes that cannot start an HTTP/1 request",
    "h2_preface": "the HTTP/2 preface (prior knowledge)",
    "bad_version": "an incomplete HTTP/2 preface",
}


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

    def next_layer(self, nextlayer) -> None:
        """A connection's first bytes: anything but HTTP/1 is refused, as hyper refuses it."""
        data = mitmproxy_compat.first_bytes(nextlayer)
        if not data or (kind := wire.connection_start(data)) is None:
            return
        answer = responses.refusal(kind, self.state.max_body or 0, self.state.explain)
        mitmproxy_compat.refuse_connection(nextlayer, answer)
        peer = nextlayer.context.client.peername
        said = f"answered {answer.status_code} and closed" if answer is not None else "closed without an answer"
        log.info(f"{f'{peer[0]}:{peer[1]}' if peer else 'a client'}: refused {_REFUSED[kind]}: this port speaks "
                 f"plain HTTP/1.1 only, as the original's (hyper's HTTP/1 server); {said}")

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
