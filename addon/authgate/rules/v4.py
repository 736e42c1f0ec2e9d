"""profile v4: Antigravity Tools v4.5.8's auth layer, rule for rule (pure).

The rules come from the original's code at tag v4.5.8 (commit 9b3dd14f);
docs/versions-and-v4.md tables them, each with its file:line and the release it
came from. Line numbers below are at that tag:
auth.rs is src-tauri/src/proxy/middleware/auth.rs, server.rs is
src-tauri/src/proxy/server.rs, user_token_db.rs is src-tauri/src/modules/.

What the original's layers do before and around auth_middleware, and what
this module reproduces:

* CORS (server.rs:804, cors.rs:6-21) answers **every** OPTIONS with 200
  before anything else: "preflight", on every path.
* Routing (server.rs:794-796): `/api/<admin route>` is the admin router,
  nested with StripPrefix, so admin_auth_middleware (force_strict) sees the
  path without `/api` (v4_admin.py knows the routes). Any other path,
  `/api/<unknown>` included, is a proxy route or the proxy router's
  fallback, judged by the proxy rules (Q7).
* auth_middleware_internal (auth.rs:33-238), first match wins; see decide().
* user_token_db.rs validate_token (l.591-670): tokens.validate().
* monitor.rs records the token's IP after the response (l.250-266, 355):
  Decision.bind says which binding; the adapter records it.

Not modelled: service_status's 503 (the proxy stopped), the ip_filter's
403 ip_blocked, and the SPA fallback of a `dist` directory (assumed absent).

Two deliberate differences, both because the gate forwards what passes to an
upstream that may normalise the path (paths.py says how), where the original
matches raw paths and answers 404 (axum does not normalise):

* A path starting with `/internal/` that holds a dot segment or an empty one,
  in any encoding (`..`, `%2e%2e`, `..;`, `..%00`, `%c0%ae`, fullwidth dots,
  `//`), does **not** get the /internal/ exemption (auth.rs:102-106 gives it):
  the ordinary rules judge it (note `internal_dot_segments`).
* A path that is not an admin route as sent but whose normal form is under
  `/api/` (`/api/x/../accounts`, `/api/./accounts`, `/api//accounts`,
  `/api/accounts/`, `/api/%61ccounts`) is judged as an admin route: the admin
  credential, whatever the mode, no health exemption (note
  `admin_normalised`). The original sends it to the proxy fallback (404).
"""

from __future__ import annotations

import time

from authgate.rules import paths
from authgate.rules import tokens as _tokens
from authgate.rules.common import (
    HEALTH_PATHS,
    ROUTE_STATUS,
    Decision,
    RequestView,
    V4Decision,
    V4Facts,
    effective_mode,
    route_for,
)
from authgate.rules.key_headers import (
    KEY_HEADERS,
    NOT_VISIBLE_ASCII,
    failure_reason,
    find_shadowed,
    first_values,
    matches,
    read_key,
)
from authgate.rules.v4_admin import admin_path

VERSION = "4.5.8"  # the health answer's default "version" (server.rs:915, CARGO_PKG_VERSION)
# auth.rs:43, exact matches on the raw path without its query.
HEALTH = frozenset(("/healthz", "/api/health", "/health"))
INTERNAL_PREFIX = "/internal/"  # auth.rs:44: the trailing slash is needed
# The original's log lines, word for word.
EMPTY_KEY_LOG = "Proxy auth is enabled but api_key is empty; denying request"  # auth.rs:141
ADMIN_EMPTY_LOG = ("Admin auth is required but both api_key and admin_password are empty; "
                   "denying request")  # auth.rs:138
NO_CLIENT_IP = "127.0.0.1"  # auth.rs:179: the TCP peer is never used


def _header(headers, wanted: bytes) -> bytes | None:
    """The first value of a header (HeaderMap::get), None when absent or not visible ASCII (to_str)."""
    for name, value in headers:
        if name.lower() == wanted:
            return None if NOT_VISIBLE_ASCII.search(value) else value
    return None


def client_ip(headers) -> str:
    """The IP the user-token check uses (auth.rs:167-179), and monitor.rs records:
    X-Forwarded-For's first comma item, trimmed; else X-Real-IP as it is;
    else the literal 127.0.0.1. The connection's own address is never used."""
    xff = _header(headers, b"x-forwarded-for")
    if xff is not None:
        return xff.split(b",", 1)[0].strip(b" \t").decode("ascii")
    real = _header(headers, b"x-real-ip")
    if real is not None:
        return real.decode("ascii")
    return NO_CLIENT_IP


def off_mode_key(headers) -> str | None:
    """The key off mode looks up to tag a user token (auth.rs:65-75): Authorization
    (Bearer-stripped, else whole), else x-api-key. Not x-goog-api-key."""
    key = read_key(first_values(headers), KEY_HEADERS[:2])[1]
    return None if key is None else key.decode("ascii")


def records_usage(target: str) -> bool:
    """Whether monitor.rs records a tagged token's use and IP for this request
    target (path and query): it skips event_logging, /api/ and /internal/ (l.355)."""
    return not ("event_logging" in target or "/api/" in target or target.startswith(INTERNAL_PREFIX))


_FACT_DEFAULTS = V4Facts(surface="proxy")._asdict()
_tuple_new = tuple.__new__


def _decision(*record, **facts) -> Decision:
    """The faq record's 13 fields, positional, and V4Facts by keyword (what
    V4Decision(*record, facts=V4Facts(**facts)) builds, without the detour)."""
    d = _tuple_new(V4Decision, record)
    vars(d).update(_FACT_DEFAULTS, **facts)
    return d


def decide(view: RequestView, policy, store=None, now: float | None = None) -> Decision:
    """v4.5.8's auth for one request. `store`: a tokens.TokenStore (None: no user
    tokens exist). `now`: Unix seconds for expiry and curfew (None: the clock)."""
    method = view.method
    target = view.path
    path = target.partition("?")[0]  # request.uri().path(): raw, no query
    mode = policy.auth_mode
    lan = policy.allow_lan_access
    effective = effective_mode(mode, lan)  # security.rs:25-36
    inner = admin_path(path)
    hardened = inner is None and paths.under_admin(path)  # may become an admin route upstream
    if method == "OPTIONS":  # CorsLayer answers first (tower-http cors/mod.rs:630); auth.rs:52 too
        return _decision(True, "preflight", 200, mode, effective, lan, False, "preflight", None, None, (), None, None,
                         surface="proxy" if inner is None and not hardened else "admin")
    if inner is not None:
        return _admin(view, policy, inner, mode, effective, lan)
    if hardened:
        return _admin(view, policy, None, mode, effective, lan, ("admin_normalised",))

    route = route_for(method, path in HEALTH_PATHS["v4"])  # server.rs:443-444; GET, so HEAD too
    notes: tuple[str, ...] = ("api_fallback",) if path == "/api" or path.startswith("/api/") else ()
    if effective == "off":  # auth.rs:62-96
        return _off(view, store, route, mode, effective, lan, notes)
    if effective == "all_except_health" and path in HEALTH:  # auth.rs:98
        reason = "health_paths_exempt"
    elif path.startswith(INTERNAL_PREFIX) and (paths.plain(path) or not paths.unsafe(path)):  # auth.rs:103
        reason = "internal_exempt"
    else:
        if path.startswith(INTERNAL_PREFIX):
            notes += ("internal_dot_segments",)
        return _proxy_key(view, policy, store, now, route, mode, effective, lan, notes)
    return _decision(True, route, ROUTE_STATUS[route], mode, effective, lan, False, reason, None, None, (), None, None,
                     surface="proxy", notes=notes)


def _off(view, store, route, mode, effective, lan, notes) -> Decision:
    """Off: everything passes; a key that is a stored user token is tagged, unchecked (Q13)."""
    token = token_id = token_user = ip = bind = None
    key = off_mode_key(view.headers) if store is not None else None
    if key is not None:
        try:
            row = store.lookup(key)
        except _tokens.TokenStoreError:  # `if let Ok(Some(..))`: a failing store is ignored
            row = None
        if row is not None:
            token, token_id, token_user = "tagged", row.id, row.username
            ip = client_ip(view.headers)
            bind = (row.id, ip) if records_usage(view.path) else None
            notes += ("off_tagged",) + (() if row.enabled else ("enabled_ignored",))
    return _decision(True, route, ROUTE_STATUS[route], mode, effective, lan, False, "auth_off", None, None, (), None,
                     None, surface="proxy", token=token, token_id=token_id, token_user=token_user, client_ip=ip,
                     bind=bind, notes=notes)


def _proxy_key(view, policy, store, now, route, mode, effective, lan, notes) -> Decision:
    """auth.rs:114-237 with force_strict=false."""
    found = first_values(view.headers)
    winner, key, form, states = read_key(found)  # l.115-131
    api_key = policy.api_key
    password = getattr(policy, "admin_password", None) or ""

    def deny(status, reason, **extra):
        return _decision(False, "denied", status, mode, effective, lan, True, reason, winner, form, states,
                         extra.pop("shadowed", None), key, surface="proxy", credential="api_key",
                         notes=extra.pop("notes", notes), **extra)

    if not api_key and not password:  # l.133-143
        return deny(401, "empty_api_key", log=("error", EMPTY_KEY_LOG))
    expected = api_key.encode("utf-8", "surrogateescape")
    if key is not None and matches(key, expected):  # l.157: only the api_key, never the admin_password
        # Q3: an empty api_key with an admin_password set lets an empty key header through.
        return _decision(True, route, ROUTE_STATUS[route], mode, effective, lan, True,
                         "key_ok" if api_key else "empty_key_accepted", winner, form, states, None, key,
                         surface="proxy", credential="api_key", notes=notes)
    if key is None:  # l.235-236
        return deny(401, "non_ascii" if found else "missing")
    # l.162-234: a present key that is not the api_key, however wrong or empty: the user tokens.
    shape = failure_reason(key, form)
    shadowed = find_shadowed(states, found, expected) if api_key else None
    ip = client_ip(view.headers)
    if store is None:
        return deny(403, shape, shadowed=shadowed, token="unknown", client_ip=ip, rejection=_tokens.INVALID_TOKEN,
                    log=("warn", f"UserToken rejected: {_tokens.INVALID_TOKEN}"), notes=notes + ("no_token_store",))
    token = key.decode("ascii")  # visible ASCII (tab included): to_str() accepted it
    when = time.time() if now is None else now
    try:
        check = _tokens.validate(store, token, ip, when)
    except _tokens.TokenStoreError as e:  # l.230-233
        return deny(500, "token_store_error", shadowed=shadowed, token="store_error", client_ip=ip,
                    log=("error", f"UserToken validation error: {e}"))
    row = check.row
    if check.verdict != "ok":  # l.211-229
        enabled = () if row is None or row.enabled else ("enabled_ignored",)
        return deny(403, shape if check.verdict == "unknown" else f"token_{check.verdict}", shadowed=shadowed,
                    token=check.verdict, token_id=row and row.id, token_user=row and row.username, client_ip=ip,
                    rejection=check.message, log=("warn", f"UserToken rejected: {check.message}"),
                    notes=notes + (("token_unknown",) if row is None else enabled))
    try:  # l.185-209: a second lookup for the identity; if it fails now, 401
        again = store.lookup(token)
    except _tokens.TokenStoreError:
        again = None
    if again is None:
        return deny(401, "token_vanished", shadowed=shadowed, token="vanished", token_id=row.id,
                    token_user=row.username, client_ip=ip)
    return _decision(True, route, ROUTE_STATUS[route], mode, effective, lan, True, "token_ok", winner, form, states,
                     None, key, surface="proxy", token="ok", token_id=again.id, token_user=again.username, client_ip=ip,
                     bind=(again.id, ip) if records_usage(view.path) else None, credential="api_key",
                     notes=notes + (() if again.enabled else ("enabled_ignored",)))


def _admin(view, policy, inner, mode, effective, lan, notes=()) -> Decision:
    """admin_auth_middleware (force_strict=true) on the stripped path: the mode is ignored.
    inner None: a path the gate judges as an admin route (note admin_normalised), never exempt."""
    route = route_for(view.method, inner == "/health")
    if inner in HEALTH:  # auth.rs:109: only "/health" can match after the strip
        return _decision(True, route, ROUTE_STATUS[route], mode, effective, lan, False, "admin_health", None, None, (),
                         None, None, surface="admin")
    found = first_values(view.headers)
    winner, key, form, states = read_key(found)
    api_key = policy.api_key
    password = getattr(policy, "admin_password", None) or ""
    credential = "admin_password" if password else "api_key"

    def deny(reason, shadowed=None, log=None):
        return _decision(False, "denied", 401, mode, effective, lan, True, reason, winner, form, states, shadowed,
                         key, surface="admin", credential=credential, log=log, notes=notes)

    if not api_key and not password:  # l.133-139
        return deny("admin_empty_credentials", log=("error", ADMIN_EMPTY_LOG))
    expected = (password or api_key).encode("utf-8", "surrogateescape")  # l.146-154
    if key is not None and matches(key, expected):
        return _decision(True, route, ROUTE_STATUS[route], mode, effective, lan, True,
                         "admin_password_ok" if password else "admin_key_ok", winner, form, states, None, key,
                         surface="admin", credential=credential, notes=notes)
    if key is None:
        return deny("non_ascii" if found else "missing")
    reason = failure_reason(key, form)  # l.162, 235: never the user tokens, always 401
    if password:
        if api_key and matches(key, api_key.encode("utf-8", "surrogateescape")):
            reason = "admin_api_key_refused"  # Q4
        elif reason == "mismatch":
            reason = "admin_password_mismatch"
    return deny(reason, find_shadowed(states, found, expected))
