"""The "Auth gate" content view: the gate's decision on a flow, in the
person's language (auth_lang), where mitmweb and the console show a message.

* The request of every flow the gate decided opens in it (mitmweb's Request
  tab): what was decided and why, the trace step by step, whether the gate
  answered itself or forwarded it, then the body as sent.
* The gate's own answers open in it too (a 401 or 403, /healthz, the
  preflight, 405, the JSON 502/504): the same trace, then the body the client
  received with its long message and fix lines wrapped, not clipped.
* Anything else (an upstream's answer) keeps mitmproxy's own views; this one
  stays in the "View" menu. It says too whether each body streamed, and how
  much of it the flow kept (auth_keep_body: streams.py).
* "Event stream": a server-sent events answer (text/event-stream), event by
  event, which no mitmproxy view reads (11.x and 12.x alike).

Opening a flow in mitmweb also makes it the one `@focus` names, so
`auth.explain @focus` explains the flow open in the flow view.
"""

from __future__ import annotations

import json
import re
import textwrap

from mitmproxy import http

from authgate import mitmproxy_compat
from authgate.addons import streams
from authgate.addons.state import GateAddon
from authgate.words import explain

NAME = "Auth gate"
PRIORITY = 2.0  # above mitmproxy's JSON view (1): the gate's flows open in this view
EVENTS = "Event stream"
EVENTS_PRIORITY = 1.5  # above mitmproxy's text views: an SSE answer opens event by event
WIDTH = 96  # characters per line: mitmweb shows a view's lines unwrapped
MAX_BODY_LINES = 400


class FlowView(GateAddon):
    name = "authgate.flowview"

    def load(self, loader) -> None:
        self._view = mitmproxy_compat.add_contentview(NAME, self.render, self.priority)
        self._events = mitmproxy_compat.add_contentview(EVENTS, render_events, events_priority)

    def done(self) -> None:
        mitmproxy_compat.remove_contentview(self._view)
        mitmproxy_compat.remove_contentview(self._events)

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
        lines += [("text", line) for raw in streamed(flow, lang) for line in wrap(raw)]
        d = self.state.recall(flow.id)
        if d is None:  # a flow loaded from a file, or older than the gate's memory
            lines += [("text", line) for line in wrap(words("view_again"))]
            d = self.state.decide(req)
        lines.append(("text", " "))
        trace = explain.trace(d, req.method, req.path, lang)
        lines += [("text", line) for raw in trace.splitlines() for line in wrap(raw)]
        lines.append(("text", " "))
        return lines


def streamed(flow: http.HTTPFlow, lang: str) -> list[str]:
    """Whether each body streamed, and what of it the flow kept (streams.put's record)."""
    record = flow.metadata.get(streams.META) or {}
    out = []
    for which in ("request", "response"):
        if (info := record.get(which)) is None:
            continue
        words = [explain.phrase(lang, f"view_streamed_{which}")]
        total, kept = streams.size(info["bytes"]), streams.size(info["kept"])
        if info["cut"] and not info["kept"]:
            words.append(explain.phrase(lang, "view_kept_none"))
        elif not info["cut"]:
            words.append(explain.phrase(lang, "view_kept_whole", total=total))
        elif info.get("marked"):
            words.append(explain.phrase(lang, "view_kept_cut", total=total, kept=kept))
        elif "encoding" in info:
            words.append(explain.phrase(lang, "view_kept_encoded", total=total, kept=kept, encoding=info["encoding"]))
        else:
            words.append(explain.phrase(lang, "view_kept_binary", total=total, kept=kept))
        if not info.get("complete", True):
            words.append(explain.phrase(lang, "view_stream_ended", error=info.get("error", "?")))
        out.append(" ".join(words))
    return out


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


# ------------------------------------------------------------ the event-stream view

_SSE_LINE = re.compile(r"\r\n|\r|\n")  # the line ends of the SSE format (not str.splitlines's)


def events_priority(data: bytes, flow, message) -> float:
    if not data or message is None or not isinstance(message, http.Response):
        return -1
    return EVENTS_PRIORITY if message.headers.get("content-type", "").lower().startswith("text/event-stream") else -1


def render_events(data: bytes, flow, message) -> tuple[str, list[tuple[str, str]]]:
    """Server-sent events, one by one: a heading (its number, event name, id, retry),
    then its data lines; comments (the gate's cut mark is one) as they are."""
    lines: list[tuple[str, str]] = []
    fields: list[tuple[str, str]] = []
    count = 0
    for raw in _SSE_LINE.split(data.decode("utf-8", "replace")):
        if raw.startswith(":"):
            lines += [("text", line) for line in wrap(raw)]
        elif raw:
            name, _, value = raw.partition(":")
            fields.append((name, value.removeprefix(" ")))
        elif fields:  # a blank line ends the event
            count += 1
            lines += _event(count, fields, whole=True)
            fields = []
    if fields:  # the last one had no blank line after it (yet)
        count += 1
        lines += _event(count, fields, whole=False)
    return f"{EVENTS} ({count} events)", lines or [("text", "(no events)")]


def _event(number: int, fields: list[tuple[str, str]], whole: bool) -> list[tuple[str, str]]:
    head = [f"#{number}"]
    head += [f"{name}: {value}" for name, value in fields if name in ("event", "id", "retry")]
    if not whole:
        head.append("(unfinished)")
    out = [("header", " · ".join(head))]
    for name, value in fields:
        if name not in ("event", "id", "retry"):
            shown = value if name == "data" else f"{name}: {value}"
            out += [("text", line) for line in wrap("  " + shown)]
    return out
