"""What a request may hold (mitmproxy_compat's HTTP/1 guards, set up here). Limits
installs mitmproxy_compat's wrappers on the HTTP/1 layer for the whole gate (these
guards, and the one through which Replies answers an upstream failure).

* A body of at most auth_max_body_size (100 MiB by default, as the original's
  ABV_MAX_BODY_SIZE). A larger Content-Length gets a 413 at the request
  headers, before a byte of the body is read (Gatekeeper, after the decision:
  a denied request gets its 401 first, as the original's auth middleware runs
  before its body limit). A chunked body streams to the upstream as it comes
  (Forward) and is counted: once it grows past the limit it gets the 413 if
  nothing has been answered yet (the upstream connection is closed, its
  request unfinished); if the upstream has begun to answer, no second answer
  can go out: both connections are cut, and the log says why (trailers, 400
  otherwise, the same).
* How much of each streamed body a flow keeps for mitmweb (auth_keep_body,
  1 MiB by default; 0 keeps nothing): see streams.py.
* No trailers (header fields after a chunked body): 400. mitmproxy can neither
  read nor forward them; without the guard it crashes on them and leaves the
  client hanging.
* A request head within hyper's buffer (408 KiB): 431.
* A request head the original's parser takes (rules/wire.py): at most 100
  header fields (431), a target of at most 65,534 bytes (414), a request
  line with a token method, a target without control bytes and in UTF-8,
  HTTP/1.0 or HTTP/1.1 (400). A head mitmproxy's own parser refuses gets the
  gate's 400 too, never mitmproxy's HTML page.

The answers are JSON (with auth_explain off, what hyper sends for what it
refuses: an empty answer), and the connection closes (responses.refusal).
The flow shows the answer the client got (a refused head makes no flow:
one log line says why).
"""

from __future__ import annotations

import logging

from mitmproxy import ctx, exceptions, http
from mitmproxy.utils import human

from authgate import mitmproxy_compat
from authgate.addons import responses, streams
from authgate.addons.state import GateAddon
from authgate.rules import wire

log = logging.getLogger("authgate")

MAX_BODY = "100m"  # auth_max_body_size's default: the original's ABV_MAX_BODY_SIZE default, 100 MiB
KEEP_BODY = "1m"  # auth_keep_body's default


class Limits(GateAddon):
    name = "authgate.limits"

    def load(self, loader) -> None:
        loader.add_option("auth_max_body_size", str, MAX_BODY,
                          "The largest request body the gate forwards (100m = 100 MiB, as the original's "
                          "ABV_MAX_BODY_SIZE; b, k, m, g); a larger one gets 413 before it is read.")
        loader.add_option("auth_keep_body", str, KEEP_BODY,
                          "How much of each body the gate streams a flow keeps for mitmweb and the console "
                          "(1m = the first MiB; b, k, m, g; 0 keeps nothing). Every forwarded body streams "
                          "as it arrives; this copy shows once the stream ends, marked where it was cut.")
        mitmproxy_compat.install()
        self._set(human.parse_size(MAX_BODY))

    def configure(self, updated: set[str]) -> None:
        if "auth_max_body_size" in updated:
            value = ctx.options.auth_max_body_size
            try:
                limit = human.parse_size(value)
            except ValueError:
                limit = None
            if not limit or limit < 0:
                raise exceptions.OptionsError(f"option auth_max_body_size: {value[:40]!r} is not a size. "
                                              f"Fix: a number of bytes, or with k, m or g, e.g. 100m")
            self._set(limit)
        if "auth_keep_body" in updated:
            value = ctx.options.auth_keep_body
            try:
                keep = human.parse_size(value)
            except ValueError:
                keep = None
            if keep is None or keep < 0:
                raise exceptions.OptionsError(f"option auth_keep_body: {value[:40]!r} is not a size. "
                                              f"Fix: a number of bytes, or with k, m or g, e.g. 1m (0 keeps nothing)")
            self.state.keep_body = keep

    def _set(self, limit: int) -> None:
        self.state.max_body = limit
        mitmproxy_compat.configure_guards(limit, lambda kind: responses.refusal(kind, limit, self.state.explain),
                                          head=wire.head_refusal, cut_late=self._cut_late)

    def _cut_late(self, req: http.Request, kind: str) -> None:
        """A streamed request refused (kind: body_too_large, trailers) after the upstream had begun to answer."""
        why = (f"its body went over auth_max_body_size ({streams.size(self.state.max_body or 0)})"
               if kind == "body_too_large" else "it carried HTTP trailers")
        log.warning(f"auth gate: {req.method} {responses.loggable(req)}: {why} after the upstream had begun to "
                    f"answer; no {responses.refusal(kind, 0).status_code} can follow that answer, so the gate cut "
                    f"the connections to the client and to the upstream")

    def done(self) -> None:
        mitmproxy_compat.uninstall()

    def error(self, flow: http.HTTPFlow) -> None:
        """A guard refused the request on the wire: the flow shows the answer the client got."""
        if flow.error.msg.startswith(mitmproxy_compat.REFUSED):  # (what the gate meant to answer never went out)
            kind = flow.error.msg[len(mitmproxy_compat.REFUSED):]
            flow.response = responses.refusal(kind, self.state.max_body or 0, self.state.explain)
            flow.comment += f"{' · ' if flow.comment else ''}{flow.response.status_code} {kind.replace('_', ' ')}"
        elif flow.error.msg.startswith(mitmproxy_compat.CUT):  # the answer under way stays as far as it went
            why = "request body over auth_max_body_size" if "auth_max_body_size" in flow.error.msg else "trailers"
            flow.comment += f"{' · ' if flow.comment else ''}connections cut: {why}"
