"""Shadow mode (auth_enforce: false): the gate forwards everything as sent, and
when the real proxy's answer arrives (or fails to), says whether it is what the
auth layer would give: in the flow comment, the marker and the log, and in
metadata for the x-auth-gate header (Replies).
"""

from __future__ import annotations

import logging

from mitmproxy import http

from . import explain, responses
from .state import GateAddon

log = logging.getLogger("authgate")


class Shadow(GateAddon):
    name = "authgate.shadow"

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._judge(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._judge(flow)

    def _judge(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get("auth")
        if not meta or not meta.get("shadow") or "shadow_verdict" in meta:
            return
        status = flow.response.status_code if flow.response else None
        error = flow.error.msg if flow.error else None
        flow.comment, meta["shadow_verdict"] = explain.shadow_verdict(
            meta["predicted"], meta["outcome"] == "allow", status, error, self.state.lang)
        surprising = meta["shadow_verdict"] in explain.SHADOW_SURPRISES
        flow.marked = (responses.SURPRISE_MARKER if surprising
                       else (responses.DENIED_MARKER if status in (401, 403) else ""))
        if surprising:
            log.warning(f"{flow.comment} — {flow.request.method} {responses.loggable(flow.request)}")
