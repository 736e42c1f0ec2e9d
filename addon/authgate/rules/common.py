"""What both profiles' rules share (pure): the request as the rules see it, the
decision record, the modes and the effective mode, the health paths and routes.

faq.py (the FAQ's auth layer, v3.3.50) and v4.py (v4.5.8) are two peers built
on these and on key_headers.py; decide.py picks one by the policy's profile.
No mitmproxy import.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

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


class RequestView(NamedTuple):  # immutable, and built for every request: a NamedTuple is cheaper than a frozen dataclass
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
