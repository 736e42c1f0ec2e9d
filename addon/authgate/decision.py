"""The auth layer's decision, as a pure function.

`decide(view, policy)` reproduces Antigravity Tools' `auth_middleware()`:
OPTIONS bypass, effective mode (auto through allow_lan_access), the /healthz
exemption, denial when api_key is empty, then the key read from the first
present header among Authorization, x-api-key, x-goog-api-key (read as
key_headers.py reads it).

That is `profile: faq`. `profile: v4` is v4.5.8 rule for rule (admin routes,
admin_password, user tokens, /internal/, 403 and 500): see v4.py; decide()
hands such policies over to it, with the user-token store and the time.

No mitmproxy import: plain values in, a frozen record out, so it is
table-tested row by row and costs microseconds per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

from .key_headers import (VALUE_BYTES, failure_reason, find_shadowed, first_values, malformed_header, matches,
                          read_key)
from .v4_admin import admin_path

MODES = ("off", "strict", "all_except_health", "auto")
# faq: the behaviour the FAQ describes. v4: v4.5.8 exactly (v4.py).
PROFILES = ("faq", "v4")
HEALTH_PATHS = {"faq": ("/healthz",), "v4": ("/healthz", "/health")}  # v4: the proxy routes' own


class Policy(Protocol):
    """The slice of the settings the decision reads."""

    auth_mode: str
    allow_lan_access: bool
    api_key: str
    profile: str  # one of PROFILES
    # v4 reads also admin_password (str or None), with getattr: a faq policy needs only the above.


@dataclass(frozen=True, slots=True)
class RequestView:
    method: str
    path: str  # origin-form request target, query string included
    headers: tuple[tuple[bytes, bytes], ...]  # raw (name, value) pairs in wire order


class V4Facts(NamedTuple):
    """What a profile v4 decision knows besides the faq record (see v4.py)."""

    surface: str  # "proxy" (proxy routes and the fallback) or "admin" (/api/<admin route>)
    # The user-token verdict: tagged (off mode), ok, unknown, expired, ip_limit,
    # curfew, store_error, vanished (gone at the second lookup); None: not consulted.
    token: str | None = None
    token_id: str | None = None
    token_user: str | None = None
    client_ip: str | None = None  # the IP the original uses for the token (headers, never the peer)
    # (token id, client IP): the IP binding the original records once the
    # response is built, whatever its status (monitor.rs); the adapter calls
    # the store's record() then.
    bind: tuple[str, str] | None = None
    rejection: str | None = None  # the original's 403 message, word for word
    log: tuple[str, str] | None = None  # (level, line): what the original logs for this request
    notes: tuple[str, ...] = ()  # quirks and differences the explanation points out
    credential: str | None = None  # what the key was compared with: "api_key" or "admin_password"


class Decision(NamedTuple):  # immutable, and cheap to build on every request
    allowed: bool
    # What answers an allowed request: "preflight", "health" (the proxy's own
    # GET/HEAD /healthz route), "method_not_allowed" (/healthz, other method)
    # or "upstream". Denied requests get "denied", refused ones "bad_request".
    route: str
    # The status the gate answers with itself; None when forwarded.
    status: int | None
    configured_mode: str
    effective_mode: str
    allow_lan_access: bool
    auth_required: bool
    # reason code: header_control_byte, header_obs_fold (400, route "bad_request": the
    # original's parser refuses the request; `headers` names the header), preflight, auth_off, health_exempt, internal_exempt, key_ok, empty_api_key,
    # missing, non_ascii, empty_value, bearer_no_space, bearer_lowercase,
    # bearer_extra_space, mismatch; v4 also: health_paths_exempt, empty_key_accepted,
    # token_ok, token_expired, token_ip_limit, token_curfew, token_store_error,
    # token_vanished, admin_health, admin_key_ok, admin_password_ok,
    # admin_empty_credentials, admin_password_mismatch, admin_api_key_refused
    reason: str
    winner: str | None  # the key header that was read, None when none was usable
    # How the winner's value became the key: "bearer" (prefix stripped),
    # "whole" (Authorization without the exact "Bearer " prefix), "plain".
    key_form: str | None
    # Each key header's fate: "absent", "non_ascii" (skipped), "won", "ignored"; for a
    # bad_request, the refused header and the reason code instead.
    headers: tuple[tuple[str, str], ...]
    # An ignored header that holds the right key: the FAQ's priority pitfall.
    shadowed: str | None
    presented: bytes | None  # the key read from the winner; never log it whole
    # Profile v4's facts (V4Decision sets them on its instances): class
    # defaults here, so a faq decision stays the 13-tuple it always was and
    # costs nothing more to build. See V4Facts for what each one means.
    surface = None
    token = None
    token_id = None
    token_user = None
    client_ip = None
    bind = None
    rejection = None
    log = None
    notes = ()
    credential = None

    @property
    def ignored(self) -> tuple[str, ...]:
        return tuple(name for name, state in self.headers if state == "ignored")

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(name for name, state in self.headers if state == "non_ascii")


class V4Decision(Decision):
    """A profile v4 decision: the 13-field record, and V4Facts as attributes
    (frozen too). Equality and unpacking are the record's; copy, pickle and
    _replace keep the facts."""

    def __new__(cls, *record, facts: V4Facts | None = None):
        d = super().__new__(cls, *record)
        if facts is not None:
            d.__dict__.update(facts._asdict())
        return d

    def __setattr__(self, name, value):
        raise AttributeError(f"a decision is frozen ({name})")

    def _replace(self, **changes):
        facts = {name: changes.pop(name) for name in list(changes) if name in V4Facts._fields}
        new = V4Decision(*super()._replace(**changes), facts=V4Facts(**{**self.__dict__, **facts}))
        return new

    @property
    def v4(self) -> V4Facts:
        return V4Facts(**self.__dict__)


def effective_mode(auth_mode: str, allow_lan_access: bool) -> str:
    """`auto` is not a policy of its own: it follows allow_lan_access."""
    if auth_mode == "auto":
        return "all_except_health" if allow_lan_access else "off"
    return auth_mode


def is_health_path(path: str, profile: str = "faq") -> bool:
    """The exact path /healthz (v4: or /health); the query string does not count."""
    return path.partition("?")[0] in HEALTH_PATHS[profile]


def route_for(method: str, health: bool) -> str:
    """What answers an allowed request to a health path (GET and HEAD; any other
    method gets the route's 405) or to any other path (the upstream)."""
    if not health:
        return "upstream"
    return "health" if method in ("GET", "HEAD") else "method_not_allowed"


ROUTE_STATUS = {"preflight": 200, "health": 200, "method_not_allowed": 405, "upstream": None}


def decide(view: RequestView, policy: Policy, tokens=None, now: float | None = None) -> Decision:
    """The decision for one request. `tokens` (a tokens.TokenStore) and `now`
    (Unix seconds, for token expiry and curfew; the clock when None) are read
    by profile v4 only; without a store no user token exists."""
    if b"".join([value for _, value in view.headers]).translate(None, VALUE_BYTES):
        return _malformed(view, policy)  # a byte httparse refuses: one translate() finds it
    profile = policy.profile
    if profile == "v4":
        return _v4.decide(view, policy, tokens, now)
    mode = policy.auth_mode
    lan = policy.allow_lan_access
    effective = effective_mode(mode, lan)

    # CORS preflight passes whatever the mode, before anything else.
    if view.method == "OPTIONS":
        return Decision(True, "preflight", 200, mode, effective, lan, False, "preflight", None, None, (), None, None)
    route = route_for(view.method, is_health_path(view.path, profile))
    if effective == "off":
        reason = "auth_off"
    elif effective == "all_except_health" and route != "upstream":
        reason = "health_exempt"
    else:
        return _check_key(view, policy, route, mode, effective, lan)
    return Decision(True, route, ROUTE_STATUS[route], mode, effective, lan, False, reason,
                    None, None, (), None, None)


def _malformed(view: RequestView, policy: Policy) -> Decision:
    """The 400 the original gives before any middleware (httparse), whatever the mode or profile."""
    mode, lan = policy.auth_mode, policy.allow_lan_access
    name, reason = malformed_header(view.headers)
    record = (False, "bad_request", 400, mode, effective_mode(mode, lan), lan, False, reason,
              None, None, ((name, reason),), None, None)
    if policy.profile == "v4":
        surface = "proxy" if admin_path(view.path.partition("?")[0]) is None else "admin"
        return V4Decision(*record, facts=V4Facts(surface=surface))
    return Decision(*record)


def _check_key(view: RequestView, policy: Policy, route: str, mode: str, effective: str, lan: bool) -> Decision:
    """Auth is required: read the key from the first usable header and compare."""
    found = first_values(view.headers)
    winner, key, form, states = read_key(found)
    expected = policy.api_key.encode("ascii")
    if not expected:
        reason = "empty_api_key"
    elif key is None:
        reason = "non_ascii" if found else "missing"
    elif matches(key, expected):
        return Decision(True, route, ROUTE_STATUS[route], mode, effective, lan, True, "key_ok",
                        winner, form, states, None, key)
    else:
        reason = failure_reason(key, form)
    return Decision(False, "denied", 401, mode, effective, lan, True, reason,
                    winner, form, states, find_shadowed(states, found, expected) if expected else None, key)


# Last: v4.py reads the helpers above (its import of this module finds them defined).
from . import v4 as _v4  # noqa: E402
