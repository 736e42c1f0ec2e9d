"""paths.py: the forms a request path may take upstream (pure): the gate's hardening of v4's
/internal/ exemption and admin routes. The original matches raw paths (axum routing/path_router.rs:
334-387, matchit router.rs:59-68), so each case here is a documented difference: it would 404."""

import pytest

from authgate.rules import paths


@pytest.mark.parametrize("path", [
    "/internal/warmup", "/internal/warmup/", "/internal/a.b/c", "/internal/.well-known", "/internal/..x",
    "/internal/x..", "/internal/%41bc", "/internal/a;b=c", "/internal/caf\u00e9",
])
def test_safe_paths(path):
    assert not paths.unsafe(path)


@pytest.mark.parametrize("path", [
    "/internal/../v1/models", "/internal/./warmup", "/internal/a/..",
    "/internal/%2e%2e/v1/models", "/internal/%2E%2e/v1/models", "/internal/..%2fv1/models",
    "/internal/%252e%252e/v1/models",  # encoded twice
    "/internal/..;/v1/models", "/internal/..;x=1/v1/models",  # Tomcat's path parameters
    "/internal/..%00/v1/models", "/internal/%00../v1/models", "/internal/.%00./v1/models",  # NUL dropped or cut at
    "/internal/..%20/v1/models", "/internal/%20../v1/models", "/internal/..%09/v1/models",  # whitespace
    "/internal/%c0%ae%c0%ae/v1/models", "/internal/%c0%ae./v1/models",  # overlong UTF-8 dots
    "/internal/%e0%80%ae%e0%80%ae/v1/models",  # three-byte overlong
    "/internal/..%c0%afv1/models",  # overlong slash
    "/internal/\uff0e\uff0e/v1/models", "/internal/%ef%bc%8e%ef%bc%8e/v1/models",  # fullwidth dots
    "/internal/\u2025/v1/models",  # TWO DOT LEADER: NFKC ".."
    "/internal//v1/models", "/internal/x//y", "/internal/%2f/x",  # empty segments
    "/internal/..\\v1/models", "/internal/..%5cv1/models",  # backslash as a separator
    "/internal/%" + "25" * 6 + "2e",  # still encoded after five rounds
])
def test_unsafe_paths(path):
    assert paths.unsafe(path)


@pytest.mark.parametrize("path, forms", [
    ("/api/x/../accounts", {"/api/accounts"}),
    ("/api//accounts/", {"/api/accounts"}),
    ("/v1/../../api/config", {"/api/config"}),
    ("/api/%61ccounts", {"/api/%61ccounts", "/api/accounts"}),
])
def test_normal_forms(path, forms):
    assert forms <= paths.normal_forms(path)


@pytest.mark.parametrize("path, admin", [
    ("/api/accounts", False),  # plain: the literal route, or the proxy fallback (v4_admin.admin_path)
    ("/api/nope", False),
    ("/v1/models", False),
    ("/api/x/../accounts", True), ("/api/./accounts", True), ("/api//accounts", True), ("/api/accounts/", True),
    ("/api/%2e%2e/api/config", True), ("/v1/../api/accounts", True), ("/api;x/accounts", True),
    ("/\uff41\uff50\uff49/accounts", True), ("/api", False), ("/api/", True),
    ("/v1/models/", False), ("/v1//models", False), ("/apiary/..", False),
])
def test_under_admin(path, admin):
    assert paths.under_admin(path) is admin


def test_plain_is_the_fast_answer():
    assert paths.plain("/v1/chat/completions") and paths.plain("/") and paths.plain("/v1.0/x.y")
    for path in ("/v1/./x", "/.well-known", "/v1/%2e", "/v1\\x", "/v1;x", "/v1//x", "/v1/", "/v1/caf\u00e9"):
        assert not paths.plain(path), path
