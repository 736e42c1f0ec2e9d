"""Forwarding what the gate passes: to upstream.url (its path prefix, its own
credentials), without the client's credentials (the key headers,
Proxy-Authorization, X-Forwarded-Authorization, a `key=` query parameter: see
credentials.py), and no longer than upstream.timeout for the response headers
once the request body is in.

Both bodies stream, each chunk as it arrives (streams.py): the request body to
the upstream, the answer to the client, as the original (axum on hyper) passes
them; mitmproxy holds neither whole. So the request is rewritten at its
headers, before its first byte goes out. Each flow keeps a copy of the first
auth_keep_body bytes of each body for mitmweb. Held whole, as mitmproxy holds
any body: shadow mode's v4 403 and 503 (their verdict, which reads the body,
goes into a header), and a flow that mitmweb's intercept filter matches when
the request or the response headers arrive (a streamed body could no longer be
held there, nor edited).

The client's proxy key never reaches the upstream. What the client sent is put
back on the flow when the response (or an error) arrives, so mitmweb shows it
and a replay is decided again on the same headers. Shadow mode forwards as sent.
"""

from __future__ import annotations

from mitmproxy import ctx, flowfilter, http

from authgate import mitmproxy_compat
from authgate.addons import responses, streams
from authgate.addons.deadlines import Deadlines
from authgate.addons.state import GateAddon, GateState
from authgate.rules.credentials import STRIPPED_NAMES, strip_query_key
from authgate.words import verdict


class Forward(GateAddon):
    name = "authgate.forward"

    def __init__(self, state: GateState) -> None:
        super().__init__(state)
        self._stash: dict[str, tuple[tuple, bytes, bool]] = {}  # flow id -> client's (headers, path), host moved
        # flow id -> when to give up on the upstream's response headers (one loop timer for all)
        self._timers = Deadlines(self._give_up)
        self._shown: tuple = (None, None)  # the upstream setting last seen, (url, timeout) made from it
        self._held = None  # mitmproxy's intercept filter while intercepting: what it matches is not streamed

    def load(self, loader) -> None:
        mitmproxy_compat.quiet_stream_lines()  # mitmproxy's two lines per streamed flow: every flow's

    def configure(self, updated: set[str]) -> None:
        if {"intercept", "intercept_active"} & updated and hasattr(ctx.options, "intercept"):
            spec = ctx.options.intercept if ctx.options.intercept_active else None
            try:
                self._held = flowfilter.parse(spec) if spec else None
            except ValueError:  # mitmproxy's Intercept addon refuses it itself
                self._held = None

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # What the gatekeeper decided and did not answer itself goes upstream, its body as it comes.
        meta = flow.metadata.get("auth")
        if flow.response or flow.error or meta is None:
            return
        try:
            self._forward(flow, meta, strip=not meta.get("shadow"))
        except Exception:
            self._stash.pop(flow.id, None)
            responses.fail_closed(flow, early=True)
            return
        if self._held is None or not self._held(flow):
            streams.stream(flow.request, self.state.keep_body)

    def request(self, flow: http.HTTPFlow) -> None:
        # The body is in (and, streamed, out): upstream.timeout for the response headers from now.
        streams.put(flow, "request", self.state.lang)  # (after the response, if the upstream answered first)
        if flow.id in self._stash and not (flow.response or flow.error or flow.is_replay == "request"):
            self._arm(flow, flow.metadata["auth"]["upstream"][1])  # (a replay's connection is mitmproxy's own)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow)
        if flow.id in self._stash:  # the upstream's answer to a request the gate forwarded
            meta = flow.metadata["auth"]
            if (not (meta.get("shadow") and verdict.needs_body(meta, flow.response.status_code))
                    and (self._held is None or not self._held(flow))):
                streams.stream(flow.response, self.state.keep_body)

    def response(self, flow: http.HTTPFlow) -> None:
        streams.put(flow, "response", self.state.lang)
        self._restore(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._disarm(flow)
        meta = flow.metadata.get("auth")
        if meta and meta.get("timed_out"):  # mitmproxy saw only the connection closing
            flow.error.msg = (f"no answer from the upstream within {meta['upstream'][1]:g} s "
                              f"(upstream.timeout); the auth gate closed the connection")
        if flow.response is not None:  # what came of a stream cut short
            streams.put(flow, "response", self.state.lang, error=flow.error.msg)
        streams.put(flow, "request", self.state.lang, error=flow.error.msg)
        self._restore(flow)

    def done(self) -> None:
        mitmproxy_compat.quiet_stream_lines(False)
        self._timers.close()

    def _forward(self, flow: http.HTTPFlow, meta: dict, strip: bool) -> None:
        up = self.state.settings.upstream
        req = flow.request
        fields = req.headers.fields
        moved = (req.scheme, req.host, req.port) != (up.scheme, up.host, up.port)
        self._stash[flow.id] = (fields, req.data.path, moved)
        target = req.data.path
        if strip:
            kept = tuple([f for f in fields if f[0].lower() not in STRIPPED_NAMES])
            if len(kept) != len(fields):
                req.headers.fields = kept
            target = strip_query_key(target)
        if moved:  # in reverse mode it already points there, unless upstream.url changed live
            req.scheme, req.host, req.port = up.scheme, up.host, up.port
        if up.prefix:
            target = up.prefix.encode("utf-8", "surrogateescape") + target
        if target is not req.data.path:
            req.data.path = target
        for name, value in up.headers:  # the upstream's own credentials
            req.headers[name] = value
        if up is not self._shown[0]:  # (url, timeout) as flow.metadata shows them, once per setting
            self._shown = (up, (up.url, up.timeout))
        meta["upstream"] = self._shown[1]  # (the timer starts once the request body is in: request)

    def _restore(self, flow: http.HTTPFlow) -> None:
        """Back to what the client sent (upstream credentials out of the view and
        out of replays), keeping the Host of where it really went."""
        stash = self._stash.pop(flow.id, None)
        if stash is None:
            return
        fields, path, moved = stash
        req = flow.request
        host = req.host_header if moved else None
        req.headers.fields, req.data.path = fields, path
        if moved:
            req.host_header = host

    def _arm(self, flow: http.HTTPFlow, timeout: float) -> None:
        self._timers.set(flow.id, timeout, flow, timeout)

    def _disarm(self, flow: http.HTTPFlow) -> None:
        self._timers.drop(flow.id)

    def _give_up(self, flow: http.HTTPFlow, timeout: float) -> None:
        """No response headers within upstream.timeout: end the wait (error hook → 504)."""
        self._timers.drop(flow.id)
        if not flow.live or flow.response or flow.error:
            return
        if mitmproxy_compat.cut(flow):
            flow.metadata["auth"]["timed_out"] = True
        else:  # no upstream connection yet (held at a mitmweb intercept, say): wait another round
            self._arm(flow, timeout)
