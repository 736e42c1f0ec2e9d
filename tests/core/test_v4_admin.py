"""profile v4's admin routes (v4.5.8): which paths are the admin router's, and
admin_auth_middleware's rules there (pure). Rows cite the original's code at tag
v4.5.8, as in test_v4.py; the version in brackets is the first release with the rule."""

import pytest

from authgate.rules import v4, v4_admin
from policy import KEY
from v4_harness import BEARER, PWD, USER, expected_denial_status, run, store

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
    assert v4_admin.admin_path(path) == inner


def test_admin_routes_are_the_126_of_v4_5_8():
    assert len(ADMIN := v4_admin.ADMIN_ROUTES) == 126 and len(set(ADMIN)) == 126
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


@pytest.mark.parametrize("path", ["/api/healthz", "/api/nope", "/api/nope/deeper"])
def test_unknown_api_paths_take_the_proxy_rules__q7(path):
    # server.rs:796 merge: the proxy router's fallback (ip_filter, auth, monitor), with the full path
    d = run("GET", path, ("x-api-key", "sk-wrong"), mode="all_except_health", store=store())
    assert (d.surface, d.status, d.reason, d.token) == ("proxy", 403, "mismatch", "unknown")
    assert "api_fallback" in d.notes
    assert run("GET", path, mode="off").allowed  # and off mode lets them through


@pytest.mark.parametrize("path", [
    "/api/health/", "/api/accounts/",  # a trailing slash: Express's default routing drops it
    "/api/x/../accounts", "/api/./accounts", "/api//accounts", "/api/config/.",  # dot and empty segments
    "/api/%61ccounts", "/api/%2e%2e/api/config", "/v1/../api/accounts", "/api;x/accounts", "/api/accounts;x",
    "/api/..;/api/accounts", "/api/%c0%ae/accounts", "/api/\uff0e\uff0e/api/accounts", "/\uff41pi/accounts",
    "/api\\accounts",
])
def test_a_path_that_may_become_an_admin_route_needs_the_admin_credential(path):
    """The gate's hardening (v4.py, paths.py): not an admin route as sent, so the original's proxy
    fallback would judge it (and 404 it, auth.rs:62-96 lets it through in off mode), but an upstream
    that normalises paths would serve an admin route: the admin credential, in every mode."""
    for mode in ("off", "strict", "all_except_health"):
        d = run("GET", path, mode=mode, password=PWD)
        assert (d.surface, d.status, d.reason, d.notes) == ("admin", 401, "missing", ("admin_normalised",)), mode
        d = run("GET", path, BEARER, mode=mode, password=PWD)  # the api_key is not the admin credential
        assert (d.status, d.reason) == (401, "admin_api_key_refused"), mode
        d = run("GET", path, ("Authorization", f"Bearer {PWD}"), mode=mode, password=PWD)
        assert d.allowed and d.reason == "admin_password_ok" and d.route == "upstream", mode
    assert run("GET", path, BEARER, mode="off").reason == "admin_key_ok"  # without a password: the api_key


@pytest.mark.parametrize("path", ["/api/accounts", "/v1/models/", "/v1//models", "/v1/./models", "/apiary/x/..",
                                  "/v1/%61pi/accounts"])
def test_paths_that_stay_where_they_are(path):
    assert run("GET", path, mode="off", password=PWD).surface == ("admin" if path == "/api/accounts" else "proxy")


def test_empty_credentials_log_lines_are_the_originals():
    d = run(api_key="")
    assert d.log == ("error", "Proxy auth is enabled but api_key is empty; denying request")  # auth.rs:141
    assert run("GET", "/api/config", api_key="").log[1] == v4.ADMIN_EMPTY_LOG  # auth.rs:138
