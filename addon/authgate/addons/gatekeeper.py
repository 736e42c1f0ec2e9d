"""The decision on each request, at its headers: decide (decision.py) under the
snapshot in force, say so on the flow (comment, marker, metadata), and answer
what the gate answers itself: the denial (401, v4's 403 and 500), the 400 for a
header value the original's parser refuses, the CORS preflight, the health
routes, 405, and the 413 for a body over the limit (auth_max_body_size, after
auth as in the original); and log what the original logs. Those answers go out
before any request body is read (responses.answer, early). What it answers
itself shows the gate's own address and a marker (⛔ denied, 🛡 answered), not
the upstream's. A flow it leaves without a response, its decision in
flow.metadata["auth"], goes to the upstream (Forward). The IP binding a v4
decision names waits in flow.metadata["auth_bind"] for the response (Monitor).
It fails closed: any error here is a 500, never a forwarded request.

An absolute-form request (GET http://host/path) is decided on its path and goes
on in origin-form, to upstream.url only, as the original routes by the URI's
path; mitmproxy itself refuses CONNECT and authority-form in reverse mode. A
`#fragment` in the target is cut before the decision and never forwarded, as
the original's http crate drops it before anything reads the path
(wire.cut_fragment).
"""

from __future__ import annotations

import logging

from mitmproxy import http
from mitmproxy.flow import Error

from authgate.addons import responses
from authgate.addons.state import LEVELS, GateAddon
from authgate.rules import wire
from authgate.words import answers, error_bodies, explain, memo, verdict

log = logging.getLogger("authgate")


class Gatekeeper(GateAddon):
    name = "authgate.gatekeeper"

    def requestheaders(self, flow: http.HTTPFlow):
        if flow.response or flow.error or self.state.settings is None:
            return None
        if self.state.files.stale():  # config.yaml changed: read it in a thread, this request waits
            return self._after_reload(flow)
        self._guarded(flow)
        return None

    async def _after_reload(self, flow: http.HTTPFlow) -> None:
        try:
            await self.state.files.refresh()
        except Exception:  # the last good snapshot stays in force; this request is decided under it
            log.exception("auth gate: reloading the config failed")
        if not flow.error:  # (killed meanwhile)
            self._guarded(flow)

    def _guarded(self, flow: http.HTTPFlow) -> None:
        try:
            self._request(flow)
        except Exception:
            responses.fail_closed(flow, early=True)

    def _request(self, flow: http.HTTPFlow) -> None:
        state = self.state
        s = state.settings
        req = flow.request
        if (target := req.data.path).find(b"#") >= 0:
            req.data.path = wire.cut_fragment(target)
        if req.data.authority and req.data.http_version.startswith(b"HTTP/1"):
            req.authority = ""  # absolute-form: never to the authority it names
        d = state.decide(req)
        state.remember(flow.id, d)
        meta, flow.comment = memo.words(d, state.lang)  # explain.detail and .comment, once per distinct decision
        flow.metadata["auth"] = meta
        state.count(d.allowed)
        if d.bind:  # v4: recorded once the response is out, whatever its status (Monitor)
            flow.metadata["auth_bind"] = d.bind
        if not s.enforce and d.route != "bad_request":
            # Shadow mode: the real proxy decides, and Shadow checks its answer
            # against this prediction; everything is forwarded as sent.
            meta["shadow"], meta["predicted"], meta["predicted_status"] = True, flow.comment, d.status
            flow.comment = verdict.waiting(flow.comment, state.lang)
        else:
            flow.marked = "" if d.allowed else responses.DENIED_MARKER
            if not d.allowed:
                self._answer(flow, responses.denial(d, req, state.lang, state.explain), meta)
                if line := answers.original_log(d):  # word for word, at the original's level
                    log.log(LEVELS[line[0]], line[1])
                log.info(f"{flow.comment} — {req.method} {responses.loggable(req)}")
                return
            if d.route != "upstream":
                self._answer(flow, responses.local_answer(d.route, req, s.profile, s.version), meta)
                flow.marked = responses.GATE_MARKER
                return
        if state.max_body is not None and responses.content_length(req) > state.max_body:
            # To be forwarded, but larger than the body limit (auth_max_body_size): 413 before it is read.
            self._answer(flow, responses.refusal("body_too_large", state.max_body), meta)
            flow.comment += " · 413 body over auth_max_body_size"
            flow.marked = responses.GATE_MARKER

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.metadata.get(responses.ANSWERED_EARLY) and flow.error.msg == Error.KILLED_MESSAGE:
            flow.error.msg = responses.EARLY_MESSAGE  # what mitmweb shows, rather than "Connection killed."

    def _answer(self, flow: http.HTTPFlow, response: http.Response, meta: dict) -> None:
        if self.state.explain:  # here too: an answer sent at once skips the responseheaders hook (Replies)
            response.headers["x-auth-gate"] = error_bodies.header_value(meta)
        responses.answer_here(flow, response, early=True)
