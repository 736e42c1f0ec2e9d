"""What goes back to the client: every response names the decision in an
`x-auth-gate` header (passes, local answers and denials alike) and carries the
CORS header (the upstream's answers then stream on as they arrive: Forward);
and when the upstream fails before answering, the client gets the gate's JSON
502/504 in its SDK's error shape instead of mitmproxy's HTML page
(mitmproxy_compat's wrapper, which Limits installs, sends it).
"""

from __future__ import annotations

from mitmproxy import connection, http

from authgate import mitmproxy_compat
from authgate.addons import responses
from authgate.addons.state import GateAddon
from authgate.config.settings import Settings
from authgate.words import error_bodies


class Replies(GateAddon):
    name = "authgate.replies"

    follows = ("response",)

    def needed(self, s: Settings) -> bool:
        return not s.enforce  # shadow mode's late verdicts only

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        headers = flow.response.headers
        # One pass over the raw fields: every Headers lookup or assignment is a
        # scan of its own, on every response.
        cors = ours = False
        for name, _ in headers.fields:
            name = name.lower()
            if name == b"access-control-allow-origin":
                cors = True
            elif name == b"x-auth-gate":
                ours = True
        added = () if cors else ((b"access-control-allow-origin", b"*"),)
        if self.state.explain and (meta := flow.metadata.get("auth")):
            # The decision, for curl -i and scripts: which header won, and why
            # (in shadow mode, also whether the real proxy answered as predicted).
            value = error_bodies.header_value(meta)
            if ours:  # the upstream sent one (a gate behind a gate): ours replaces it
                headers["x-auth-gate"] = value
            else:
                added += ((b"x-auth-gate", value.encode()),)
        if added:
            headers.fields += added

    def response(self, flow: http.HTTPFlow) -> None:
        # Shadow mode judges a v4 403 or 503 once its body is in: the header follows.
        meta = flow.metadata.get("auth")
        if meta and meta.get("shadow") and self.state.explain and not flow.response.stream:
            flow.response.headers["x-auth-gate"] = error_bodies.header_value(meta)

    def error(self, flow: http.HTTPFlow) -> None:
        """The upstream failed before the client got anything (the gate's own
        answers never reach it, a stream under way is left as it is, and so is
        what a guard answered or cut: Limits)."""
        meta = flow.metadata.get("auth")
        if (not meta or "upstream" not in meta or (flow.response and flow.response.stream)
                or flow.error.msg.startswith((mitmproxy_compat.REFUSED, mitmproxy_compat.CUT))):
            return
        reply, status, code = responses.upstream_failure(
            meta, flow.request.path, flow.error.msg, connected=flow.server_conn.timestamp_tcp_setup is not None)
        if self.state.explain:
            reply.headers["x-auth-gate"] = error_bodies.header_value(meta)
        if flow.request.method == "HEAD":
            reply.content = b""
        if mitmproxy_compat.answer_instead(flow, reply):
            flow.comment += f" · {status} {code.replace('_', ' ')}"

    def client_disconnected(self, client: connection.Client) -> None:
        mitmproxy_compat.forget(client.id)
