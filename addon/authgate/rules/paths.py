"""The forms a request path may take on its way upstream (pure): the gate's
hardening of profile v4's path rules.

The original never normalises a path: hyper, http, axum and matchit match the
raw bytes, so `/internal/../v1/models` or `/api/x/../accounts` meet no route
and end in a 404 (axum routing/path_router.rs:334-387; matchit router.rs:59-68).
The gate forwards what passes to an upstream that may well normalise it: decode
percent-escapes (more than once), read overlong UTF-8 or fullwidth characters
as ASCII, drop `;params` (Tomcat's `..;`), NUL or whitespace, resolve `.` and
`..`, collapse `//`, ignore a trailing slash. So v4.py asks here:

* `unsafe(path)`: whether any such reading has a `.` or `..` segment or an
  empty one (`//`): such a path never gets the `/internal/` exemption.
* `under_admin(path)`: whether the path is not in its normal form, and that
  normal form is `/api` or under `/api/`: such a path needs the admin
  credential, as the admin routes it may become do.

`plain(path)` is the fast answer for the common path: nothing to read twice.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

_ROUNDS = 5  # percent-decodings tried; a path still encoded after that is unsafe
_SEPARATORS = re.compile(r"[/\\]")
# Overlong UTF-8 (`%c0%ae` for `.`, `%c0%af` for `/`): 2, 3 or 4 bytes for one ASCII character.
_OVERLONG = re.compile(rb"[\xc0\xc1][\x80-\xbf]|\xe0[\x80-\x9f][\x80-\xbf]|\xf0[\x80-\x8f][\x80-\xbf][\x80-\xbf]")
_STRIPPED = " \t\r\n\x0b\x0c\x00"  # around a segment, NUL included


def plain(path: str) -> bool:
    """Nothing to normalise: ASCII, no escape, no backslash, no `;`, no `//`, no `/.`,
    no trailing slash (the path alone, without its query)."""
    return (path.isascii() and "%" not in path and "\\" not in path and ";" not in path and "//" not in path
            and "/." not in path and (path[-1:] != "/" or path == "/"))


def _overlong(m: re.Match) -> bytes:
    seq = m.group(0)
    if len(seq) == 2:
        code = ((seq[0] & 0x1F) << 6) | (seq[1] & 0x3F)
    elif len(seq) == 3:
        code = ((seq[0] & 0x0F) << 12) | ((seq[1] & 0x3F) << 6) | (seq[2] & 0x3F)
    else:
        code = ((seq[0] & 0x07) << 18) | ((seq[1] & 0x3F) << 12) | ((seq[2] & 0x3F) << 6) | (seq[3] & 0x3F)
    return bytes([code]) if code < 0x80 else seq


def readings(path: str) -> list[str] | None:
    """The path as a normalising server may read it: as sent, then each round of
    percent-decoding, each with overlong UTF-8 read as ASCII and, when it differs,
    NFKC (fullwidth `．／` as `./`). None when it is still encoded after _ROUNDS rounds."""
    raw = path.encode("utf-8", "surrogateescape")
    out: list[str] = []
    for _ in range(_ROUNDS + 1):
        text = _OVERLONG.sub(_overlong, raw).decode("utf-8", "replace")
        out.append(text)
        if not text.isascii():
            folded = unicodedata.normalize("NFKC", text)
            if folded != text:
                out.append(folded)
        if b"%" not in raw:
            return out
        decoded = unquote_to_bytes(raw)
        if decoded == raw:
            return out
        raw = decoded
    return None


def _variants(segment: str) -> set[str]:
    """A segment as servers read it: whole or cut at `;`, NUL deleted or cut at, trimmed."""
    out = set()
    for seg in (segment, segment.split(";", 1)[0]):
        for s in (seg.replace("\x00", ""), seg.split("\x00", 1)[0]):
            out.add(s.strip(_STRIPPED).strip())
    return out


def unsafe(path: str) -> bool:
    """A `.` or `..` segment, or an empty one between two others, in any reading."""
    forms = readings(path)
    if forms is None:
        return True
    for text in forms:
        segs = _SEPARATORS.split(text)[1:]  # (the empty one before the leading slash)
        for i, seg in enumerate(segs):
            names = _variants(seg)
            if "." in names or ".." in names or ("" in names and i < len(segs) - 1):
                return True
    return False


def normal_forms(path: str) -> set[str]:
    """What the readings become once dot segments are resolved and empty ones dropped
    (a trailing slash too): the paths a normalising upstream may serve instead."""
    out = set()
    for text in readings(path) or (path,):
        kept: list[str] = []
        for seg in _SEPARATORS.split(text)[1:]:
            name = seg.split(";", 1)[0].replace("\x00", "").strip(_STRIPPED).strip()
            if name in ("", "."):
                continue
            if name == "..":
                if kept:
                    kept.pop()
                continue
            kept.append(name)
        out.add("/" + "/".join(kept))
    return out


def under_admin(path: str) -> bool:
    """Not in its normal form, and some normal form is `/api` or under `/api/`."""
    if plain(path):
        return False
    return any(form == "/api" or form.startswith("/api/") for form in normal_forms(path))
