"""The "Auth gate" content view: the gate's decision on a flow, in the
person's language (auth_lang), where mitmweb and the console show a message.

* The request of every flow the gate decided opens in it (mitmweb's Request
  tab): what was decided and why, the trace step by step, whether the gate
  answered itself or forwarded it, then the body as sent.
* The gate's own answers open in it too (a 401 or 403, /healthz, the
  preflight, 405, the JSON 502/504): the same trace, then the body the client
  received with its long message and fix lines wrapped, not clipped.
* Anything else (an upstream's answer) keeps mitmproxy's own views; this one
  stays in the "View" menu.

Opening a flow in mitmweb also makes it the one `@focus` names, so
`auth.explain @focus` explains the flow open in the flow view.
"""

from __future__ import annotations

import json
import textwrap

from mitmproxy import http

from authgate import mitmproxy_compat
from authgate.addons.state import GateAddon
from authgate.words import explain

NAME = "Auth gate"
PRIORITY = 2.0  # above mitmproxy's JSON view (1): the gate's flows open in this view
WIDTH = 96  # characters per line: mitmweb shows a view's lines unwrapped
MAX_BODY_LINES = 400


class FlowView(GateAddon):
    name = "authgate.flowview"

    def load(self, loader) -> None:
        self._view = mitmproxy_compat.add_contentview(NAME, self.render, self.priority)

    def done(self) -> None:
        mitmproxy_compat.remove_contentview(self._view)

    def priority(self, data: bytes, flow, message) -> float:
        if not isinstance(flow, http.HTTPFlow) or "auth" not in flow.metadata:
            return -1
        if message is flow.request or (message is flow.response and gate_answered(flow)):
            return PRIORITY
        return -1

    def render(self, data: bytes, flow, message) -> tuple[str, list[tuple[str, str]]]:
        if not isinstance(flow, http.HTTPFlow) or "auth" not in flow.metadata:
            return NAME, [("text", explain.phrase(self.state.lang, "view_not_decided"))]
        mitmproxy_compat.focus(flow)
        lines = self.decision_lines(flow)
        if message is flow.request:
            lines.append(("header", explain.phrase(self.state.lang, "view_request_body")))
        else:
            lines.append(("header", explain.phrase(self.state.lang, "view_response_body")))
        lines += [("text", line) for line in body_lines(data, message, self.state.lang)]
        return NAME, lines

    def decision_lines(self, flow: http.HTTPFlow) -> list[tuple[str, str]]:
        """The decision on this flow: the comment, where it went, the trace."""
        lang, meta, req = self.state.lang, flow.metadata["auth"], flow.request
        words = lambda phrase, **kw: explain.phrase(lang, phrase, **kw)  # noqa: E731
        lines = [("header", line) for line in wrap(words("view_title", comment=flow.comment))]
        upstream = meta["upstream"][0] if "upstream" in meta else self.state.settings.upstream.url
        if meta.get("shadow"):
            where = words("view_shadow", upstream=upstream)
        elif gate_answered(flow) and "upstream" not in meta:
            where = words("view_local", address=address(flow), upstream=upstream)
        elif flow.response or flow.error:
            where = words("view_forwarded", upstream=upstream)
        else:
            where = words("view_waiting", upstream=upstream)
        lines += [("text", line) for line in wrap(where)]
        d = self.state.recall(flow.id)
        if d is None:  # a flow loaded from a file, or older than the gate's memory
            lines += [("text", line) for line in wrap(words("view_again"))]
            d = self.state.decide(req)
        lines.append(("text", " "))
        trace = explain.trace(d, req.method, req.path, lang)
        lines += [("text", line) for raw in trace.splitlines() for line in wrap(raw)]
        lines.append(("text", " "))
        return lines


def gate_answered(flow: http.HTTPFlow) -> bool:
    """The response is the gate's own: a local route or a denial, or its JSON
    502/504 for a failed upstream (never in shadow mode, which forwards all)."""
    meta = flow.metadata.get("auth") or {}
    if meta.get("shadow") or flow.response is None:
        return False
    return meta.get("route") not in (None, "upstream") or ("upstream" in meta and flow.error is not None)


def address(flow: http.HTTPFlow) -> str:
    host, port = flow.client_conn.sockname[:2] if flow.client_conn.sockname else ("?", 0)
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """One long line as several, each continuation indented under its text."""
    if len(line) <= width:
        return [line]
    indent = len(line) - len(line.lstrip(" "))
    return textwrap.wrap(line, width, subsequent_indent=" " * (indent + 4), break_on_hyphens=False) or [line]


def body_lines(data: bytes, message, lang: str) -> list[str]:
    """The body, readable: JSON indented with long strings wrapped, other text as
    it is, binary said so."""
    if not data:
        return [explain.phrase(lang, "view_no_body")]
    try:
        text = json.dumps(json.loads(data), indent=2, ensure_ascii=False)
    except ValueError:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return [explain.phrase(lang, "view_binary", size=len(data))]
    out = [line for raw in text.splitlines() for line in wrap(raw)]
    if len(out) > MAX_BODY_LINES:
        out = out[:MAX_BODY_LINES] + [explain.phrase(lang, "view_more", count=len(out) - MAX_BODY_LINES)]
    return out
