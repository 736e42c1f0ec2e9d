"""Shadow mode (auth_enforce: false): the gate forwards everything as sent, and
when the real proxy's answer arrives (or fails to), says whether it is what the
auth layer would give (verdict.py): in the flow comment, the marker and the log,
and in metadata for the x-auth-gate header (Replies). Profile v4 predicts the
exact answer (401, 403 with its message, 500); a 403 or 503 is judged once its
body is in, since the body tells who answered.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from authgate.addons import responses
from authgate.addons.state import GateAddon
from authgate.config.settings import Settings
from authgate.words import verdict

log = logging.getLogger("authgate")


class Shadow(GateAddon):
    name = "authgate.shadow"

    follows = ("response",)

    def needed(self, s: Settings) -> bool:
        return not s.enforce  # the v4 403/503 judged with its body

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get("auth")
        if meta and meta.get("shadow") and not verdict.needs_body(meta, flow.response.status_code):
            self._judge(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._judge(flow)  # a 403 or 503 under profile v4, its body in (a judged flow is left as it is)

    def error(self, flow: http.HTTPFlow) -> None:
        self._judge(flow)

    def _judge(self, flow: http.HTTPFlow) -> None:
        meta = flow.metadata.get("auth")
        if not meta or not meta.get("shadow") or "shadow_verdict" in meta:
            return
        status = flow.response.status_code if flow.response else None
        error = flow.error.msg if flow.error else None
        body = _body(flow.response) if status in verdict.BODY_STATUSES else None
        flow.comment, code = verdict.judge(meta, status, body, error, self.state.lang)
        meta["shadow_verdict"] = code
        surprising = code in verdict.SURPRISES
        refused = status in (401, 403) or (code == "as_predicted" and status == 500)
        flow.marked = (responses.SURPRISE_MARKER if surprising
                       else (responses.DENIED_MARKER if refused else ""))
        # Every verdict reaches the log, as passes and 401s do: the surprises as warnings.
        line = f"{flow.comment} — {flow.request.method} {responses.loggable(flow.request)}"
        (log.warning if surprising else log.info)(line)


def _body(response: http.Response) -> bytes | None:
    try:
        return response.get_content(strict=False)
    except ValueError:
        return None
