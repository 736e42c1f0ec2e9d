"""profile faq: the auth layer as the FAQ describes it (v3.3.50), pure.

`decide(view, policy)` reproduces Antigravity Tools' `auth_middleware()`:
OPTIONS bypass, effective mode (auto through allow_lan_access), the /healthz
exemption, denial when api_key is empty, then the key read from the first
present header among Authorization, x-api-key, x-goog-api-key (read as
key_headers.py reads it). Plain values in, a frozen record out, so it is
table-tested row by row and costs microseconds per request.
"""

from __future__ import annotations

from authgate.rules.common import ROUTE_STATUS, Decision, Policy, RequestView, effective_mode, is_health_path, route_for
from authgate.rules.key_headers import failure_reason, find_shadowed, first_values, matches, read_key


def decide(view: RequestView, policy: Policy) -> Decision:
    """The decision for one well-formed request (decide.py has refused the malformed ones)."""
    mode = policy.auth_mode
    lan = policy.allow_lan_access
    effective = effective_mode(mode, lan)

    # CORS preflight passes whatever the mode, before anything else.
    if view.method == "OPTIONS":
        return Decision(True, "preflight", 200, mode, effective, lan, False, "preflight", None, None, (), None, None)
    route = route_for(view.method, is_health_path(view.path, "faq"))
    if effective == "off":
        reason = "auth_off"
    elif effective == "all_except_health" and route != "upstream":
        reason = "health_exempt"
    else:
        return _check_key(view, policy, route, mode, effective, lan)
    return Decision(True, route, ROUTE_STATUS[route], mode, effective, lan, False, reason,
                    None, None, (), None, None)



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
