"""The client's credentials, and how they stay home (pure, no mitmproxy).

The original never forwards what a client presented: it builds its own
upstream requests. The gate forwards the client's request, so it takes out
every road a credential travels by:

* the key headers (KEY_HEADERS) and the proxy credential headers
  `Proxy-Authorization` and `X-Forwarded-Authorization`: STRIPPED_HEADERS;
* the `key=` query parameter, where Gemini clients put their key
  (`/v1beta/models?key=...`): `strip_query_key()` when forwarding,
  `shown_target()` wherever the gate logs or shows a request target (the key's
  fingerprint instead of its value).

A parameter counts as `key` whatever its case and percent-encoding
(`KEY=`, `%6Bey=`): an upstream may decode it so.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from authgate.rules.key_headers import KEY_HEADERS

STRIPPED_HEADERS = (*KEY_HEADERS, "Proxy-Authorization", "X-Forwarded-Authorization")
STRIPPED_NAMES = frozenset(name.lower().encode() for name in STRIPPED_HEADERS)  # as mitmproxy's raw fields
# A query parameter whose name may decode to "key": the value runs to the next & (or #).
_MAYBE_KEY = re.compile(r"(?<=[?&])([^&#=]*)=([^&#]*)")


def _is_key(name: bytes) -> bool:
    return name.lower() == b"key" or (b"%" in name and unquote_to_bytes(name).lower() == b"key")


def strip_query_key(target: bytes) -> bytes:
    """The request target without its `key=` parameters (the same object when it has none)."""
    path, sep, query = target.partition(b"?")
    if not sep or b"=" not in query:
        return target
    params = query.split(b"&")
    kept = [p for p in params if not _is_key(p.partition(b"=")[0])]
    if len(kept) == len(params):
        return target
    return path + (b"?" + b"&".join(kept) if kept else b"")


def shown_target(target: str) -> str:
    """A request target fit for a log line or a trace: each `key=` value as its fingerprint."""
    if "?" not in target:
        return target

    def hide(m: re.Match) -> str:
        if not _is_key(m.group(1).encode("utf-8", "surrogateescape")):
            return m.group(0)
        return f"{m.group(1)}=<{fingerprint(m.group(2))}>"

    return _MAYBE_KEY.sub(hide, target)


def fingerprint(key: str | bytes | None) -> str:
    """A recognisable, non-secret handle on a key: never the key itself."""
    if key is None:
        return "(none)"
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    if not key:
        return "(empty)"
    if len(key) < 12:
        return f"…({len(key)} char{'s' if len(key) != 1 else ''})"
    return f"{key[:3]}…{key[-4:]} ({len(key)} chars)"
