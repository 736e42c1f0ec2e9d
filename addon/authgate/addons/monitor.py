"""What the original's monitor_middleware does after each response (monitor.rs
l.250-266, 355): record the client IP a user token came from, whatever the
response's status. Profile v4 only: a decision names the binding
(flow.metadata["auth_bind"], set by Gatekeeper); it counts for the token's IP
limit from the next request on. Kept in memory (GateState.record), never
written to the app's user_tokens.db.
"""

from __future__ import annotations

from mitmproxy import http

from authgate.addons.state import GateAddon
from authgate.config.settings import Settings


class Monitor(GateAddon):
    name = "authgate.monitor"

    follows = ("response", "error")

    def needed(self, s: Settings) -> bool:
        return s.profile == "v4"  # faq decisions name no binding

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)  # the original's handler answers an upstream failure too: recorded

    def _record(self, flow: http.HTTPFlow) -> None:
        bind = flow.metadata.pop("auth_bind", None)  # once, whichever of response and error comes first
        if bind is not None:
            self.state.record(bind)
