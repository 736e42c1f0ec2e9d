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

A parameter counts as `key` when its name, read as a lenient server reads it,
is `key` or `key[...]`: any case, percent-encoded any number of times
(`%6Bey`, `%256Bey`), `+` as a space, fullwidth letters (NFKC), whitespace
around it (`%20key`); `key[]` and `key[0]` because Express (qs), PHP and Rack
read them as `key`. Parameters are separated by `&` or `;` (PHP's
arg_separator.input, Rack and older CGI read `;` too).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

from authgate.rules.key_headers import KEY_HEADERS

STRIPPED_HEADERS = (*KEY_HEADERS, "Proxy-Authorization", "X-Forwarded-Authorization")
STRIPPED_NAMES = frozenset(name.lower().encode() for name in STRIPPED_HEADERS)  # as mitmproxy's raw fields
# A query parameter whose name may decode to "key": the value runs to the next & or ; (or #).
_MAYBE_KEY = re.compile(r"(?<=[?&;])([^&;#=]*)=([^&;#]*)")
_SEPARATOR = re.compile(rb"([&;])")
_ROUNDS = 5  # percent-decodings tried; a name still encoded after that counts as a key (it is dropped)


def _is_key(name: bytes) -> bool:
    if name.lower() == b"key":
        return True
    if name.isascii() and b"%" not in name and b"+" not in name and b"[" not in name and name.strip() == name:
        return False  # plain ASCII, and not `key`: the common case
    for _ in range(_ROUNDS):
        decoded = unquote_to_bytes(name.replace(b"+", b" "))
        if decoded == name:
            break
        name = decoded
    else:
        return True
    text = unicodedata.normalize("NFKC", name.decode("utf-8", "replace")).strip().strip("\x00").strip().lower()
    return text == "key" or (text.startswith("key[") and text.endswith("]"))


def _may_hold_key(query: bytes) -> bool:
    """Whether a query may hold a `key` parameter at all (the common query does not).
    (bytes.find, not `in`: `in` first tries the needle as an int, an exception each time.)"""
    return query.find(b"%") >= 0 or not query.isascii() or query.lower().find(b"key") >= 0


def strip_query_key(target: bytes) -> bytes:
    """The request target without its `key` parameters (the same object when it has none)."""
    path, sep, query = target.partition(b"?")
    if not sep or query.find(b"=") < 0 or not _may_hold_key(query):
        return target
    parts = _SEPARATOR.split(query)  # param, separator, param, ...
    kept: list[bytes] = []
    for i in range(0, len(parts), 2):
        param = parts[i]
        if _is_key(param.partition(b"=")[0]):
            continue
        if kept:
            kept.append(parts[i - 1])  # the separator that came before it
        kept.append(param)
    if len(kept) == len(parts):
        return target
    return path + (b"?" + b"".join(kept) if kept else b"")


def shown_target(target: str) -> str:
    """A request target fit for a log line or a trace: each `key` parameter's value as its fingerprint."""
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
