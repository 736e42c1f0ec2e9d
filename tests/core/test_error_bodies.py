"""The answers' shapes: each SDK's error body, WWW-Authenticate, the x-auth-gate header."""

import json

import pytest

from authgate.rules.common import RequestView
from authgate.rules.decide import decide
from authgate.words import error_bodies, explain
from policy import KEY, Policy


def run(*headers, method="GET", path="/v1/models", **policy):
    return decide(RequestView(method, path, tuple((n.encode(), v.encode("utf-8")) for n, v in headers)),
                  Policy(**policy))


@pytest.mark.parametrize("headers, path, kind", [
    ((("Authorization", "Bearer x"),), "/v1/chat/completions", "openai"),
    ((), "/v1/models", "openai"),
    ((("x-api-key", "x"),), "/v1/models", "anthropic"),
    ((), "/v1/messages", "anthropic"),
    ((("x-goog-api-key", "x"),), "/v1/models", "google"),
    ((), "/v1beta/models/gemini:generateContent", "google"),
    # x-api-key and x-goog-api-key decide before the path does; Authorization does not
    # (anthropic 2 sends Authorization: Bearer too), so the path decides there
    ((("x-api-key", "x"),), "/v1beta/models/gemini:generateContent", "anthropic"),
    ((("Authorization", "Bearer x"),), "/v1/messages", "anthropic"),
    ((), "/v1/models/gemini:generateContent", "google"),  # google-genai 3 calls /v1/
])
def test_401_body_speaks_the_clients_dialect(headers, path, kind):
    d = run(*headers, path=path)
    body = json.loads(error_bodies.denial_body(d, path))
    assert body["auth_gate"]["reason"] == d.reason
    if kind == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    elif kind == "google":
        assert body["error"]["code"] == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    else:
        assert body["error"]["code"] == "invalid_api_key" and body["error"]["type"] == "invalid_request_error"
    assert "Fix: " in body["error"]["message"]


def test_www_authenticate_follows_rfc_6750():
    assert error_bodies.www_authenticate(run()) == 'Bearer realm="antigravity-proxy"'
    assert error_bodies.www_authenticate(run(("x-api-key", "bad"))) == \
        'Bearer realm="antigravity-proxy", error="invalid_token"'


def test_the_header_says_which_non_ascii_header_was_skipped():
    d = decide(RequestView("GET", "/v1/models", ((b"Authorization", "Bearer \u201csk-x\u201d".encode()),
                                                 (b"x-goog-api-key", KEY.encode()))), Policy())
    assert error_bodies.header_value(explain.detail(d)) == \
        "allow; mode=strict; winner=x-goog-api-key; reason=key_ok; skipped=Authorization"
