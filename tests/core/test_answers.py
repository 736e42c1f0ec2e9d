"""Profile v4's answers and words: the original's bodies byte for byte, the gate's
explanation beside them, in five languages; faq's answers unchanged."""

import json

import pytest

from authgate.rules.common import RequestView
from authgate.rules.decide import decide
from authgate.rules.tokens import MemoryTokenStore, TokenRow, TokenStoreError
from authgate.words import answers, error_bodies, explain
from policy import KEY, Policy

NOW = 1767225600  # 08:00 Beijing
USER = "sk-user0123456789abcdef0123456789ab"
NOTE_CODES = ("off_tagged", "enabled_ignored", "internal_dot_segments", "admin_normalised", "api_fallback",
              "token_unknown",
              "no_token_store")


class Failing:
    def lookup(self, token):
        raise TokenStoreError("Failed to open database: unable to open database file")


def run(*headers, method="GET", path="/v1/models", rows=(), store=..., now=NOW, **policy):
    policy.setdefault("profile", "v4")
    store = MemoryTokenStore(rows) if store is ... else store
    return decide(RequestView(method, path, tuple((n.encode(), v.encode("utf-8")) for n, v in headers)),
                  Policy(**policy), store, now)


# ---- the 403 body, exact per case (auth.rs:211-228; utdb messages l.602, 632, 657, 667)

CASES = [
    ((("x-api-key", "sk-nobody"),), (), NOW, "Invalid token. Please check your API key."),
    ((("x-api-key", USER),), (TokenRow("t", USER, "a", expires_type="day", expires_at=NOW - 1),), NOW,
     "Your token has expired. Please contact the administrator to renew it."),
    ((("x-api-key", USER), ("x-real-ip", "10.1.1.1")), (TokenRow("t", USER, "a", max_ips=1, bound_ips=("x",)),), NOW,
     "IP limit reached (1/1). Please contact the administrator to increase the limit."),
    ((("x-api-key", USER),), (TokenRow("t", USER, "a", curfew_start="07:59", curfew_end="08:01"),), NOW,
     "Service is not available between 07:59 and 08:01 Beijing Time (Curfew enabled). Current Beijing time: 08:00"),
]


@pytest.mark.parametrize("headers, rows, now, message", CASES, ids=["unknown", "expired", "ip_limit", "curfew"])
def test_403_body_is_the_originals_byte_for_byte(headers, rows, now, message):
    d = run(*headers, rows=rows, now=now)
    bare = answers.denial(d, "/v1/models", explained=False)
    expected = ('{"error":{"message":"' + message + '","type":"token_rejected","code":"token_rejected"}}').encode()
    assert bare == (403, (("content-type", "application/json"), ("access-control-allow-origin", "*")), expected)
    explained = answers.denial(d, "/v1/models", "fr")
    assert explained.status == 403
    assert explained.body.startswith(expected[:-1] + b',"auth_gate":')  # the original's error object, then ours
    body = json.loads(explained.body)
    assert body["error"] == json.loads(expected)["error"]
    assert body["auth_gate"]["original_message"] == message and body["auth_gate"]["reason"] == d.reason
    assert "Solution" in body["auth_gate"]["message"]  # the gate's words in the client's language


def test_401_and_500_bare_are_empty():
    for d in (run(), run(api_key=""), run(path="/api/accounts"), run(("x-api-key", "x"), store=Failing())):
        bare = answers.denial(d, "/v1/models", explained=False)
        assert (bare.status, bare.body, bare.headers) == (d.status, b"", (("access-control-allow-origin", "*"),))
    assert run(("x-api-key", "x"), store=Failing()).status == 500


def test_401_explained_speaks_the_dialect_and_500_too():
    d = run(path="/v1/messages")
    a = answers.denial(d, "/v1/messages")
    body = json.loads(a.body)
    assert a.status == 401 and body["error"]["type"] == "authentication_error"  # anthropic's shape
    assert ("www-authenticate", 'Bearer realm="antigravity-proxy"') in a.headers
    d = run(("Authorization", "Bearer sk-x"), store=Failing())
    a = answers.denial(d, "/v1/chat/completions", "es")
    body = json.loads(a.body)
    assert a.status == 500 and body["error"]["code"] == "token_store_error"  # openai's shape
    assert body["auth_gate"]["token"] == "store_error" and "500" in body["error"]["message"]
    assert ("content-language", "es") in a.headers
    d = run(("x-api-key", "sk-x"), store=Failing())
    body = json.loads(answers.denial(d, "/v1/messages").body)
    assert body["type"] == "error" and body["error"]["type"] == "api_error"  # anthropic's


def test_faq_denial_is_unchanged():
    d = decide(RequestView("GET", "/v1/models", ((b"x-api-key", b"sk-wrong"),)), Policy())
    a = answers.denial(d, "/v1/models", "en")
    assert a.status == 401 and a.body == error_bodies.denial_body(d, "/v1/models", "en")
    assert a.headers == (("content-type", "application/json"), ("access-control-allow-origin", "*"),
                         ("content-language", "en"), ("www-authenticate", error_bodies.www_authenticate(d)),
                         ("x-should-retry", "false"))  # Stainless SDKs (Claude Code, Codex) stop retrying
    assert "surface" not in json.loads(a.body)["auth_gate"]  # a faq record keeps its fields exactly
    assert answers.denial(d, "/", explained=False) == (401, (("access-control-allow-origin", "*"),), b"")


def test_health_bodies():
    # server.rs:912-918: Json(json!({"status": "ok", "version": CARGO_PKG_VERSION})), compact, in that order
    assert answers.health_body("v4", "4.5.8") == b'{"status":"ok","version":"4.5.8"}'
    assert answers.health_body("v4", "4.4.0") == b'{"status":"ok","version":"4.4.0"}'
    assert answers.health_body("faq", "4.5.8") == b'{"status": "ok"}'  # what the gate has always answered
    assert answers.health("v4", "4.5.8") == (200, (("content-type", "application/json"),
                                                  ("access-control-allow-origin", "*")),
                                             b'{"status":"ok","version":"4.5.8"}')


def test_original_log_lines():
    assert answers.original_log(decide(RequestView("GET", "/", ()), Policy(api_key=""))) == (
        "error", "Proxy auth is enabled but api_key is empty; denying request")
    assert answers.original_log(run(api_key="")) == (
        "error", "Proxy auth is enabled but api_key is empty; denying request")
    assert answers.original_log(run(path="/api/logs", api_key="")) == (
        "error", "Admin auth is required but both api_key and admin_password are empty; denying request")
    assert answers.original_log(run(("x-api-key", "x"))) == (
        "warn", "UserToken rejected: Invalid token. Please check your API key.")
    assert answers.original_log(run(("x-api-key", KEY))) is None


# ---- the words

@pytest.mark.parametrize("kwargs, line", [
    ({"path": "/api/accounts"}, "401 · admin API · no key header · key required"),
    ({"path": "/api/accounts", "headers": (("x-api-key", KEY),), "admin_password": "pw"},
     "401 · admin API · x-api-key won (Authorization absent) · api_key refused on admin route"),
    ({"headers": (("x-api-key", "sk-x"),)},
     "403 · strict · x-api-key won (Authorization absent) · key mismatch · not a user token"),
    ({"headers": (("x-api-key", USER),), "auth_mode": "off", "rows": (TokenRow("t", USER, "alice"),)},
     "pass · off · auth off · user token alice tagged"),
    ({"path": "/api/health"}, "200 · admin API · /api/health public"),
    ({"path": "/health", "auth_mode": "all_except_health"}, "200 · all_except_health · health path exempt"),
    ({"headers": (("x-api-key", "sk-x"),), "store": Failing()},
     "500 · strict · x-api-key won (Authorization absent) · token store error"),
])
def test_v4_comment_lines(kwargs, line):
    headers = kwargs.pop("headers", ())
    assert explain.comment(run(*headers, **kwargs)) == line


@pytest.mark.parametrize("kwargs, words", [
    ({"path": "/internal/../v1/models"}, ["deliberate difference from the original", "dot segment"]),
    ({"path": "/api/whatever", "headers": (("x-api-key", "k"),)}, ["not one of the app's admin routes", "404"]),
    ({"headers": (("x-api-key", "k"),), "store": None}, ["No user-token store is configured", "403 token_rejected"]),
    ({"headers": (("x-api-key", "k"),), "rows": (TokenRow("t", USER, "a"),)},
     ["not a user token either", "only a missing key gets 401"]),
    ({"path": "/api/config", "headers": (("x-api-key", KEY),), "admin_password": "pw"},
     ["Admin API auth denied", "only the admin password", "Send proxy.admin_password"]),
    ({"api_key": "", "path": "/api/config"}, ["both empty"]),
    ({"headers": (("x-api-key", USER),), "rows": (TokenRow("t", USER, "alice", max_ips=1, bound_ips=("x",)),)},
     ["user token of alice", "127.0.0.1", "never used"]),
])
def test_v4_messages_point_out_the_quirks(kwargs, words):
    headers = kwargs.pop("headers", ())
    msg = explain.message(run(*headers, **kwargs))
    for w in words:
        assert w in msg, (w, msg)


def test_allowed_quirks_are_explained_in_the_trace():
    d = run(("x-api-key", ""), api_key="", admin_password="pw")
    assert d.allowed and "empty key accepted" in explain.trace(d, "GET", "/v1/models")
    d = run(("x-api-key", USER), rows=(TokenRow("t", USER, "alice", enabled=False),))
    t = explain.trace(d, "GET", "/v1/models")
    assert "never reads enabled" in t and "recorded after the response: IP 127.0.0.1 for the token of alice" in t
    d = run(("x-api-key", USER), auth_mode="off", rows=(TokenRow("t", USER, "alice", expires_at=1,
                                                                  expires_type="day"),))
    assert "without any check" in explain.trace(d, "GET", "/v1/models")
    t = explain.trace(run(path="/api/accounts"), "GET", "/api/accounts")
    assert "admin route (/accounts once /api is stripped): auth_mode does not apply" in t


def test_x_auth_gate_header_names_the_token_verdict():
    d = run(("x-api-key", "sk-x"))
    assert error_bodies.header_value(explain.detail(d)) == \
        "deny; mode=strict; winner=x-api-key; reason=mismatch; token=unknown"
    assert error_bodies.header_value(explain.detail(run(path="/api/logs"))).endswith("reason=missing; surface=admin")


@pytest.mark.parametrize("lang", explain.LANGUAGES)
def test_every_note_has_words_in_every_language(lang):
    phrases = explain.CATALOGS[lang].phrases
    for code in NOTE_CODES:
        text = phrases["note_" + code]
        assert text and (lang == "en" or text != explain.CATALOGS["en"].phrases["note_" + code]), (lang, code)


@pytest.mark.parametrize("lang", ["fr", "es", "ja", "zh-TW"])
def test_v4_words_are_translated_and_keep_the_technical_words(lang):
    cases = [
        run(("x-api-key", USER), rows=(TokenRow("t", USER, "alice", curfew_start="00:00", curfew_end="23:59"),)),
        run(path="/internal/%2e%2e/v1/models"),
        run(("x-api-key", KEY), path="/api/config", admin_password="pw"),
    ]
    for d in cases:
        msg = explain.message(d, lang)
        assert msg != explain.message(d, "en")
        for token in ("x-api-key",) if d.winner else ():
            assert token in msg
    assert "curfew_end" in explain.message(cases[0], lang) and "alice" in explain.message(cases[0], lang)
    assert "%2e%2e" in explain.message(cases[1], lang)
    assert "admin_password" in explain.message(cases[2], lang)


def test_no_token_or_key_in_any_v4_text():
    rows = (TokenRow("t", USER, "alice", max_ips=1, bound_ips=("x",)),)
    cases = [run(("x-api-key", USER), rows=rows), run(("x-api-key", USER), auth_mode="off", rows=rows),
             run(("Authorization", f"Bearer {KEY}"), ("x-api-key", KEY), path="/api/config", admin_password="pw"),
             run(("x-api-key", USER), rows=(TokenRow("t", USER, "alice"),))]
    for d in cases:
        texts = [explain.comment(d), explain.message(d), json.dumps(explain.detail(d)),
                 explain.trace(d, "GET", "/v1/models")]
        if not d.allowed:
            texts.append(answers.denial(d, "/v1/models").body.decode())
        for t in texts:
            assert USER not in t and USER[3:-4] not in t and KEY not in t and KEY[3:-4] not in t
