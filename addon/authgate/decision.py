"""The auth layer's decision, as a pure function.

`decide(view, policy)` reproduces Antigravity Tools' `auth_middleware()`:
OPTIONS bypass, effective mode (auto through allow_lan_access), the /healthz
exemption, denial when api_key is empty, then the key read from the first
present header among Authorization, x-api-key, x-goog-api-key.

No mitmproxy import: plain values in, a frozen record out, so it is
table-tested row by row and costs microseconds per request.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import NamedTuple, Protocol

MODES = ("off", "strict", "all_except_health", "auto")
# faq: the behaviour the FAQ describes. v4: newer releases of the original
# (/health exempt too, /internal/* open, a wrong key gets 403).
PROFILES = ("faq", "v4")
HEALTH_PATHS = {"faq": ("/healthz",), "v4": ("/healthz", "/health")}

# Priority order of the key headers; names as the FAQ writes them.
KEY_HEADERS = ("Authorization", "x-api-key", "x-goog-api-key")
_KEY_HEADERS_LOWER = {name.lower().encode(): name for name in KEY_HEADERS}
_BEARER = b"Bearer "

# The http crate's HeaderValue::to_str() accepts only visible ASCII and tab;
# anything else makes the original treat the header as absent.
_NOT_VISIBLE_ASCII = re.compile(rb"[^\t\x20-\x7e]")


class Policy(Protocol):
    """The slice of the settings the decision reads."""

    auth_mode: str
    allow_lan_access: bool
    api_key: str
    profile: str  # one of PROFILES


@dataclass(frozen=True, slots=True)
class RequestView:
    method: str
    path: str  # origin-form request target, query string included
    headers: tuple[tuple[bytes, bytes], ...]  # raw (name, value) pairs in wire order


class Decision(NamedTuple):  # immutable, and cheap to build on every request
    allowed: bool
    # What answers an allowed request: "preflight", "health" (the proxy's own
    # GET/HEAD /healthz route), "method_not_allowed" (/healthz, other method)
    # or "upstream". Denied requests get "denied".
    route: str
    # The status the gate answers with itself; None when forwarded.
    status: int | None
    configured_mode: str
    effective_mode: str
    allow_lan_access: bool
    auth_required: bool
    # reason code: preflight, auth_off, health_exempt, internal_exempt, key_ok, empty_api_key,
    # missing, non_ascii, empty_value, bearer_no_space, bearer_lowercase,
    # bearer_extra_space, mismatch
    reason: str
    winner: str | None  # the key header that was read, None when none was usable
    # How the winner's value became the key: "bearer" (prefix stripped),
    # "whole" (Authorization without the exact "Bearer " prefix), "plain".
    key_form: str | None
    # Each key header's fate: "absent", "non_ascii" (skipped), "won", "ignored".
    headers: tuple[tuple[str, str], ...]
    # An ignored header that holds the right key: the FAQ's priority pitfall.
    shadowed: str | None
    presented: bytes | None  # the key read from the winner; never log it whole

    @property
    def ignored(self) -> tuple[str, ...]:
        return tuple(name for name, state in self.headers if state == "ignored")

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(name for name, state in self.headers if state == "non_ascii")


def effective_mode(auth_mode: str, allow_lan_access: bool) -> str:
    """`auto` is not a policy of its own: it follows allow_lan_access."""
    if auth_mode == "auto":
        return "all_except_health" if allow_lan_access else "off"
    return auth_mode


def is_health_path(path: str, profile: str = "faq") -> bool:
    """The exact path /healthz (v4: or /health); the query string does not count."""
    return path.partition("?")[0] in HEALTH_PATHS[profile]


def _route(method: str, path: str, profile: str) -> str:
    if not is_health_path(path, profile):
        return "upstream"
    return "health" if method in ("GET", "HEAD") else "method_not_allowed"


_ROUTE_STATUS = {"preflight": 200, "health": 200, "method_not_allowed": 405, "upstream": None}


def _first_values(headers: tuple[tuple[bytes, bytes], ...]) -> dict[str, bytes]:
    """First value of each key header present (names are case-insensitive)."""
    found: dict[str, bytes] = {}
    for name, value in headers:
        canonical = _KEY_HEADERS_LOWER.get(name.lower())
        if canonical is not None and canonical not in found:
            found[canonical] = value
    return found


def _read_key(found: dict[str, bytes]):
    """The original's extraction chain: the first usable header wins."""
    states: list[tuple[str, str]] = []
    winner = key = form = None
    for name in KEY_HEADERS:
        value = found.get(name)
        if value is None:
            states.append((name, "absent"))
        elif winner is not None:
            states.append((name, "ignored"))
        elif _NOT_VISIBLE_ASCII.search(value):
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


def _failure_reason(key: bytes, form: str) -> str:
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


def decide(view: RequestView, policy: Policy) -> Decision:
    mode = policy.auth_mode
    lan = policy.allow_lan_access
    profile = policy.profile
    effective = effective_mode(mode, lan)

    # CORS preflight passes whatever the mode, before anything else.
    if view.method == "OPTIONS":
        return Decision(True, "preflight", 200, mode, effective, lan, False, "preflight", None, None, (), None, None)
    route = _route(view.method, view.path, profile)
    if effective == "off":
        reason = "auth_off"
    elif effective == "all_except_health" and route != "upstream":
        reason = "health_exempt"
    elif profile == "v4" and view.path.startswith("/internal/"):
        reason = "internal_exempt"
    else:
        return _check_key(view, policy, route, mode, effective, lan, profile)
    return Decision(True, route, _ROUTE_STATUS[route], mode, effective, lan, False, reason,
                    None, None, (), None, None)


def _check_key(view: RequestView, policy: Policy, route: str, mode: str, effective: str, lan: bool,
               profile: str) -> Decision:
    """Auth is required: read the key from the first usable header and compare."""
    found = _first_values(view.headers)
    winner, key, form, states = _read_key(found)
    expected = policy.api_key.encode("ascii")
    if not expected:
        reason = "empty_api_key"
    elif key is None:
        reason = "non_ascii" if found else "missing"
    elif _matches(key, expected):
        return Decision(True, route, _ROUTE_STATUS[route], mode, effective, lan, True, "key_ok",
                        winner, form, states, None, key)
    else:
        reason = _failure_reason(key, form)
    shadowed = None
    if expected:
        for name, state in states:
            if state == "ignored" and _matches(found[name], expected):
                shadowed = name
                break
    # v4 answers a presented but wrong key with 403; a missing one stays 401.
    status = 403 if profile == "v4" and winner is not None and reason != "empty_api_key" else 401
    return Decision(False, "denied", status, mode, effective, lan, True, reason,
                    winner, form, states, shadowed, key)


def _matches(presented: bytes, expected: bytes) -> bool:
    # Constant time: the comparison must not tell an attacker how much matched.
    return hmac.compare_digest(presented, expected)
