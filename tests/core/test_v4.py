"""profile v4 = Antigravity Tools v4.5.8, rule for rule (pure; no mitmproxy here).

Every table row names the original's code it comes from, at tag v4.5.8
(docs/versions-and-v4.md tables them): auth.rs is
src-tauri/src/proxy/middleware/auth.rs, utdb is
src-tauri/src/modules/user_token_db.rs, server.rs and security.rs are under
src-tauri/src/proxy/. The version in brackets is the first release with the rule.
"""

import pytest

from authgate.rules import v4
from authgate.rules.common import V4Decision
from authgate.rules.decide import decide
from authgate.rules.tokens import TokenRow
from policy import KEY, Policy
from v4_harness import (
    BEARER,
    DENIAL_STATUS,
    NOW,
    PWD,
    SHAPE_REASONS,
    USER,
    FailingStore,
    expected_denial_status,
    req,
    run,
    store,
)

# ---- OPTIONS: tower-http's CorsLayer answers every OPTIONS first [v3.3.8; layer order server.rs:804]

@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/accounts", "/api/nope", "/internal/warmup", "/"])
@pytest.mark.parametrize("mode, api_key", [("strict", KEY), ("off", ""), ("all_except_health", "")])
def test_options_is_answered_by_cors_before_any_auth__cors_rs_6_21__auth_rs_52(path, mode, api_key):
    d = run("OPTIONS", path, ("Authorization", "Bearer wrong"), mode=mode, api_key=api_key, store=FailingStore())
    assert (d.allowed, d.route, d.status, d.reason, d.auth_required) == (True, "preflight", 200, "preflight", False)
    assert d.surface == ("admin" if path == "/api/accounts" else "proxy")


# ---- effective mode: security.rs:25-36 [v3.3.8]

@pytest.mark.parametrize("mode, lan, effective", [
    ("off", True, "off"), ("strict", False, "strict"), ("all_except_health", False, "all_except_health"),
    ("auto", False, "off"), ("auto", True, "all_except_health"),
])
def test_effective_mode__security_rs_25_36(mode, lan, effective):
    assert run(mode=mode, lan=lan).effective_mode == effective


# ---- the rule table: one row per rule, first match wins

RULES = [
    # id (the original's file:line [first version]), request, policy, expected (allowed, status, reason, route)
    pytest.param(("GET", "/v1/models"), {"mode": "off", "api_key": ""}, (True, None, "auth_off", "upstream"),
                 id="auth.rs:62-96 off passes everything, empty api_key too [v3.3.8]"),
    pytest.param(("POST", "/v1/messages", ("x-api-key", "wrong")), {"mode": "auto"},
                 (True, None, "auth_off", "upstream"),
                 id="auth.rs:62 auto without LAN is off: a wrong key passes [v4.0.8 default auto]"),
    pytest.param(("GET", "/healthz"), {"mode": "all_except_health"}, (True, 200, "health_paths_exempt", "health"),
                 id="auth.rs:43,98 all_except_health exempts /healthz [v3.3.8]"),
    pytest.param(("GET", "/health"), {"mode": "all_except_health"}, (True, 200, "health_paths_exempt", "health"),
                 id="auth.rs:43,98 all_except_health exempts /health [v4.0.2; route server.rs:443, v4.0.10]"),
    pytest.param(("GET", "/healthz?verbose=1"), {"mode": "all_except_health"},
                 (True, 200, "health_paths_exempt", "health"), id="auth.rs:40 uri().path(): the query is ignored"),
    pytest.param(("HEAD", "/health"), {"mode": "auto", "lan": True}, (True, 200, "health_paths_exempt", "health"),
                 id="server.rs:443 GET routes answer HEAD too"),
    pytest.param(("POST", "/healthz"), {"mode": "all_except_health"},
                 (True, 405, "health_paths_exempt", "method_not_allowed"),
                 id="auth.rs:98 exempt, then the route's 405 (server.rs:444 GET only)"),
    pytest.param(("GET", "/healthz/"), {"mode": "all_except_health"}, (False, 401, "missing", "denied"),
                 id="auth.rs:43 exact match: /healthz/ is not a health path"),
    pytest.param(("GET", "/HEALTH"), {"mode": "all_except_health"}, (False, 401, "missing", "denied"),
                 id="auth.rs:43 case-sensitive: /HEALTH is not a health path"),
    pytest.param(("GET", "/healthz"), {"mode": "strict"}, (False, 401, "missing", "denied"),
                 id="auth.rs:98 strict: /healthz needs the key (Q6)"),
    pytest.param(("GET", "/health", BEARER), {"mode": "strict"}, (True, 200, "key_ok", "health"),
                 id="auth.rs:157 strict: /health with the api_key is answered"),
    pytest.param(("POST", "/internal/warmup"), {"mode": "strict"}, (True, None, "internal_exempt", "upstream"),
                 id="auth.rs:44,103 /internal/ open in strict (Q5) [v4.1.0]"),
    pytest.param(("GET", "/internal/anything?x=1"), {"mode": "all_except_health", "api_key": ""},
                 (True, None, "internal_exempt", "upstream"),
                 id="auth.rs:103 /internal/ open before the empty-key check"),
    pytest.param(("GET", "/internal"), {"mode": "strict"}, (False, 401, "missing", "denied"),
                 id="auth.rs:44 /internal without the slash is not internal"),
    pytest.param(("GET", "/v1/models"), {"mode": "strict", "api_key": ""}, (False, 401, "empty_api_key", "denied"),
                 id="auth.rs:133-143 api_key and admin_password empty: 401 [v3.3.8]"),
    pytest.param(("GET", "/v1/models", BEARER), {"mode": "strict", "api_key": "", "password": ""},
                 (False, 401, "empty_api_key", "denied"), id="auth.rs:135 an empty admin_password is unset"),
    pytest.param(("GET", "/v1/models", ("x-api-key", "")), {"mode": "strict", "api_key": "", "password": PWD},
                 (True, None, "empty_key_accepted", "upstream"),
                 id="auth.rs:133-157 Q3 empty api_key + admin_password: an empty x-api-key passes [v4.0.2]"),
    pytest.param(("GET", "/v1/models", ("Authorization", "")), {"mode": "strict", "api_key": "", "password": PWD},
                 (True, None, "empty_key_accepted", "upstream"), id="auth.rs:157 Q3 an empty Authorization too"),
    pytest.param(("GET", "/v1/models"), {"mode": "strict", "api_key": "", "password": PWD},
                 (False, 401, "missing", "denied"), id="auth.rs:235 Q3 no key header at all: 401"),
    pytest.param(("GET", "/v1/models", ("x-api-key", "x")), {"mode": "strict", "api_key": "", "password": PWD},
                 (False, 403, "mismatch", "denied"), id="auth.rs:162 Q3 a non-empty key: the user tokens, 403"),
    pytest.param(("GET", "/v1/models", BEARER), {}, (True, None, "key_ok", "upstream"),
                 id="auth.rs:157 the api_key passes [v3.3.8]"),
    pytest.param(("GET", "/v1/models", ("x-goog-api-key", KEY)), {}, (True, None, "key_ok", "upstream"),
                 id="auth.rs:126-131 x-goog-api-key is read last [v3.3.43]"),
    pytest.param(("GET", "/v1/models", ("Authorization", f"Bearer {PWD}")), {"password": PWD},
                 (False, 403, "mismatch", "denied"), id="auth.rs:156-157 proxy routes never take the admin_password"),
    pytest.param(("GET", "/v1/models"), {}, (False, 401, "missing", "denied"),
                 id="auth.rs:235-236 a missing key: 401, empty body"),
    pytest.param(("GET", "/v1/models", (b"x-api-key", b"\xff")), {}, (False, 401, "non_ascii", "denied"),
                 id="auth.rs:124 to_str().ok(): non-ASCII counts as absent: 401"),
    pytest.param(("GET", "/v1/models", ("x-api-key", "sk-wrong")), {}, (False, 403, "mismatch", "denied"),
                 id="auth.rs:162-228 a wrong key: 403 token_rejected, not 401 (Q2) [v4.1.12]"),
    pytest.param(("GET", "/v1/models", ("Authorization", f"Bearer{KEY}")), {},
                 (False, 403, "bearer_no_space", "denied"),
                 id="auth.rs:119 Bearer<key> is compared whole, then the user tokens: 403"),
    pytest.param(("GET", "/v1/models", ("Authorization", "Bearer")), {}, (False, 403, "empty_value", "denied"),
                 id="auth.rs:119 'Bearer' (hyper trims the space) is a present key: 403"),
    pytest.param(("GET", "/v1/models", ("x-api-key", "")), {}, (False, 403, "empty_value", "denied"),
                 id="auth.rs:162 an empty key is present: 403 (Q2)"),
    pytest.param(("GET", "/v1/models", ("Authorization", "Bearer sk-old"), ("x-api-key", KEY)), {},
                 (False, 403, "mismatch", "denied"), id="auth.rs:115-131 a wrong Authorization hides x-api-key (Q12)"),
    pytest.param(("GET", "/v1/models", (b"Authorization", b"Bearer \xe2\x80\x9c"), ("x-api-key", KEY)), {},
                 (True, None, "key_ok", "upstream"), id="auth.rs:118 a non-ASCII Authorization is skipped (Q11)"),
    pytest.param(("POST", "/api/health"), {"mode": "strict"}, (True, 405, "admin_health", "method_not_allowed"),
                 id="auth.rs:109 /api/health public in strict, then the route's 405"),
]


@pytest.mark.parametrize("request_, policy, expected", RULES)
def test_rule_table(request_, policy, expected):
    d = run(*request_, **policy)
    assert (d.allowed, d.status, d.reason, d.route) == expected
    assert isinstance(d, V4Decision) and d.surface in ("proxy", "admin")
    if not d.allowed:
        assert d.status == expected_denial_status(d)


# ---- health paths: the original's exact list (auth.rs:43)

def test_health_paths_are_the_originals():
    assert v4.HEALTH == {"/healthz", "/api/health", "/health"}


# ---- /internal/: a prefix, and the gate's one hardening (dot segments get no exemption)

@pytest.mark.parametrize("path, exempt", [
    ("/internal/warmup", True),
    ("/internal/", True),
    ("/internal/...", True),
    ("/internal/a..b/.hidden", True),
    ("/internal/warmup?next=/../v1/models", True),  # the query is not the path
    ("/internal/../v1/models", False),
    ("/internal/./warmup", False),
    ("/internal/a/..", False),
    ("/internal/%2e%2e/v1/models", False),
    ("/internal/%2E%2E/v1/models", False),
    ("/internal/%2e/warmup", False),
    ("/internal/..%2fv1/models", False),
    ("/internal/..%2Fv1/models", False),
    ("/internal/%252e%252e/v1/models", False),  # encoded twice
    ("/internal/..\\v1/models", False),
    ("/internal/..%5cv1/models", False),
    # issue #20: dot segments in any encoding, and empty segments
    ("/internal/..;/v1/models", False),
    ("/internal/..%00/v1/models", False),
    ("/internal/..%20/v1/models", False),
    ("/internal/%c0%ae%c0%ae/v1/models", False),
    ("/internal/\uff0e\uff0e/v1/models", False),
    ("/internal//v1/models", False),
])
def test_internal_prefix_and_dot_segments(path, exempt):
    d = run("POST", path, mode="strict")
    assert d.allowed is exempt
    if exempt:
        assert d.reason == "internal_exempt" and "internal_dot_segments" not in d.notes
    else:  # then the ordinary rules: here no key, so 401
        assert (d.status, d.reason) == (401, "missing") and "internal_dot_segments" in d.notes


def test_internal_dot_segments_in_off_mode_still_pass():
    # off lets everything through before the /internal/ check (auth.rs:62 comes first)
    d = run("GET", "/internal/../v1/models", mode="off")
    assert d.allowed and d.reason == "auth_off" and d.notes == ()


def test_every_denial_reason_has_words_and_a_status():
    from authgate.words import explain
    for reason in (*DENIAL_STATUS, *SHAPE_REASONS):
        for lang in explain.LANGUAGES:
            r = explain.CATALOGS[lang].reasons[reason]
            assert r.label and r.why and r.fix, (lang, reason)


# ---- the decision stays pure and frozen

def test_v4_decision_is_frozen_and_keeps_the_record_shape():
    d = run("GET", "/v1/models", ("x-api-key", USER), store=store())
    with pytest.raises(AttributeError):
        d.token = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        d.allowed = False  # type: ignore[misc]
    assert len(d) == 13 and d.v4.surface == "proxy"
    assert d._replace(status=201).token == "ok"


def test_faq_decisions_carry_none_of_it():
    d = decide(req("GET", "/v1/models", ("x-api-key", "sk-wrong")), Policy(profile="faq"), store(), NOW)
    assert type(d).__name__ == "Decision" and d.status == 401
    assert (d.surface, d.token, d.notes, d.bind, d.log) == (None, None, (), None, None)
    # faq never reads the v4 fields: a policy without admin_password works
    from types import SimpleNamespace
    faq = SimpleNamespace(auth_mode="strict", allow_lan_access=False, api_key=KEY, profile="faq")
    assert decide(req("GET", "/", BEARER), faq).allowed


def test_now_defaults_to_the_clock():
    row = TokenRow("t1", USER, "alice", expires_type="day", expires_at=1)
    assert decide(req("GET", "/", ("x-api-key", USER)), Policy(profile="v4"), store(row)).token == "expired"
