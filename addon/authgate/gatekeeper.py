"""The decision on each request: decide (decision.py) under the snapshot in
force, say so on the flow (comment, marker, metadata), and answer what the gate
answers itself: the denial (401, v4's 403 and 500), the CORS preflight, the
health routes, 405, the refused absolute-form request; and log what the
original logs. What it answers itself shows the gate's own address and a
marker (⛔ denied, 🛡 answered), not the upstream's. A flow it leaves without a
response, its decision in flow.metadata["auth"], goes to the upstream
(Forward). The IP binding a v4 decision names waits in
flow.metadata["auth_bind"] for the response (Monitor). It fails closed: any
error here is a 500, never a forwarded request.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from . import answers, explain, responses
from .state import LEVELS, GateAddon

log = logging.getLogger("authgate")


class Gatekeeper(GateAddon):
    name = "authgate.gatekeeper"

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or self.state.settings is None:
            return
        try:
            self._request(flow)
        except Exception:
            responses.fail_closed(flow)

    def _request(self, flow: http.HTTPFlow) -> None:
        state = self.state
        state.reload_if_changed()
        s = state.settings
        req = flow.request
        if req.http_version.startswith("HTTP/1") and req.authority:
            # Absolute-form (GET http://elsewhere/ HTTP/1.1) would reach any host.
            responses.answer(flow, responses.absolute_form_refused(req, s.upstream.url))
            return
        d = state.decide(req)
        state.remember(flow.id, d)
        meta = flow.metadata["auth"] = explain.detail(d, state.lang)
        flow.comment = explain.comment(d, state.lang)
        state.count(d.allowed)
        if d.bind:  # v4: recorded once the response is out, whatever its status (Monitor)
            flow.metadata["auth_bind"] = d.bind
        if not s.enforce:
            # Shadow mode: the real proxy decides, and Shadow checks its answer
            # against this prediction; everything is forwarded as sent.
            meta["shadow"], meta["predicted"], meta["predicted_status"] = True, flow.comment, d.status
            flow.comment = explain.shadow_waiting(flow.comment, state.lang)
            return
        flow.marked = "" if d.allowed else responses.DENIED_MARKER
        if not d.allowed:
            responses.answer_here(flow, responses.denial(d, req, state.lang, state.explain))
            if line := answers.original_log(d):  # word for word, at the original's level
                log.log(LEVELS[line[0]], line[1])
            log.info(f"{flow.comment} — {req.method} {responses.loggable(req)}")
        elif d.route != "upstream":
            responses.answer_here(flow, responses.local_answer(d.route, req, s.profile, s.version))
            flow.marked = responses.GATE_MARKER

