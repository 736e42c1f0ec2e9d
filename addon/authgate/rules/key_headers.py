"""The key headers, read as the original reads them (pure, both profiles).

Which header gives the key (the first present among Authorization, x-api-key,
x-goog-api-key, by its first value, visible ASCII only), how `Bearer ` comes
off it, why a key that does not match failed (its shape), the constant-time
comparison, the ignored header that held the right key, and the header
values the original's HTTP parser refuses before any auth (400).
decision.py (profile faq) and v4.py both read the request through these.
"""

from __future__ import annotations

import hmac
import re

# Priority order of the key headers; names as the FAQ writes them.
KEY_HEADERS = ("Authorization", "x-api-key", "x-goog-api-key")
_KEY_HEADERS_LOWER = {name.lower().encode(): name for name in KEY_HEADERS}
_KEY_NAME_LENGTHS = frozenset(len(name) for name in KEY_HEADERS)  # a cheap test before lower(), on every header
_BEARER = b"Bearer "

# The http crate's HeaderValue::to_str() accepts only visible ASCII and tab;
# anything else makes the original treat the header as absent.
NOT_VISIBLE_ASCII = re.compile(rb"[^\t\x20-\x7e]")
# httparse (hyper's HTTP/1 parser, under the original) accepts in a header value
# tab, space, visible ASCII and the bytes 0x80-0xFF; any other byte (CR, LF, NUL,
# 0x01-0x08, 0x0A-0x1F, DEL) and an obs-fold line make it answer 400 before any
# middleware runs. mitmproxy checks none of it: it joins a folded line into the
# value as "\r\n " and passes every byte on.
VALUE_BYTES = bytes([9, *range(0x20, 0x7F), *range(0x80, 0x100)])
_NAME_SHOWN = 64  # characters of a refused header's name that the explanation quotes


def first_values(headers: tuple[tuple[bytes, bytes], ...]) -> dict[str, bytes]:
    """First value of each key header present (names are case-insensitive)."""
    found: dict[str, bytes] = {}
    for name, value in headers:
        if len(name) in _KEY_NAME_LENGTHS:
            canonical = _KEY_HEADERS_LOWER.get(name.lower())
            if canonical is not None and canonical not in found:
                found[canonical] = value
    return found


def read_key(found: dict[str, bytes], names: tuple[str, ...] = KEY_HEADERS):
    """The original's extraction chain over `names`: the first usable header wins."""
    states: list[tuple[str, str]] = []
    winner = key = form = None
    for name in names:
        value = found.get(name)
        if value is None:
            states.append((name, "absent"))
        elif winner is not None:
            states.append((name, "ignored"))
        elif NOT_VISIBLE_ASCII.search(value):
            states.append((name, "non_ascii"))
        else:
            states.append((name, "won"))
            winner = name
            if name != "Authorization":
                key, form = value, "plain"
            elif value.startswith(_BEARER):
                key, form = value[len(_BEARER):], "bearer"
            else:
                key, form = value, "whole"
    return winner, key, form, tuple(states)


def failure_reason(key: bytes, form: str) -> str:
    """Why a presented key that does not match failed, by its shape."""
    if form == "whole":
        if key.strip() in (b"", b"Bearer"):
            return "empty_value"
        if key[:7].lower() == b"bearer " or key.lower() == b"bearer":
            return "bearer_lowercase"
        if key.startswith(b"Bearer"):
            return "bearer_no_space"
        return "mismatch"
    if not key.strip():
        return "empty_value"
    if form == "bearer" and key[:1] in (b" ", b"\t"):
        return "bearer_extra_space"
    return "mismatch"


def matches(presented: bytes, expected: bytes) -> bool:
    # Constant time: the comparison must not tell an attacker how much matched.
    return hmac.compare_digest(presented, expected)


def find_shadowed(states, found: dict[str, bytes], expected: bytes) -> str | None:
    """The first ignored key header that holds the expected key: the FAQ's priority pitfall."""
    for name, state in states:
        if state == "ignored" and matches(found[name], expected):
            return name
    return None


def malformed_header(headers) -> tuple[str, str] | None:
    """(name, reason) of the first header value the original's parser refuses:
    header_obs_fold (a continuation line) or header_control_byte; None when none."""
    for name, value in headers:
        if value.translate(None, VALUE_BYTES):
            shown = name[:_NAME_SHOWN].decode("latin-1").encode("unicode_escape").decode("ascii")
            return shown, "header_obs_fold" if b"\r\n " in value or b"\r\n\t" in value else "header_control_byte"
    return None
