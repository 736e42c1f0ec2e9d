"""Gatekeeper (authgate/gatekeeper.py): the decision on each request, said on the flow, and the
answers the gate gives itself (401/403, preflight, /healthz, 405, absolute-form, fail-closed 500)."""

import json
import logging

from mitmproxy.test import tflow, tutils

from authgate import answers, explain
from gate_harness import KEY, config, default_config, gate, send, upstream, write  # noqa: F401


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


async def test_absolute_form_is_refused(gate):
    f = tflow.tflow(req=tutils.treq(authority=b"example.com", host="example.com", port=80))
    gate.request(f)
    assert f.response.status_code == 400
    assert "example.com" in json.loads(f.response.content)["error"]["message"]
    assert f.request.host == "example.com"  # nothing was rewritten, nothing forwarded


async def test_a_gate_error_fails_closed(gate, monkeypatch, caplog):
    # in the decision, or in forwarding what passed: a 500, nothing goes upstream
    monkeypatch.setattr(gate.state, "decide", lambda req: 1 / 0)
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert f.response.status_code == 500 and json.loads(f.response.content)["error"]["code"] == "gate_error"
    assert "auth gate error on GET /v1/models; denying" in caplog.text
    monkeypatch.undo()
    monkeypatch.setattr(gate.forward, "_arm", lambda flow, timeout: 1 / 0)
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
