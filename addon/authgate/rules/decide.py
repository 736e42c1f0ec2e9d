"""The decision on one request, whichever profile (pure): the entry point of the rules.

First what the original's HTTP parser refuses before any middleware (a 400, in
every mode and profile), then the profile's own rules: faq.py (the FAQ,
v3.3.50) or v4.py (v4.5.8, with the user-token store and the time).
"""

from __future__ import annotations

from authgate.rules import faq, v4
from authgate.rules.common import Decision, Policy, RequestView, V4Decision, V4Facts, effective_mode
from authgate.rules.key_headers import VALUE_BYTES, malformed_header
from authgate.rules.v4_admin import admin_path


def decide(view: RequestView, policy: Policy, tokens=None, now: float | None = None) -> Decision:
    """The decision for one request. `tokens` (a tokens.TokenStore) and `now`
    (Unix seconds, for token expiry and curfew; the clock when None) are read
    by profile v4 only; without a store no user token exists."""
    if b"".join([value for _, value in view.headers]).translate(None, VALUE_BYTES):
        return _malformed(view, policy)  # a byte httparse refuses: one translate() finds it
    if policy.profile == "v4":
        return v4.decide(view, policy, tokens, now)
    return faq.decide(view, policy)


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
