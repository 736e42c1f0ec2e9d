"""What a connection to the gate's reverse-mode listener speaks, decided in
the ``next_layer`` hook (11.0 to 12.3 alike).

A reverse-mode listener of mitmproxy takes TLS (with mitmproxy's own CA), then
HTTP/2 by ALPN, besides plain HTTP/1: mitmproxy's NextLayer addon builds that
stack from the client's first bytes (``_setup_reverse_proxy``). The gate's
addon runs after it, sees the same bytes (``first_bytes``) and may put a layer
of its own in place instead (``refuse_connection``): one answer, or none, and
the connection closed. No TLS handshake, no HTTP/2 frame, no request.
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.net.http import http1
from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers import modes


def first_bytes(nextlayer) -> bytes | None:
    """The client's first bytes when this hook decides what a connection to a reverse-mode
    listener speaks (its first layer under the mode); None for any other decision."""
    context = nextlayer.context
    stack = context.layers
    # mitmproxy's NextLayer addon has already built its stack: those layers follow the mode's.
    parents = stack[:stack.index(nextlayer.layer)] if nextlayer.layer in stack else stack
    if len(parents) != 1 or not isinstance(parents[0], modes.ReverseProxy):
        return None
    return nextlayer.data_client()


class _Refusal(layer.Layer):
    """Instead of TLS or HTTP: one answer (or none) to the client, and the connection closed."""

    def __init__(self, context, answer: bytes | None) -> None:
        super().__init__(context)
        self.answer = answer
        self.closed = False

    def _handle_event(self, event):
        if isinstance(event, events.DataReceived) and not self.closed:
            self.closed = True
            if self.answer:
                yield commands.SendData(self.context.client, self.answer)
            yield commands.CloseConnection(self.context.client)
        yield from ()

    def __repr__(self) -> str:
        return "AuthGateRefusal"


def refuse_connection(nextlayer, answer: http.Response | None) -> None:
    """Answer the connection's first bytes with `answer` (None: nothing) and close it."""
    stack = nextlayer.context.layers
    if nextlayer.layer in stack:  # drop what mitmproxy's NextLayer addon put there (a TLS layer, say)
        del stack[stack.index(nextlayer.layer):]
    nextlayer.context.client.tls = False  # (a ClientTLSLayer marks it when built; no handshake happens)
    nextlayer.layer = _Refusal(nextlayer.context, http1.assemble_response(answer) if answer is not None else None)
