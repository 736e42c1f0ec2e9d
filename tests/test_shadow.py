"""Shadow (authgate/shadow.py): auth_enforce false forwards everything as sent and judges the
real proxy's answer against the gate's prediction."""

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
