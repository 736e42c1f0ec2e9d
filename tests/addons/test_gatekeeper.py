"""Gatekeeper (authgate/addons/gatekeeper.py): the decision on each request, said on the flow, and the
answers the gate gives itself (401/403, preflight, /healthz, 405, absolute-form, fail-closed 500)."""

import json
import logging

from mitmproxy.test import tflow, tutils

from authgate.words import answers, explain
from gate_harness import KEY, config, default_config, gate, req_flow, send, upstream, write  # noqa: F401


async def test_denial_is_a_crafted_401_with_comment_marker_and_metadata(gate):
    f = await send(gate, headers=[("Authorization", "Bearer sk-old"), ("x-api-key", KEY)])
    assert f.response.status_code == 401
    assert f.response.headers["www-authenticate"] == 'Bearer realm="antigravity-proxy", error="invalid_token"'
    assert f.response.headers["access-control-allow-origin"] == "*"
    body = json.loads(f.response.content)
    assert "x-api-key holds the right key" in body["error"]["message"]
    assert f.comment == ("401 · strict · Authorization won (x-api-key ignored) · key mismatch · "
                         "shadowed a correct x-api-key")
    assert f.marked == ":no_entry:"
    meta = f.metadata["auth"]
    assert (meta["outcome"], meta["winner"], meta["ignored"], meta["reason"]) == (
        "deny", "Authorization", ["x-api-key"], "mismatch")
    assert gate.state.denied == 1 and gate.state.passed == 0


async def test_bare_401_when_explanations_are_off(gate):
    gate.configure(auth_explain=False)
    f = await send(gate)
    assert (f.response.status_code, f.response.content) == (401, b"")
    assert "www-authenticate" not in f.response.headers
    assert f.comment.startswith("401 · strict")  # the flow still says why


async def test_replay_is_decided_under_current_settings(gate):
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert f.response.status_code == 401
    gate.configure(auth_mode="off")
    replay = f.copy()
    replay.response = None
    gate.request(replay)
    assert replay.response is None and replay.comment.startswith("pass · off") and replay.marked == ""


async def test_preflight_health_and_405_are_answered_locally(gate):
    f = await send(gate, "/v1/chat/completions", "OPTIONS",
                   headers=[("access-control-request-headers", "authorization, content-type")])
    h = f.response.headers
    assert f.response.status_code == 200
    assert (h["access-control-allow-origin"], h["access-control-max-age"]) == ("*", "3600")
    assert h["access-control-allow-headers"] == "authorization, content-type"
    assert "POST" in h["access-control-allow-methods"]
    f = await send(gate, "/healthz", headers=[("Authorization", f"Bearer {KEY}")])
    assert (f.response.status_code, json.loads(f.response.content)) == (200, {"status": "ok"})
    f = await send(gate, "/healthz", "HEAD", headers=[("Authorization", f"Bearer {KEY}")])
    assert (f.response.status_code, f.response.content) == (200, b"")
    f = await send(gate, "/healthz", "DELETE", headers=[("Authorization", f"Bearer {KEY}")])
    assert (f.response.status_code, f.response.headers["allow"]) == (405, "GET, HEAD")


async def test_absolute_form_is_decided_on_its_path_and_goes_to_the_upstream_only(gate, upstream):
    # (issue #11: the original routes by the URI's path; until then the gate answered 400 here)
    f = tflow.tflow(req=tutils.treq(authority=b"example.com", host="example.com", port=80, path=b"/healthz"))
    gate.request(f)
    assert f.response.status_code == 401 and f.comment.startswith("401 · strict")  # strict: /healthz needs the key
    gate.configure(auth_mode="all_except_health")
    f = tflow.tflow(req=tutils.treq(authority=b"example.com", host="example.com", port=80, path=b"/healthz"))
    gate.request(f)
    assert (f.response.status_code, json.loads(f.response.content)) == (200, {"status": "ok"})
    f = tflow.tflow(req=tutils.treq(authority=b"example.com:8080", host="example.com", port=8080,
                                    headers=((b"Authorization", f"Bearer {KEY}".encode()),)))
    gate.request(f)
    assert f.response is None  # forwarded: in origin-form, to upstream.url, never to example.com
    assert (f.request.authority, f.request.host, f.request.port) == ("", "127.0.0.1", upstream)
    assert f.request.url == f"http://127.0.0.1:{upstream}/path"


async def test_a_gate_error_fails_closed(gate, monkeypatch, caplog):
    # in the decision, or in forwarding what passed: a 500, nothing goes upstream
    monkeypatch.setattr(gate.state, "decide", lambda req: 1 / 0)
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert f.response.status_code == 500 and json.loads(f.response.content)["error"]["code"] == "gate_error"
    assert "auth gate error on GET /v1/models; denying" in caplog.text
    monkeypatch.undo()
    monkeypatch.setattr("authgate.addons.forward.strip_query_key", lambda target: 1 / 0)
    f = await send(gate, "/v1/models", "HEAD", headers=[("Authorization", f"Bearer {KEY}")])
    assert (f.response.status_code, f.response.content) == (500, b"")
    assert f.id not in gate.forward._stash


async def test_empty_api_key_logs_the_originals_line(gate, config, upstream, caplog):
    write(config, key="", upstream_port=upstream)
    caplog.set_level(logging.INFO)
    f = await send(gate, headers=[("Authorization", "Bearer anything")])
    assert f.response.status_code == 401
    assert "Proxy auth is enabled but api_key is empty; denying request" in caplog.messages


async def test_v4_profile(gate):
    gate.configure(auth_profile="v4", auth_mode="all_except_health")
    f = await send(gate, "/health")
    assert json.loads(f.response.content) == {"status": "ok", "version": "4.5.8"}  # server.rs:912-918
    assert (await send(gate, "/internal/metrics")).response is None  # forwarded without a key
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert f.response.status_code == 403
    body = json.loads(f.response.content)
    assert body["error"] == {"message": "Invalid token. Please check your API key.", "type": "token_rejected",
                             "code": "token_rejected"}
    assert body["auth_gate"]["reason"] == "mismatch" and f.comment.startswith("403 · all_except_health")
    assert (await send(gate)).response.status_code == 401  # a missing key stays 401
    gate.configure(auth_explain=False)
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert json.loads(f.response.content) == answers.token_rejected("Invalid token. Please check your API key.")


async def test_accept_language_picks_the_401_language(gate):
    f = await send(gate, headers=[("Accept-Language", "xx, en;q=0.5")])
    assert f.response.headers["content-language"] == "en"
    for lang in explain.CATALOGS:
        f = await send(gate, headers=[("Accept-Language", f"{lang};q=0.9, xx")])
        assert f.response.headers["content-language"] == lang
        assert json.loads(f.response.content)["error"]["message"] == explain.message(gate.state.decide(f.request), lang)
    assert f.comment.startswith("401 · strict · no key header")  # comments follow auth_lang, not the client


# ---- profile v4 wired: the token store, the original's answers and log lines (answers.py)

V4 = """proxy:
  auth_mode: strict
  api_key: "{key}"
  profile: v4
  admin_password: "admin-pass"
  version: "4.5.7"
upstream:
  url: http://127.0.0.1:{upstream}
tokens:
  - token: sk-expired
    username: dave
    expires_type: custom
    expires_at: 1000
  - token: sk-night
    username: erin
    curfew_start: "00:00"
    curfew_end: "24:00"
"""


async def test_v4_tokens_admin_routes_health_and_log_lines(tmp_path, upstream, caplog):
    from gate_harness import running_gate
    caplog.set_level(logging.INFO)
    path = tmp_path / "config.yaml"
    path.write_text(V4.format(key=KEY, upstream=upstream))
    with running_gate(path) as g:
        f = await send(g, headers=[("x-api-key", "sk-expired")])
        assert f.response.status_code == 403 and f.comment.startswith("403 · strict · x-api-key won")
        assert json.loads(f.response.content)["error"]["message"] == (
            "Your token has expired. Please contact the administrator to renew it.")
        assert ("authgate", logging.WARNING, "UserToken rejected: Your token has expired. Please contact the "
                "administrator to renew it.") in caplog.record_tuples
        f = await send(g, headers=[("x-api-key", "sk-night")])
        assert json.loads(f.response.content)["error"]["message"].startswith(
            "Service is not available between 00:00 and 24:00 Beijing Time (Curfew enabled). Current Beijing time: ")
        # admin routes: the password, never the api_key; /api/health public in every mode
        assert (await send(g, "/api/accounts")).response.status_code == 401
        f = await send(g, "/api/accounts", headers=[("Authorization", f"Bearer {KEY}")])
        assert f.response.status_code == 401 and f.response.content  # explained; bare with auth_explain=false
        assert f.metadata["auth"]["reason"] == "admin_api_key_refused" and f.comment.startswith("401 · admin API")
        assert (await send(g, "/api/accounts", headers=[("x-api-key", "admin-pass")])).response is None
        f = await send(g, "/api/health")
        assert json.loads(f.response.content) == {"status": "ok", "version": "4.5.7"}  # proxy.version
        assert f.response.content == b'{"status":"ok","version":"4.5.7"}'  # compact, as serde_json writes it
        g.configure(auth_version="4.2.1")
        assert json.loads((await send(g, "/api/health")).response.content)["version"] == "4.2.1"
        assert "sk-expired" not in caplog.text and "admin-pass" not in caplog.text and KEY not in caplog.text


async def test_v4_token_store_failure_is_the_originals_500(gate, monkeypatch, caplog):
    from authgate.rules.tokens import TokenStoreError

    class Failing:
        def lookup(self, token):
            raise TokenStoreError("Failed to open database: unable to open database file")

    gate.configure(auth_profile="v4")
    monkeypatch.setattr(gate.state, "store", Failing())
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert f.response.status_code == 500 and f.marked == ":no_entry:"
    assert json.loads(f.response.content)["auth_gate"]["reason"] == "token_store_error"
    assert ("authgate", logging.ERROR, "UserToken validation error: Failed to open database: unable to open "
            "database file") in caplog.record_tuples
    gate.configure(auth_explain=False)
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert (f.response.status_code, f.response.content) == (500, b"")


async def test_v4_admin_password_option_and_empty_credentials_log(gate, config, upstream, caplog):
    gate.configure(auth_profile="v4", auth_admin_password="pw")
    assert (await send(gate, "/api/config", headers=[("x-api-key", "pw")])).response is None
    write(config, key="", upstream_port=upstream)
    gate.configure(auth_admin_password="")
    assert (await send(gate, "/api/config", headers=[("x-api-key", "pw")])).response.status_code == 401
    assert ("authgate", logging.ERROR, "Admin auth is required but both api_key and admin_password are empty; "
            "denying request") in caplog.record_tuples


# ---- issue #11: refused before auth, decided at the request headers, the body limit

async def test_a_header_value_with_a_control_byte_is_a_400_in_every_mode(gate):
    for options in ({}, {"auth_mode": "off"}, {"auth_enforce": "false"}):  # shadow mode too: never forwarded
        gate.configure(**options)
        f = await send(gate, headers=[("Authorization", f"Bearer {KEY}"), ("X-Foo", b"a\rx-goog-api-key: k")])
        assert f.response.status_code == 400, options
        body = json.loads(f.response.content)
        assert body["auth_gate"]["headers"] == {"X-Foo": "header_control_byte"} and b"goog" not in f.response.content
        assert f.comment.startswith("400 · ") and f.comment.endswith("control byte in X-Foo")
        assert f.marked == ":no_entry:" and f.response.headers["x-auth-gate"].endswith("reason=header_control_byte")
    gate.configure(auth_explain=False)
    f = await send(gate, headers=[("X-Foo", b"a\r\n b")])
    assert (f.response.status_code, f.response.content) == (400, b"")


async def test_answers_are_given_at_the_request_headers(gate):
    f = req_flow("/v1/models", "POST", headers=[("Content-Length", "300"), ("Expect", "100-continue")])
    f.request.data.content = None  # as at requestheaders: the body is still to come
    gate.hook("requestheaders", f)
    assert f.response.status_code == 401  # decided here; without a connection to write on, on the flow
    assert "expect" not in f.request.headers  # so mitmproxy sends no 100 Continue for it
    assert f.response.headers["x-auth-gate"].startswith("deny; mode=strict")


async def test_a_body_over_the_limit_gets_413_after_the_decision(gate):
    gate.configure(auth_max_body_size="1k")
    f = await send(gate, "/v1/chat/completions", "POST", headers=[("Authorization", f"Bearer {KEY}"),
                                                                  ("Content-Length", "1025")])
    assert f.response.status_code == 413 and json.loads(f.response.content)["error"]["code"] == "request_too_large"
    assert f.comment.endswith("· 413 body over auth_max_body_size") and f.response.headers["connection"] == "close"
    f = await send(gate, "/v1/chat/completions", "POST", headers=[("Content-Length", "1025")])
    assert f.response.status_code == 401  # a denial first, as in the original
    f = await send(gate, "/v1/chat/completions", "POST", headers=[("Authorization", f"Bearer {KEY}"),
                                                                  ("Content-Length", "1024")])
    assert f.response is None  # the limit itself passes
