"""Replies (authgate/addons/replies.py): the x-auth-gate header on every answer, and the gate's JSON
502/504, in the client's SDK dialect, when the upstream fails."""

import json

import pytest
from mitmproxy import connection, flow, http
from mitmproxy.test import tutils

from gate_harness import KEY, config, default_config, gate, send, upstream, upstream_fails  # noqa: F401


@pytest.mark.parametrize("connected, timed_out, status, code", [
    (False, False, 502, "upstream_unreachable"),
    (True, False, 502, "upstream_error"),
    (True, True, 504, "upstream_timeout"),
    (False, True, 504, "upstream_timeout"),  # stalled while connecting
])
async def test_upstream_failure_is_answered_in_json(gate, connected, timed_out, status, code):
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert f.response is None  # forwarded
    upstream_fails(gate, f, "server closed connection", connected, timed_out)
    assert f.response.status_code == status
    error = json.loads(f.response.content)["error"]
    assert error["code"] == code
    assert gate.settings.upstream.url in error["message"]
    assert f.response.headers["connection"] == "close"
    assert f.response.headers["x-auth-gate"].startswith("allow; mode=strict; winner=Authorization")
    assert f.comment.endswith(f"{status} {code.replace('_', ' ')}")
    if timed_out:  # mitmproxy saw a closed connection; the flow says why
        assert "upstream.timeout" in f.error.msg
    assert f.request.headers["authorization"] == f"Bearer {KEY}"  # the flow shows what the client sent


@pytest.mark.parametrize("header, path, timed_out, shape", [
    ("x-api-key", "/v1/messages", False, {"type": "error", "error": {"type": "api_error"}}),
    ("x-goog-api-key", "/v1beta/models/m:generateContent", True, {"error": {"code": 504, "status": "DEADLINE_EXCEEDED"}}),
    ("x-goog-api-key", "/v1beta/models/m:generateContent", False, {"error": {"code": 502, "status": "UNAVAILABLE"}}),
    ("Authorization", "/v1/chat/completions", False, {"error": {"type": "upstream_error", "code": "upstream_error"}}),
])
async def test_upstream_failure_speaks_the_clients_dialect(gate, header, path, timed_out, shape):
    value = f"Bearer {KEY}" if header == "Authorization" else KEY
    f = await send(gate, path, "POST", headers=[(header, value)])
    upstream_fails(gate, f, "server closed connection", timed_out=timed_out)
    body = json.loads(f.response.content)
    for key, part in shape.items():
        assert {k: body[key][k] for k in part} == part if isinstance(part, dict) else body[key] == part
    assert gate.settings.upstream.url in json.dumps(body)
    assert body["auth_gate"] == {"outcome": "allow", "reason": "key_ok",
                                 "upstream_error": "upstream_timeout" if timed_out else "upstream_error"}


async def test_upstream_failure_leaves_alone_what_cannot_be_answered(gate):
    # the client is gone: nothing can be sent, so the flow shows no made-up response
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    f.client_conn.state = connection.ConnectionState.CLOSED
    assert upstream_fails(gate, f, "Client disconnected.").response is None
    # killed in mitmweb: mitmproxy closes the connection
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert upstream_fails(gate, f, flow.Error.KILLED_MESSAGE).response is None
    # a replay from mitmweb: mitmproxy is the client and reports the error itself
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    f.is_replay = "request"
    assert upstream_fails(gate, f, "server closed connection").response is None
    # a stream already under way is not replaced
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    f.response = tutils.tresp(headers=http.Headers(content_type="text/event-stream"))
    gate.responseheaders(f)
    assert f.response.stream
    assert upstream_fails(gate, f, "server closed connection").response.status_code == 200
    # the gate's own answers never reach the upstream: nothing to answer for
    f = await send(gate)
    before = f.response
    upstream_fails(gate, f, "Client disconnected.")
    assert f.response is before


async def test_every_answer_names_the_decision_in_a_header(gate):
    f = await send(gate, headers=[("Authorization", "Bearer sk-old"), ("x-api-key", KEY)])
    gate.responseheaders(f)
    assert f.response.headers["x-auth-gate"] == \
        "deny; mode=strict; winner=Authorization; reason=mismatch; shadowed=x-api-key"
    f = await send(gate, headers=[("x-api-key", KEY)])
    f.response = tutils.tresp()
    gate.responseheaders(f)
    assert f.response.headers["x-auth-gate"] == "allow; mode=strict; winner=x-api-key; reason=key_ok"
    gate.configure(auth_explain=False)  # the original's answers: no extra header
    f = await send(gate)
    gate.responseheaders(f)
    assert "x-auth-gate" not in f.response.headers
