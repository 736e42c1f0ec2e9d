"""End to end, what the gate answers itself and what it prints: OPTIONS preflights, /healthz, the
crafted 401 (WWW-Authenticate, the SDKs' body shapes, auth_explain=false), and never the key in
mitmdump's output; real `mitmdump -s addon/auth.py` on an ephemeral loopback port, an echo upstream.
Shared strict and all_except_health gates serve the tests that only read.

Everything stays on 127.0.0.1 and every socket call has a timeout.
"""

from __future__ import annotations

import pytest

from e2e_gates import (  # noqa: F401
    KEY,
    NON_ASCII,
    OTHER_KEY,
    aeh,
    assert_never_logged_the_key,
    bearer,
    confdir,
    echo,
    start,
    start_shared,
    strict,
)
from live import config_text

# ====================================================================== OPTIONS, /healthz

@pytest.mark.parametrize("path", ["/v1/models", "/healthz"])
def test_options_preflight_passes_in_strict(strict, echo, path):
    before = len(echo.received)
    r = strict.send("OPTIONS", path, [("Origin", "http://example.test"),
                                      ("Access-Control-Request-Method", "POST"),
                                      ("Access-Control-Request-Headers", "authorization, content-type")])
    assert r.status == 200
    assert r.header("access-control-allow-origin") == "*"
    assert r.header("access-control-max-age") == "3600"
    assert "POST" in r.header("access-control-allow-methods")
    assert r.header("access-control-allow-headers")
    assert len(echo.received) == before  # answered by the proxy itself


@pytest.mark.parametrize("path, status", [
    ("/healthz", 200),
    ("/healthz?x=1", 200),
    ("/healthz/", 401),
    ("/HEALTHZ", 401),
    ("/health", 401),
    ("/healthz/x", 401),
])
def test_healthz_exemption_is_exact_path(aeh, path, status):
    r = aeh.send("GET", path)
    assert r.status == status, path
    if status == 200:
        assert r.json() == {"status": "ok"}
        assert r.header("content-type") == "application/json"
        assert r.header("access-control-allow-origin") == "*"


def test_healthz_is_answered_by_the_proxy_not_forwarded(aeh, echo):
    before = len(echo.received)
    assert aeh.send("GET", "/healthz").json() == {"status": "ok"}
    h = aeh.send("HEAD", "/healthz")
    assert h.status == 200 and h.body == b""
    assert [p for _, p in list(echo.received)[before:] if p.startswith("/healthz")] == []


def test_post_healthz_is_405(aeh, strict):
    r = aeh.send("POST", "/healthz", body=b"{}")
    assert r.status == 405
    assert "GET" in (r.header("allow") or "")
    assert r.header("access-control-allow-origin") == "*"
    # strict: /healthz needs the key first, then the method is refused
    assert strict.send("POST", "/healthz", body=b"{}").status == 401
    assert strict.send("POST", "/healthz", [bearer()], body=b"{}").status == 405


def test_strict_healthz_with_key_is_200(strict):
    assert strict.send("GET", "/healthz", [bearer()]).json() == {"status": "ok"}

# ====================================================================== the crafted 401

def test_www_authenticate_error_only_when_a_key_was_presented(strict):
    no_key = strict.send("GET", "/v1/models")
    assert no_key.status == 401
    assert no_key.header("www-authenticate") == 'Bearer realm="antigravity-proxy"'
    assert no_key.header("access-control-allow-origin") == "*"
    assert no_key.header("content-type") == "application/json"
    wrong = strict.send("GET", "/v1/models", [bearer("sk-wrong")])
    assert wrong.status == 401
    assert 'error="invalid_token"' in wrong.header("www-authenticate")
    assert wrong.header("www-authenticate").startswith("Bearer realm=")


@pytest.mark.parametrize("path, headers, shape", [
    ("/v1/models", [bearer("sk-wrong")], "openai"),
    ("/v1/messages", [("x-api-key", "sk-wrong")], "anthropic"),
    ("/v1beta/models", [("x-goog-api-key", "sk-wrong")], "google"),
])
def test_401_body_in_the_sdk_shape(strict, path, headers, shape):
    r = strict.send("POST", path, headers, body=b"{}")
    assert r.status == 401
    body = r.json()
    if shape == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    elif shape == "google":
        assert body["error"]["status"] == "UNAUTHENTICATED" and body["error"]["code"] == 401
    else:
        assert body["error"]["code"] == "invalid_api_key"
    assert "Fix:" in body["error"]["message"]


def test_auth_explain_false_gives_bare_401(start, echo):
    m = start(config_text("strict", KEY, echo.url), "--set", "auth_explain=false")
    r = m.send("GET", "/v1/models", [bearer("sk-wrong")])
    assert r.status == 401 and r.body == b""
    assert r.header("access-control-allow-origin") == "*"
    assert m.send("GET", "/v1/models", [bearer()]).from_echo


# ====================================================================== secrets stay out of the output

def test_full_key_never_in_mitmdump_output(start, echo):
    m = start(config_text("strict", KEY, echo.url))
    half = KEY[: len(KEY) // 2]
    tries = [
        [bearer()], [("x-api-key", KEY)], [("x-goog-api-key", KEY)], [("Authorization", KEY)],
        [bearer(OTHER_KEY)], [("x-api-key", OTHER_KEY)], [bearer("sk-wrong"), ("x-api-key", KEY)],
        [("Authorization", f"Bearer{KEY}")], [("Authorization", f"bearer {KEY}")],
        [(b"Authorization", NON_ASCII)], [bearer(KEY + "x")], [bearer(half)],
    ]
    for headers in tries:
        for method, path in (("GET", "/v1/models"), ("GET", "/healthz"), ("OPTIONS", "/v1/models")):
            m.send(method, path, headers)
    out = m.stop()
    assert "401 · strict" in out  # the denials were logged...
    assert KEY not in out  # ...without the key
    assert OTHER_KEY not in out
    # and nothing else alarming: no traceback, no addon error, no API deprecation warning
    for alarm in ("Traceback", "Addon error", "deprecated"):
        assert alarm not in out, out


# ====================================================================== last: the shared proxies' logs

def test_shared_proxies_never_logged_the_key(strict, aeh):
    # Runs after every test above that used the shared proxies (file order).
    assert_never_logged_the_key(strict, aeh)
