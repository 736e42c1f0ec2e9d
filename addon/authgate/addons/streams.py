"""What stays on a flow of a streamed body. Forward streams every body it
forwards (the request body to the upstream, the answer to the client), each
chunk as it arrives, and mitmproxy stores neither. `Keep` is the stream
callable: it passes each chunk on unchanged and copies the first
auth_keep_body bytes; `put` sets that copy as the message's content once the
stream ends, so that mitmweb's own views show it, marked where it was cut, and
records in flow.metadata[META] how much passed and how much was kept (the
"Auth gate" view says so).

A copy cut short is marked in its own text: a line after the last whole line
(an SSE comment after the last whole event), in the flow's language. A gzip'd
(br, zstd, deflate) copy cut short cannot be decoded whole: its start is
decoded, marked and encoded again, so the headers still say what the client
got and mitmweb still decodes it. Binary bodies are left unmarked.
"""

from __future__ import annotations

from mitmproxy import http

from authgate import mitmproxy_compat
from authgate.words import explain

# flow.metadata[META]: {"request"|"response": {"bytes": passed, "kept": bytes kept (0: auth_keep_body=0,
# no content set), "cut", "complete", "marked": the cut is marked in the copy, "encoding": a cut copy's
# content-encoding, "error": why a stream ended early}}.
META = "auth_streamed"


class Keep:
    """mitmproxy's stream callable: each chunk goes on as it came; the first `room`
    bytes are copied and every byte is counted (the cheap path once the copy is full)."""

    __slots__ = ("copy", "room", "seen")

    def __init__(self, cap: int) -> None:
        self.copy = bytearray()
        self.room = cap
        self.seen = 0

    def __call__(self, data: bytes) -> bytes:
        self.seen += len(data)
        if self.room:
            if len(data) <= self.room:
                self.copy += data
                self.room -= len(data)
            else:
                self.copy += data[:self.room]
                self.room = 0
        return data


def stream(message: http.Message, cap: int) -> None:
    """Stream this message's body, keeping a copy of its first `cap` bytes (0: none, counted all the same)."""
    message.stream = Keep(cap)


def put(flow: http.HTTPFlow, which: str, lang: str, error: str | None = None) -> None:
    """Once the stream of flow.<which> ("request" or "response") has ended (or
    failed: `error`), its kept copy becomes its content. Nothing when the body
    did not stream through a Keep, or mitmproxy stored it itself (a bodiless
    message, a replay, 12.x's store_streamed_bodies)."""
    message = flow.request if which == "request" else flow.response
    keep = getattr(message, "stream", None)
    if type(keep) is not Keep or message.data.content is not None:
        return
    message.stream = True  # the copy's memory goes with the Keep; a streamed body all the same
    copy = bytes(keep.copy)
    info = {"bytes": keep.seen, "kept": len(copy), "cut": keep.seen > len(copy), "complete": error is None}
    if error is not None:
        info["error"] = error
    if keep.seen and not copy:  # auth_keep_body=0: nothing to show (mitmweb: no content), nothing to mark
        flow.metadata.setdefault(META, {})[which] = info
        return
    if info["cut"]:
        copy = _marked(copy, message, which, keep.seen, lang, info)
        kept, total = size(info["kept"]), size(keep.seen)
        flow.comment += f" · {explain.phrase(lang, f'comment_{which}_kept', kept=kept, total=total)}"
    message.data.content = copy
    flow.metadata.setdefault(META, {})[which] = info


def _marked(copy: bytes, message: http.Message, which: str, total: int, lang: str, info: dict) -> bytes:
    """The copy cut short, marked after its last whole line (or event); a compressed one
    decoded, marked and encoded again; a binary or an undecodable one as it is."""
    encoding = message.headers.get("content-encoding", "").strip().lower()
    if encoding and encoding != "identity":
        info["encoding"] = encoding
        text = mitmproxy_compat.decode_prefix(copy, encoding, len(copy))
        if not text or not looks_like_text(text):  # (zstd gives nothing short of a whole block, up to 128 KiB)
            return copy
        info["marked"] = True
        return mitmproxy_compat.encode(_with_marker(text, message, which, total, lang), encoding)
    if not looks_like_text(copy):
        return copy
    info["marked"] = True
    return _with_marker(copy, message, which, total, lang)


def _with_marker(text: bytes, message: http.Message, which: str, total: int, lang: str) -> bytes:
    if message.headers.get("content-type", "").lower().startswith("text/event-stream"):
        # after the last whole event, as an SSE comment: every event shown is whole
        end = max(text.rfind(b"\n\n") + 2, text.rfind(b"\r\n\r\n") + 4)
        text, before, after = (text[:end], b"", b"\n\n") if end > 4 else (text, b"\n\n", b"\n\n")
        before += b": "
    else:
        end = text.rfind(b"\n") + 1
        text, before, after = (text[:end], b"", b"\n") if end else (_whole_characters(text), b"\n", b"\n")
    line = explain.phrase(lang, f"cut_{which}", total=size(total), kept=size(len(text)))
    return text + before + line.encode() + after


def looks_like_text(data: bytes) -> bool:
    """UTF-8 without NULs, judged on its last 4 KiB (a cut may split a character at either end)."""
    tail = data[-4096:]
    if b"\x00" in tail:
        return False
    start = 0
    while start < min(3, len(tail)) and 0x80 <= tail[start] < 0xC0 and len(data) > len(tail):
        start += 1  # continuation bytes of a character the slice split
    try:
        _whole_characters(tail[start:]).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _whole_characters(data: bytes) -> bytes:
    """Without a UTF-8 character cut short at the end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # the lead byte: whole if the sequence it starts is
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data


def size(n: int) -> str:
    """A byte count for people: 523 bytes, 64.0 KiB, 300.0 MiB."""
    if n < 1024:
        return f"{n} bytes"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"  # pragma: no cover
