"""Shadow (authgate/addons/shadow.py): auth_enforce false forwards everything as sent and judges the
real proxy's answer against the gate's prediction."""

import logging

import pytest
from mitmproxy.test import tutils

from gate_harness import KEY, config, default_config, gate, send, upstream, upstream_fails  # noqa: F401


@pytest.mark.parametrize("headers, status, verdict, marker", [
    ([("x-api-key", "sk-wrong")], 401, "401 from the proxy auth layer, as predicted", ":no_entry:"),
    ([("x-api-key", KEY)], 401, "401 the auth layer would not give", ":warning:"),
    ([("x-api-key", "sk-wrong")], 200, "passed although the auth layer should refuse", ":warning:"),
    ([("x-api-key", KEY)], 200, "passed, as predicted", ""),
])
async def test_shadow_mode_forwards_unchanged_and_judges_the_answer(gate, headers, status, verdict, marker):
    gate.configure(auth_enforce="false")
    f = await send(gate, headers=headers)
    assert f.response is None  # forwarded, whatever the prediction
    assert f.request.headers["x-api-key"] == headers[0][1]  # credentials included
    f.response = tutils.tresp(status_code=status)
    gate.responseheaders(f)
    gate.response(f)
    assert f.comment.startswith(f"{status} · shadow · {verdict}")
    assert "predicted " + ("pass" if headers[0][1] == KEY else "401") in f.comment
    assert f.marked == marker


async def test_shadow_mode_real_proxy_that_fails_is_a_finding_and_gets_json(gate):
    gate.configure(auth_enforce="false")
    f = await send(gate, headers=[("x-api-key", KEY)])
    upstream_fails(gate, f, "server closed connection", timed_out=True)
    assert f.comment.startswith("--- · shadow · no response: no answer from the upstream within")
    assert f.marked == ":warning:"
    assert f.response.status_code == 504
    assert f.response.headers["x-auth-gate"].endswith("shadow=no_response")


# ---- profile v4: the exact answer predicted (401, 403 with its message, 500), mismatches named

TOKEN_403 = b'{"error":{"message":"%s","type":"token_rejected","code":"token_rejected"}}'
INVALID = b"Invalid token. Please check your API key."
EXPIRED = b"Your token has expired. Please contact the administrator to renew it."
IP_BLOCKED = (b'{"error":{"message":"Access denied. Reason: Malicious activity detected. Permanent ban.",'
              b'"type":"ip_blocked","code":"ip_blocked","ip":"198.51.100.9"}}')
STOPPED = b"Proxy service is currently disabled"


@pytest.mark.parametrize("headers, status, body, verdict, words, marker", [
    # the gate predicts a 403 token_rejected "Invalid token" (a wrong key, no user token)
    ([("x-api-key", "sk-wrong")], 403, TOKEN_403 % INVALID, "as_predicted",
     "403 from the proxy auth layer, as predicted", ":no_entry:"),
    ([("x-api-key", "sk-wrong")], 403, TOKEN_403 % EXPIRED, "other_message",
     'the real proxy says "Your token has expired.', ":warning:"),
    ([("x-api-key", "sk-wrong")], 403, b"<html>Forbidden</html>", "other_message",
     "not the auth layer's token_rejected body", ":warning:"),
    ([("x-api-key", "sk-wrong")], 401, b"", "other_status", "401 where the auth layer would answer 403", ":warning:"),
    ([("x-api-key", "sk-wrong")], 200, b"{}", "should_refuse", "passed although the auth layer should answer 403",
     ":warning:"),
    ([("x-api-key", "sk-wrong")], 403, IP_BLOCKED, "ip_blocked", "IP filter (blacklist or whitelist, client "
     "198.51.100.9)", ":warning:"),
    # the gate predicts a 401 (no key)
    ([], 401, b"", "as_predicted", "401 from the proxy auth layer, as predicted", ":no_entry:"),
    ([], 403, TOKEN_403 % INVALID, "other_status", "403 where the auth layer would answer 401", ":warning:"),
    ([], 503, STOPPED, "service_stopped", "its proxy service is stopped", ":warning:"),
    # the gate predicts a pass
    ([("x-api-key", KEY)], 200, b"{}", "passed", "passed, as predicted", ""),
    ([("x-api-key", KEY)], 403, TOKEN_403 % INVALID, "other_403",
     'api_key or user tokens differ from what the gate reads; it says "Invalid token.', ":warning:"),
    ([("x-api-key", KEY)], 401, b"", "other_401", "401 the auth layer would not give", ":warning:"),
])
async def test_v4_shadow_predicts_the_exact_answer_and_names_mismatches(gate, headers, status, body, verdict, words,
                                                                        marker):
    gate.configure(auth_enforce="false", auth_profile="v4")
    f = await send(gate, headers=headers)
    assert f.response is None
    f.response = tutils.tresp(status_code=status, content=body, headers=())
    gate.responseheaders(f)
    if status in (403, 503):  # judged once the body is in: the body tells who answered
        assert "shadow_verdict" not in f.metadata["auth"]
    gate.response(f)
    assert f.metadata["auth"]["shadow_verdict"] == verdict
    assert f.comment.startswith(f"{status} · shadow · ") and words in f.comment, f.comment
    assert f.marked == marker
    assert f.response.headers["x-auth-gate"].endswith(f"; shadow={verdict}")


async def test_v4_shadow_predicts_the_500_of_a_failing_token_store(gate, monkeypatch):
    from authgate.rules.tokens import TokenStoreError

    class Failing:
        def lookup(self, token):
            raise TokenStoreError("Failed to open database: unable to open database file")

    gate.configure(auth_enforce="false", auth_profile="v4")
    monkeypatch.setattr(gate.state, "store", Failing())
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert f.metadata["auth"]["predicted_status"] == 500
    f.response = tutils.tresp(status_code=500, content=b"", headers=())
    gate.responseheaders(f)
    gate.response(f)
    assert f.metadata["auth"]["shadow_verdict"] == "as_predicted" and f.marked == ":no_entry:"
    assert f.comment.startswith("500 · shadow · 500 from the proxy auth layer, as predicted")
@pytest.mark.parametrize("sent, status, level, verdict", [
    ("sk-wrong", 401, logging.INFO, "401 from the proxy auth layer, as predicted"),  # the commonest
    (KEY, 200, logging.INFO, "passed, as predicted"),
    (KEY, 401, logging.WARNING, "401 the auth layer would not give"),
])
async def test_every_verdict_reaches_the_log(gate, caplog, sent, status, level, verdict):
    caplog.set_level(logging.INFO)
    gate.configure(auth_enforce="false")
    f = await send(gate, headers=[("x-api-key", sent)])
    f.response = tutils.tresp(status_code=status)
    gate.responseheaders(f)
    logged = [r for r in caplog.records if r.name == "authgate" and "· shadow ·" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == level
    assert logged[0].getMessage() == f"{f.comment} — GET /v1/models" and verdict in logged[0].getMessage()
