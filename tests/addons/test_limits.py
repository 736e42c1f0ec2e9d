"""Limits (authgate/addons/limits.py): the body limit option, and the flow of a request a guard refused."""

import json

import pytest
from mitmproxy import exceptions, flow

from authgate import mitmproxy_compat
from gate_harness import KEY, config, default_config, gate, req_flow, upstream  # noqa: F401


def test_the_body_limit_option(gate):
    assert gate.state.max_body == 100 * 1024 * 1024  # as the original's ABV_MAX_BODY_SIZE
    gate.configure(auth_max_body_size="2m")
    assert gate.state.max_body == 2 * 1024 * 1024
    for bad in ("2kb", "lots", "0", "-1"):
        with pytest.raises(exceptions.OptionsError, match="auth_max_body_size"):
            gate.configure(auth_max_body_size=bad)
    assert gate.state.max_body == 2 * 1024 * 1024  # the last good value stays


@pytest.mark.parametrize("kind, status, code", [
    ("body_too_large", 413, "request_too_large"),
    ("trailers", 400, "trailers_not_supported"),
])
async def test_a_flow_refused_on_the_wire_shows_the_answer_the_client_got(gate, kind, status, code):
    f = req_flow("/v1/chat/completions", "POST", headers=[("Authorization", f"Bearer {KEY}")])
    gate.hook("requestheaders", f)  # decided; the body never completes: no request hook
    f.error = flow.Error(mitmproxy_compat.REFUSED + kind)
    gate.error(f)
    assert f.response.status_code == status and json.loads(f.response.content)["error"]["code"] == code
    assert f.comment.endswith(f"· {status} {kind.replace('_', ' ')}")
