"""The words: comment lines, 401 messages, traces, in five languages. No key leaks."""

import json

import pytest

from authgate.rules.common import RequestView
from authgate.rules.decide import decide
from authgate.words import error_bodies, explain
from policy import KEY, Policy


def run(*headers, method="GET", path="/v1/models", **policy):
    d = decide(RequestView(method, path, tuple((n.encode(), v.encode("utf-8")) for n, v in headers)),
               Policy(**policy))
    return d


@pytest.mark.parametrize("headers, policy, line", [
    ((("x-api-key", "sk-wrong"),), {},
     "401 · strict · x-api-key won (Authorization absent) · key mismatch"),
    ((("Authorization", "Bearer sk-old"), ("x-api-key", KEY)), {},
     "401 · strict · Authorization won (x-api-key ignored) · key mismatch · shadowed a correct x-api-key"),
    ((("Authorization", f"Bearer{KEY}"),), {},
     "401 · strict · Authorization won · no space after Bearer"),
    ((("x-goog-api-key", KEY),), {},
     "pass · strict · x-goog-api-key won (Authorization absent; x-api-key absent) · key ok"),
    ((), {}, "401 · strict · no key header · key required"),
    ((("Authorization", "Bearer \u201csk\u201d"),), {},
     "401 · strict · no key header (Authorization non-ASCII, skipped) · non-ASCII key skipped"),
    ((), {"api_key": ""}, "401 · strict · no key header · api_key is empty"),
    ((), {"auth_mode": "auto"}, "pass · off · auth off (auto, allow_lan_access=false)"),
    ((), {"auth_mode": "auto", "allow_lan_access": True},
     "401 · all_except_health · no key header · key required"),
])
def test_comment_names_the_winning_header_and_why(headers, policy, line):
    assert explain.comment(run(*headers, **policy)) == line


def test_comment_for_local_answers():
    assert explain.comment(run(method="OPTIONS")) == "200 · preflight · OPTIONS bypasses auth"
    assert explain.comment(run(path="/healthz", auth_mode="all_except_health")) == \
        "200 · all_except_health · /healthz exempt"
    assert explain.comment(run(method="POST", path="/healthz", auth_mode="off")).startswith("405 · off")


@pytest.mark.parametrize("headers, policy, words", [
    ((("Authorization", "Bearer sk-old"), ("x-api-key", KEY)), {},
     ["Authorization won (x-api-key ignored)", "x-api-key holds the right key", "Remove Authorization"]),
    ((("Authorization", f"Bearer{KEY}"),), {}, ["without a space", "Bearer <key>"]),
    ((("Authorization", f"bearer {KEY}"),), {}, ["capital B"]),
    ((("Authorization", f"Bearer  {KEY}"),), {}, ["exactly one space"]),
    ((("Authorization", "Token abc"),), {}, ["no \"Bearer \" prefix, so its whole value was compared"]),
    ((), {"api_key": ""}, ["proxy.api_key is empty", "non-empty proxy.api_key"]),
    ((), {"auth_mode": "auto", "allow_lan_access": True},
     ["auth_mode=auto with allow_lan_access=true resolves to all_except_health", "allow_lan_access off"]),
    ((("Authorization", "Bearer \u201csk\u201d"),), {}, ["outside visible ASCII", "smart quotes"]),
])
def test_401_message_says_why_and_the_fix(headers, policy, words):
    msg = explain.message(run(*headers, **policy))
    for w in words:
        assert w in msg


def test_no_key_in_any_text():
    # the configured key is in an ignored header, and presented in full elsewhere
    cases = [
        run(("Authorization", "Bearer sk-old"), ("x-api-key", KEY)),
        run(("Authorization", f"Bearer{KEY}")),
        run(("Authorization", f"Bearer  {KEY}")),
        run(("x-api-key", KEY + "x")),
        run(("x-api-key", KEY)),
    ]
    for d in cases:
        texts = [explain.comment(d), explain.message(d), error_bodies.denial_body(d, "/").decode(),
                 json.dumps(explain.detail(d)), explain.trace(d, "GET", "/v1/models")]
        for t in texts:
            assert KEY not in t
            assert KEY[3:-4] not in t  # not even the middle of it


def test_trace_walks_the_chain():
    t = explain.trace(run(("Authorization", "Bearer sk-old"), ("x-api-key", KEY), auth_mode="auto",
                          allow_lan_access=True), "GET", "/v1/models")
    assert "effective mode: all_except_health (auth_mode=auto with allow_lan_access=true" in t
    assert "Authorization: present, read (first present key header)" in t
    assert "x-api-key: present, ignored" in t
    assert "x-goog-api-key: absent" in t
    assert "Bearer prefix: stripped" in t
    assert "result: 401: key mismatch" in t
    assert "fix: Remove Authorization" in t


def test_every_reason_has_words():
    for code, r in explain.CATALOGS["en"].reasons.items():
        assert r.label and r.why
        if code not in ("preflight", "auth_off", "health_exempt", "internal_exempt", "key_ok",
                        "health_paths_exempt", "token_ok", "admin_health", "admin_key_ok", "admin_password_ok"):
            assert r.fix, code


# ---- the five languages

def _placeholders(text):
    import string
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_language_has_every_text_with_the_same_placeholders():
    en = json.loads((explain._LOCALES / "en.json").read_text(encoding="utf-8"))
    assert set(explain.CATALOGS) == set(explain.LANGUAGES)
    for lang in explain.LANGUAGES[1:]:
        data = json.loads((explain._LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
        assert set(data["reasons"]) == set(en["reasons"]), lang
        assert set(data["phrases"]) == set(en["phrases"]), lang
        for code, r in en["reasons"].items():
            for part, text in r.items():
                assert _placeholders(data["reasons"][code][part]) == _placeholders(text), (lang, code, part)
        for key, text in en["phrases"].items():
            assert _placeholders(data["phrases"][key]) == _placeholders(text), (lang, key)


@pytest.mark.parametrize("lang", ["fr", "es", "ja", "zh-TW"])
def test_translated_401_keeps_the_technical_words(lang):
    d = run(("Authorization", "Bearer sk-old"), ("x-api-key", KEY))
    msg = explain.message(d, lang)
    assert msg != explain.message(d, "en")
    for token in ("Authorization", "x-api-key", "strict"):
        assert token in msg
    assert KEY not in msg
    assert "Authorization" in explain.comment(d, lang) and explain.comment(d, lang).startswith("401 · strict")
    assert "x-api-key" in explain.trace(d, "GET", "/", lang)


@pytest.mark.parametrize("header, lang", [
    (None, "en"),
    ("", "en"),
    ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
    ("es-419", "es"),
    ("ja", "ja"),
    ("zh-TW", "zh-TW"),
    ("zh-Hant-HK", "zh-TW"),
    ("zh-CN", "zh-TW"),  # Simplified Chinese is not one of the FAQ's languages: Traditional reads
    ("zh-Hans", "zh-TW"),  # far better for its readers than English (issue 13)
    ("zh-SG", "zh-TW"),
    ("de, ja;q=0.5", "ja"),
    ("en;q=0.2, fr;q=0.8", "fr"),
    ("fr;q=0", "en"),
    ("*", "en"),
    ("de", "en"),
    ("fr;q=abc, es", "es"),
])
def test_accept_language(header, lang):
    assert explain.pick_language(header) == lang


def test_every_language_has_the_lessons_words():
    en = json.loads((explain._LOCALES / "en.json").read_text(encoding="utf-8"))["lesson"]
    for lang in explain.LANGUAGES[1:]:
        lesson = json.loads((explain._LOCALES / f"{lang}.json").read_text(encoding="utf-8"))["lesson"]
        assert set(lesson) == set(en), lang
        for key, text in en.items():
            if key != "titles":
                assert _placeholders(lesson[key]) == _placeholders(text), (lang, key)


# ---- refused before auth (issue #11): which header and why, never its value

def test_a_refused_header_value_is_explained_without_the_value():
    d = decide(RequestView("POST", "/v1/messages", ((b"x-api-key", KEY.encode()), (b"X-Foo", b"a\rb"))),
               Policy("strict"))
    assert explain.comment(d) == "400 · strict · control byte in X-Foo"
    msg = explain.message(d)
    assert msg.startswith("The auth gate refused this request (400) before any auth check. The value of X-Foo")
    assert msg.endswith("Fix: Remove the control character from X-Foo: a header value is one line of text (tab allowed).")
    body = json.loads(error_bodies.bad_request_body(d, "/v1/messages"))
    assert body["error"]["type"] == "invalid_request_error" and body["type"] == "error"  # Anthropic's path
    assert body["auth_gate"]["headers"] == {"X-Foo": "header_control_byte"} and KEY not in json.dumps(body)
    assert "a\rb" not in json.dumps(body) and "a\\rb" not in json.dumps(body)
    assert error_bodies.header_value(explain.detail(d)) == "deny; mode=strict; winner=-; reason=header_control_byte"
    d = decide(RequestView("GET", "/", ((b"X-Foo", b"a\r\n b"),)), Policy("off"))
    for lang in explain.LANGUAGES:
        assert "X-Foo" in explain.comment(d, lang) and "X-Foo" in explain.message(d, lang)
        assert explain.message(d, lang) != explain.message(d, "en") or lang == "en"


def test_a_trace_shows_a_query_key_as_its_fingerprint():
    d = decide(RequestView("GET", f"/v1beta/models?key={KEY}", ()), Policy("strict"))
    t = explain.trace(d, "GET", f"/v1beta/models?key={KEY}&alt=sse")
    assert t.startswith("GET /v1beta/models?key=<sk-…cdef (35 chars)>&alt=sse\n") and KEY not in t
