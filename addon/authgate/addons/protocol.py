"""One protocol on the gate's port, as the original's: plain HTTP/1.x.

The original serves port 8045 with hyper's HTTP/1 server on a plain TCP
listener (app45 proxy/server.rs:849-874; app33 server.rs:231-233): no TLS, no
HTTP/2. mitmproxy's reverse mode would take both (TLS with its own CA, HTTP/2
by ALPN). Here, at the connection's first bytes (the next_layer hook), before
any TLS or HTTP layer runs, what hyper refuses is refused as hyper does
(rules/wire.py, connection_start):

* a TLS ClientHello, or any first byte that cannot start a method: hyper's
  400 (explained with auth_explain on), then the connection closes;
* the HTTP/2 prior-knowledge preface: the connection closes without a byte;

each with one log line. An h2c upgrade (`Upgrade: h2c` on HTTP/1.1) is served
as plain HTTP/1.1 with the upgrade ignored, as hyper serves it (mitmproxy's
disable_h2c addon takes the upgrade headers out). What each request head may
hold is checked by Limits' HTTP/1 guards; the upstream's 1xx and 101 by
mitmproxy_compat's wrapper on the upstream side.
"""

from __future__ import annotations

import logging

from authgate import mitmproxy_compat
from authgate.addons import responses
from authgate.addons.state import GateAddon
from authgate.rules import wire

log = logging.getLogger("authgate")

_WHAT = {
    "tls": "a TLS ClientHello",
    "not_http1": "bytes that cannot start an HTTP/1 request",
    "h2_preface": "the HTTP/2 preface (prior knowledge)",
    "bad_version": "an incomplete HTTP/2 preface",
}


class Protocol(GateAddon):
    name = "authgate.protocol"

    def next_layer(self, nextlayer) -> None:
        data = mitmproxy_compat.first_bytes(nextlayer)
        if not data or (kind := wire.connection_start(data)) is None:
            return
        answer = responses.refusal(kind, self.state.max_body or 0, self.state.explain)
        mitmproxy_compat.refuse_connection(nextlayer, answer)
        peer = nextlayer.context.client.peername
        where = f"{peer[0]}:{peer[1]}" if peer else "a client"
        said = f"answered {answer.status_code} and closed" if answer is not None else "closed without an answer"
        log.info(f"{where}: refused {_WHAT[kind]}: this port speaks plain HTTP/1.1 only, as the original's "
                 f"(hyper's HTTP/1 server); {said}")

