"""profile v4 = Antigravity Tools v4.5.8, rule for rule (pure; no mitmproxy here).

Every table row names the original's code it comes from, at tag v4.5.8
(/work/notes/v4-rules.md quotes it): auth.rs is
src-tauri/src/proxy/middleware/auth.rs, utdb is
src-tauri/src/modules/user_token_db.rs, server.rs and security.rs are under
src-tauri/src/proxy/. The version in brackets is the first release with the rule.
"""

import pytest

from authgate import v4
from authgate.decision import RequestView, V4Decision, decide
from authgate.tokens import (CURFEW, EXPIRED, INVALID_TOKEN, IP_LIMIT, MemoryTokenStore, TokenRow,
                             TokenStoreError)
from policy import KEY, Policy

NOW = 1767225600  # 2026-01-01 00:00:00 UTC = 08:00 Beijing time
PWD = "admin-pass-123"
USER = "sk-user0123456789abcdef0123456789ab"
ROW = TokenRow(id="t1", token=USER, username="alice")


def req(method="GET", path="/v1/models", *headers):
    return RequestView(method, path, tuple((n.encode("latin-1") if isinstance(n, str) else n,
                                            v.encode("latin-1") if isinstance(v, str) else v) for n, v in headers))


def run(method="GET", path="/v1/models", *headers, mode="strict", lan=False, api_key=KEY, password=None,
        store=None, now=NOW):
    return decide(req(method, path, *headers), Policy(mode, lan, api_key, "v4", password), store, now)


def store(*rows, recorded=None):
    return MemoryTokenStore(rows or (ROW,), recorded)


class FailingStore:
    """A user_tokens.db that cannot be read (missing, locked, a NULL where the app expects a value)."""

    def lookup(self, token):
        raise TokenStoreError("Failed to open database: unable to open database file")

    def is_bound(self, token_id, ip):
        return False

    def ip_count(self, token_id):
        return 0

    def record(self, token_id, ip):
        raise AssertionError("nothing to record")


class VanishingStore(MemoryTokenStore):
    """The row is there for validate_token, gone at auth.rs's second lookup."""

    def __init__(self):
        super().__init__([ROW])
        self.calls = 0

    def lookup(self, token):
        self.calls += 1
        return super().lookup(token) if self.calls == 1 else None


BEARER = ("Authorization", f"Bearer {KEY}")


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


def expected_denial_status(d):
    if d.reason in v4.SHAPE_REASONS:
        return 401 if d.surface == "admin" else 403
    return v4.DENIAL_STATUS[d.reason]


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


# ---- admin routes: nested at /api with StripPrefix (server.rs:795; axum 0.7.9 PathRouter::nest) [v4.0.0]

@pytest.mark.parametrize("path, inner", [
    pytest.param("/api/health", "/health", id="server.rs:535"),
    pytest.param("/api/accounts", "/accounts", id="static"),
    pytest.param("/api/accounts/abc", "/accounts/abc", id=":accountId"),
    pytest.param("/api/accounts/abc/device-versions/v1/restore", "/accounts/abc/device-versions/v1/restore",
                 id="two params"),
    pytest.param("/api/user-tokens/42/renew", "/user-tokens/42/renew", id="user-tokens/:id/renew"),
    pytest.param("/api/config?x=1".partition("?")[0], "/config", id="config"),
    pytest.param("/api/healthz", None, id="no /healthz route under /api (Q6)"),
    pytest.param("/api/health/", None, id="trailing slash is another path"),
    pytest.param("/api/accounts//bind-device", None, id="an empty param segment does not match"),
    pytest.param("/api/Accounts", None, id="case-sensitive"),
    pytest.param("/api", None, id="/api alone"),
    pytest.param("/api/", None, id="/api/ alone"),
    pytest.param("/api/%68ealth", None, id="raw, not percent-decoded"),
    pytest.param("/v1/api/health", None, id="not under /api"),
])
def test_admin_route_matching(path, inner):
    assert v4.admin_path(path) == inner


def test_admin_routes_are_the_126_of_v4_5_8():
    assert len(ADMIN := v4.ADMIN_ROUTES) == 126 and len(set(ADMIN)) == 126
    assert ADMIN[0] == "/health" and ADMIN[-1] == "/auth/url"
    for route in ("/config", "/user-tokens", "/user-tokens/:id", "/security/whitelist", "/proxy/api-key/generate"):
        assert route in ADMIN


ADMIN_RULES = [
    pytest.param(("GET", "/api/health"), {"mode": "strict", "api_key": ""}, (True, 200, "admin_health"),
                 id="auth.rs:109 /api/health public in every mode, empty credentials too [v4.0.2]"),
    pytest.param(("HEAD", "/api/health"), {"mode": "strict"}, (True, 200, "admin_health"), id="auth.rs:109 HEAD"),
    pytest.param(("GET", "/api/accounts"), {"mode": "off"}, (False, 401, "missing"),
                 id="auth.rs:107-112 admin routes need auth in off mode too [v4.2.2]"),
    pytest.param(("GET", "/api/accounts"), {"mode": "auto"}, (False, 401, "missing"),
                 id="auth.rs:107-112 and with auto on loopback [v4.2.2]"),
    pytest.param(("GET", "/api/accounts", BEARER), {"mode": "off"}, (True, None, "admin_key_ok"),
                 id="auth.rs:150-153 no admin_password: the api_key [v4.0.2]"),
    pytest.param(("GET", "/api/accounts", ("x-api-key", PWD)), {"password": PWD}, (True, None, "admin_password_ok"),
                 id="auth.rs:149 the admin_password when set [v4.0.2]"),
    pytest.param(("GET", "/api/accounts", BEARER), {"password": PWD}, (False, 401, "admin_api_key_refused"),
                 id="auth.rs:149 the api_key is refused when a password is set (Q4)"),
    pytest.param(("GET", "/api/accounts", ("x-api-key", "nope")), {"password": PWD},
                 (False, 401, "admin_password_mismatch"), id="auth.rs:162,235 a wrong password: 401, never 403"),
    pytest.param(("GET", "/api/accounts", ("x-api-key", "nope")), {}, (False, 401, "mismatch"),
                 id="auth.rs:152 no password, a wrong key: 401"),
    pytest.param(("GET", "/api/accounts", BEARER), {"password": ""}, (True, None, "admin_key_ok"),
                 id="auth.rs:149-150 Some(\"\") is unset: the api_key"),
    pytest.param(("GET", "/api/accounts", ("x-api-key", PWD)), {"api_key": "", "password": PWD},
                 (True, None, "admin_password_ok"), id="auth.rs:133-149 empty api_key, password set"),
    pytest.param(("GET", "/api/accounts", ("x-api-key", "")), {"api_key": "", "password": PWD},
                 (False, 401, "empty_value"), id="auth.rs:149 no Q3 on admin routes: empty != password"),
    pytest.param(("GET", "/api/accounts", BEARER), {"api_key": ""}, (False, 401, "admin_empty_credentials"),
                 id="auth.rs:133-139 both empty: 401 and its log line [v4.0.2]"),
    pytest.param(("GET", "/api/accounts", ("x-api-key", USER)), {"mode": "off"}, (False, 401, "mismatch"),
                 id="auth.rs:162 user tokens are never accepted on admin routes (Q4)"),
    pytest.param(("GET", "/api/accounts", ("Authorization", f"Bearer{KEY}")), {}, (False, 401, "bearer_no_space"),
                 id="auth.rs:119 Bearer<key> on an admin route: 401"),
]


@pytest.mark.parametrize("request_, policy, expected", ADMIN_RULES)
def test_admin_rule_table(request_, policy, expected):
    d = run(*request_, store=store(), **policy)
    assert (d.allowed, d.status, d.reason) == expected
    assert d.surface == "admin" and d.token is None and d.bind is None
    if not d.allowed:
        assert d.status == expected_denial_status(d)
    if d.reason == "admin_empty_credentials":
        assert d.log == ("error", "Admin auth is required but both api_key and admin_password are empty; "
                                  "denying request")
    if d.auth_required:
        assert d.credential == ("admin_password" if policy.get("password") else "api_key")


@pytest.mark.parametrize("path", ["/api/healthz", "/api/health/", "/api/nope", "/api/accounts/"])
def test_unknown_api_paths_take_the_proxy_rules__q7(path):
    # server.rs:796 merge: the proxy router's fallback (ip_filter, auth, monitor), with the full path
    d = run("GET", path, ("x-api-key", "sk-wrong"), mode="all_except_health", store=store())
    assert (d.surface, d.status, d.reason, d.token) == ("proxy", 403, "mismatch", "unknown")
    assert "api_fallback" in d.notes
    assert run("GET", path, mode="off").allowed  # and off mode lets them through


def test_empty_credentials_log_lines_are_the_originals():
    d = run(api_key="")
    assert d.log == ("error", "Proxy auth is enabled but api_key is empty; denying request")  # auth.rs:141
    assert run("GET", "/api/config", api_key="").log[1] == v4.ADMIN_EMPTY_LOG  # auth.rs:138


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


# ---- the user-token path (auth.rs:162-234, utdb validate_token l.591-670)

def test_unknown_token_is_403_with_the_exact_message():
    d = run("GET", "/v1/models", ("x-api-key", "sk-nobody"), store=store())
    assert (d.status, d.token, d.rejection) == (403, "unknown", "Invalid token. Please check your API key.")
    assert d.log == ("warn", "UserToken rejected: Invalid token. Please check your API key.")  # auth.rs:213
    assert "token_unknown" in d.notes and d.bind is None


def test_without_a_store_no_user_token_exists():
    d = run("GET", "/v1/models", ("x-api-key", USER))
    assert (d.status, d.reason, d.token, d.rejection) == (403, "mismatch", "unknown", INVALID_TOKEN)
    assert "no_token_store" in d.notes


def test_token_lookup_is_exact_and_case_sensitive():
    assert run("GET", "/", ("x-api-key", USER), store=store()).reason == "token_ok"
    assert run("GET", "/", ("x-api-key", USER.upper()), store=store()).token == "unknown"
    assert run("GET", "/", ("Authorization", f"Bearer {USER}"), store=store()).reason == "token_ok"
    assert run("GET", "/", ("x-goog-api-key", USER), store=store()).reason == "token_ok"  # l.126-131 all three


@pytest.mark.parametrize("row, now, verdict", [
    pytest.param(TokenRow("t1", USER, "alice", expires_type="day", expires_at=NOW - 1), NOW, "expired",
                 id="utdb:598 expires_at < now"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="day", expires_at=NOW), NOW, "ok",
                 id="utdb:598 strict <: valid in the second itself (Q16)"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="custom", expires_at=NOW - 1), NOW + 0.999, "expired",
                 id="utdb:598 Utc::now().timestamp(): whole seconds"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="never", expires_at=NOW - 10 ** 6), NOW, "ok",
                 id="utdb:596 never ignores expires_at (Q16) [v4.4.8]"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="Never", expires_at=NOW - 1), NOW, "expired",
                 id="utdb:596 'never' compared case-sensitively"),
    pytest.param(TokenRow("t1", USER, "alice", expires_type="week", expires_at=None), NOW, "ok",
                 id="utdb:597 a NULL expires_at never expires"),
])
def test_expiry(row, now, verdict):
    d = run("GET", "/v1/models", ("x-api-key", USER), store=store(row), now=now)
    assert d.token == verdict
    if verdict == "expired":
        assert (d.status, d.reason, d.rejection) == (403, "token_expired", EXPIRED)
        assert d.rejection == "Your token has expired. Please contact the administrator to renew it."


LIMITED = TokenRow("t1", USER, "alice", max_ips=2, bound_ips=("10.0.0.1", "10.0.0.2"))


@pytest.mark.parametrize("row, headers, verdict, ip", [
    pytest.param(LIMITED, [("X-Forwarded-For", "10.0.0.3")], "ip_limit", "10.0.0.3",
                 id="utdb:621-633 a new IP over the limit"),
    pytest.param(LIMITED, [("X-Forwarded-For", "10.0.0.2")], "ok", "10.0.0.2", id="utdb:621 a bound IP passes"),
    pytest.param(TokenRow("t1", USER, "alice", max_ips=1, bound_ips=("10.0.0.1", "10.0.0.2")),
                 [("X-Forwarded-For", "10.0.0.1")], "ok", "10.0.0.1",
                 id="utdb:621 bound IPs pass even over a lowered max_ips"),
    pytest.param(TokenRow("t1", USER, "alice", max_ips=3, bound_ips=("10.0.0.1", "10.0.0.2")),
                 [("X-Forwarded-For", "10.0.0.9")], "ok", "10.0.0.9", id="utdb:631 under the limit"),
    pytest.param(TokenRow("t1", USER, "alice", max_ips=0, bound_ips=("a", "b", "c")),
                 [("X-Forwarded-For", "10.0.0.9")], "ok", "10.0.0.9", id="utdb:611 max_ips 0: no limit"),
    pytest.param(LIMITED, [("X-Forwarded-For", " 10.0.0.1 , 10.0.0.3")], "ok", "10.0.0.1",
                 id="auth.rs:171 X-Forwarded-For's first item, trimmed"),
    pytest.param(LIMITED, [("X-Forwarded-For", ", 10.0.0.1")], "ip_limit", "",
                 id="auth.rs:171 an empty first item is the IP ''"),
    pytest.param(LIMITED, [("X-Real-IP", "10.0.0.2")], "ok", "10.0.0.2", id="auth.rs:173-177 else X-Real-IP"),
    pytest.param(LIMITED, [("X-Real-IP", "10.0.0.2"), ("X-Forwarded-For", "10.0.0.5")], "ip_limit", "10.0.0.5",
                 id="auth.rs:167 X-Forwarded-For comes first, whatever the order"),
    pytest.param(LIMITED, [(b"X-Forwarded-For", b"10.0.0.1\xff"), ("X-Real-IP", "10.0.0.2")], "ok", "10.0.0.2",
                 id="auth.rs:170 a non-ASCII X-Forwarded-For is skipped"),
    pytest.param(LIMITED, [("X-Forwarded-For", "10.0.0.5"), ("X-Forwarded-For", "10.0.0.1")], "ip_limit",
                 "10.0.0.5", id="auth.rs:169 HeaderMap::get: the first X-Forwarded-For only"),
    pytest.param(LIMITED, [], "ip_limit", "127.0.0.1", id="auth.rs:179 no header: the literal 127.0.0.1 (Q14)"),
    pytest.param(TokenRow("t1", USER, "alice", max_ips=1, bound_ips=("127.0.0.1",)), [], "ok", "127.0.0.1",
                 id="auth.rs:179 every header-less client is 127.0.0.1"),
])
def test_ip_limit_and_client_ip(row, headers, verdict, ip):
    d = run("GET", "/v1/models", ("x-api-key", USER), *headers, store=store(row))
    assert (d.token, d.client_ip) == (verdict, ip)
    if verdict == "ip_limit":
        assert (d.status, d.reason) == (403, "token_ip_limit")
        count = len(row.bound_ips)
        assert d.rejection == IP_LIMIT.format(count=count, max_ips=row.max_ips) == (
            f"IP limit reached ({count}/{row.max_ips}). Please contact the administrator to increase the limit.")


def _beijing(hh, mm):
    return NOW - 8 * 3600 + hh * 3600 + mm * 60  # NOW is 08:00 Beijing: back to 00:00, then hh:mm


@pytest.mark.parametrize("start, end, at, curfew", [
    pytest.param("22:00", "06:00", (23, 30), True, id="utdb:650-651 across midnight, evening"),
    pytest.param("22:00", "06:00", (5, 59), True, id="utdb:651 across midnight, early morning"),
    pytest.param("22:00", "06:00", (6, 0), False, id="utdb:651 the end is excluded"),
    pytest.param("22:00", "06:00", (22, 0), True, id="utdb:651 the start is included"),
    pytest.param("22:00", "06:00", (12, 0), False, id="utdb:651 midday"),
    pytest.param("09:00", "18:00", (9, 0), True, id="utdb:653 a day range, start included"),
    pytest.param("09:00", "18:00", (18, 0), False, id="utdb:653 end excluded"),
    pytest.param("09:00", "18:00", (8, 59), False, id="utdb:653 before"),
    pytest.param("12:00", "12:00", (12, 0), False, id="utdb:650-653 start == end: never"),
    pytest.param("22:00", "", (23, 0), False, id="utdb:642 an empty end: no curfew"),
    pytest.param("22:00", None, (23, 0), False, id="utdb:641 one of them NULL: no curfew"),
    pytest.param("9:00", "18:00", (12, 0), True, id="utdb:650 Q15 '9:00' > '18:00' as strings: wraps"),
    pytest.param("9:00", "18:00", (8, 0), True, id="utdb:651 Q15 so 08:00 is in curfew too"),
])
def test_curfew_in_beijing_time_with_string_comparison(start, end, at, curfew):
    row = TokenRow("t1", USER, "alice", curfew_start=start, curfew_end=end)
    now = _beijing(*at)
    d = run("GET", "/v1/models", ("x-api-key", USER), store=store(row), now=now)
    assert d.token == ("curfew" if curfew else "ok")
    if curfew:
        current = f"{at[0]:02d}:{at[1]:02d}"
        assert (d.status, d.reason) == (403, "token_curfew")
        assert d.rejection == CURFEW.format(start=start, end=end, now=current) == (
            f"Service is not available between {start} and {end} Beijing Time (Curfew enabled). "
            f"Current Beijing time: {current}")


def test_curfew_ignores_the_servers_time_zone(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        row = TokenRow("t1", USER, "alice", curfew_start="07:00", curfew_end="09:00")
        assert run("GET", "/", ("x-api-key", USER), store=store(row), now=NOW).token == "curfew"  # 08:00 UTC+8
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_checks_run_in_the_originals_order():
    # utdb:595-660: expiry before the IP limit before the curfew
    row = TokenRow("t1", USER, "alice", expires_type="day", expires_at=NOW - 1, max_ips=1, bound_ips=("x",),
                   curfew_start="00:00", curfew_end="23:59")
    assert run("GET", "/", ("x-api-key", USER), store=store(row)).token == "expired"
    row = TokenRow("t1", USER, "alice", max_ips=1, bound_ips=("x",), curfew_start="00:00", curfew_end="23:59")
    assert run("GET", "/", ("x-api-key", USER), store=store(row)).token == "ip_limit"


def test_enabled_is_never_checked__q1():
    row = TokenRow("t1", USER, "alice", enabled=False)
    d = run("GET", "/v1/models", ("x-api-key", USER), store=store(row))
    assert (d.allowed, d.reason, d.token) == (True, "token_ok", "ok")
    assert "enabled_ignored" in d.notes


def test_token_ok_passes_with_its_identity_and_the_binding_to_record():
    d = run("POST", "/v1/chat/completions", ("x-api-key", USER), ("X-Real-IP", "192.0.2.7"), store=store())
    assert (d.allowed, d.route, d.status, d.reason) == (True, "upstream", None, "token_ok")
    assert (d.token, d.token_id, d.token_user, d.client_ip, d.bind) == ("ok", "t1", "alice", "192.0.2.7",
                                                                        ("t1", "192.0.2.7"))


def test_recorded_bindings_count_for_the_limit():
    # monitor.rs records the IP after the response (l.250-266); the next new IP then meets the limit
    s = store(TokenRow("t1", USER, "alice", max_ips=1))
    first = run("GET", "/", ("x-api-key", USER), ("X-Forwarded-For", "198.51.100.1"), store=s)
    assert first.token == "ok"
    s.record(*first.bind)
    assert run("GET", "/", ("x-api-key", USER), ("X-Forwarded-For", "198.51.100.1"), store=s).token == "ok"
    d = run("GET", "/", ("x-api-key", USER), ("X-Forwarded-For", "198.51.100.2"), store=s)
    assert (d.token, d.rejection) == ("ip_limit", IP_LIMIT.format(count=1, max_ips=1))


@pytest.mark.parametrize("path, recorded", [
    pytest.param("/v1/chat/completions", True, id="recorded"),
    pytest.param("/v1/api/event_logging/batch", False, id="monitor.rs:355 event_logging skipped"),
    pytest.param("/v1/models?from=/api/", False, id="monitor.rs:355 /api/ anywhere in the URI, query too"),
])
def test_which_requests_monitor_records(path, recorded):
    d = run("POST", path, ("x-api-key", USER), store=store())
    assert d.token == "ok" and (d.bind is not None) is recorded


def test_every_denial_reason_has_words_and_a_status():
    from authgate import explain
    for reason in (*v4.DENIAL_STATUS, *v4.SHAPE_REASONS):
        for lang in explain.LANGUAGES:
            r = explain.CATALOGS[lang].reasons[reason]
            assert r.label and r.why and r.fix, (lang, reason)


def test_store_failure_is_500_empty_with_the_log_line():
    d = run("GET", "/v1/models", ("x-api-key", "sk-any"), store=FailingStore())
    assert (d.allowed, d.status, d.reason, d.token) == (False, 500, "token_store_error", "store_error")
    assert d.log[0] == "error" and d.log[1].startswith("UserToken validation error: ")  # auth.rs:231
    # the api_key itself never touches the store
    assert run("GET", "/v1/models", BEARER, store=FailingStore()).allowed


def test_second_lookup_failure_is_401():
    s = VanishingStore()
    d = run("GET", "/v1/models", ("x-api-key", USER), store=s)
    assert (d.allowed, d.status, d.reason, d.token) == (False, 401, "token_vanished", "vanished")  # auth.rs:207-209
    assert s.calls == 2


# ---- off mode tags a stored token, unchecked (auth.rs:62-96, Q13) [v4.1.0]

@pytest.mark.parametrize("headers, tagged", [
    pytest.param([("Authorization", f"Bearer {USER}")], True, id="auth.rs:69 Bearer stripped"),
    pytest.param([("Authorization", USER)], True, id="auth.rs:69 .or(Some(s)): whole value"),
    pytest.param([("x-api-key", USER)], True, id="auth.rs:70-75 x-api-key"),
    pytest.param([("x-goog-api-key", USER)], False, id="auth.rs:65-75 x-goog-api-key is not read in off mode"),
    pytest.param([("Authorization", "Bearer other"), ("x-api-key", USER)], False,
                 id="auth.rs:65 Authorization first"),
    pytest.param([(b"Authorization", b"\xff"), ("x-api-key", USER)], True,
                 id="auth.rs:68 a non-ASCII Authorization is skipped"),
])
def test_off_mode_tagging_headers(headers, tagged):
    d = run("POST", "/v1/messages", *headers, mode="off", store=store())
    assert d.allowed and d.reason == "auth_off"
    assert (d.token == "tagged") is tagged
    if tagged:
        assert d.bind == ("t1", "127.0.0.1") and "off_tagged" in d.notes


@pytest.mark.parametrize("row", [
    TokenRow("t1", USER, "alice", expires_type="day", expires_at=NOW - 100),
    TokenRow("t1", USER, "alice", enabled=False),
    TokenRow("t1", USER, "alice", max_ips=1, bound_ips=("203.0.113.1",)),
    TokenRow("t1", USER, "alice", curfew_start="00:00", curfew_end="23:59"),
], ids=["expired", "disabled", "over its IP limit", "in curfew"])
def test_off_mode_tags_any_stored_token_without_checks(row):
    d = run("GET", "/v1/models", ("x-api-key", USER), mode="auto", store=store(row))
    assert (d.allowed, d.token, d.token_id, d.bind) == (True, "tagged", "t1", ("t1", "127.0.0.1"))


def test_off_mode_swallows_store_errors_and_skips_internal_recording():
    d = run("GET", "/v1/models", ("x-api-key", USER), mode="off", store=FailingStore())
    assert (d.allowed, d.token, d.bind) == (True, None, None)  # auth.rs:79 `if let Ok(Some(..))`
    d = run("POST", "/internal/warmup", ("x-api-key", USER), mode="off", store=store())
    assert d.token == "tagged" and d.bind is None  # monitor.rs:355 skips /internal/


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
