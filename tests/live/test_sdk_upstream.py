"""The official SDKs (openai, anthropic, google-genai) and the gate's upstream side:
upstream.headers with ${ENV} reaches the upstream while the client's key does not; a dead upstream
raises each SDK's server error carrying the gate's words. Each case has a gate of its own (strict, a
known key).
"""

from __future__ import annotations

import os

import pytest

from live import closed_port
from sdk_clients import KEY, SDKS, SERVER_ERROR, WRONG_KEY, Client, clean_env, demo, expect_auth_error, fp, start_gate  # noqa: F401

UPSTREAM_SECRET = "gk-upstream-secret-0123456789abcdef"  # only in the gate's environment
SECRET_ENV = "DEMO_UPSTREAM_SECRET"


# ====================================================================== upstream.headers

@pytest.fixture(scope="module")
def gate_with_upstream_key(demo, tmp_path_factory):
    # The secret is only in mitmdump's environment: config.yaml holds the ${...} reference.
    g = start_gate(tmp_path_factory.mktemp("sdk-gate-upstream-key"), demo.url,
                   headers={"x-goog-api-key": "${%s}" % SECRET_ENV}, env={SECRET_ENV: UPSTREAM_SECRET})
    yield g
    g.stop()
    assert UPSTREAM_SECRET not in g.output, "upstream.headers' secret appeared in mitmdump's output"
    assert KEY not in g.output


@pytest.mark.parametrize("sdk", ["google-genai", "openai"])
def test_upstream_headers_reach_the_upstream_and_the_client_key_does_not(sdk, gate_with_upstream_key):
    text = Client(sdk, gate_with_upstream_key.url).ask()
    # The upstream's own credential (${DEMO_UPSTREAM_SECRET}, expanded in mitmdump's environment)
    # arrived; the client's proxy key, sent in the same or another header, did not.
    assert f"key headers: x-goog-api-key present: {fp(UPSTREAM_SECRET)}; absent: Authorization, x-api-key." \
        in text, text
    assert fp(KEY) not in text and KEY not in text and UPSTREAM_SECRET not in text
    assert SECRET_ENV not in os.environ  # the test process never had it: the gate expanded it


def test_upstream_headers_wrong_client_key_still_401(gate_with_upstream_key):
    exc, message = expect_auth_error("google-genai", Client("google-genai", gate_with_upstream_key.url, WRONG_KEY).ask)
    assert UPSTREAM_SECRET not in str(exc) and fp(UPSTREAM_SECRET) not in str(exc)


# ====================================================================== the upstream fails

@pytest.fixture(scope="module")
def gate_dead_upstream(clean_env, tmp_path_factory):
    g = start_gate(tmp_path_factory.mktemp("sdk-gate-dead"), f"http://127.0.0.1:{closed_port()}")
    yield g
    g.stop()


@pytest.mark.parametrize("sdk", SDKS)
def test_dead_upstream_raises_the_sdks_server_error_with_the_gates_words(sdk, gate_dead_upstream):
    with pytest.raises(SERVER_ERROR[sdk]) as info:
        Client(sdk, gate_dead_upstream.url).ask()
    exc = info.value
    if sdk == "google-genai":
        assert (exc.code, exc.status) == (502, "UNAVAILABLE")
        body = exc.details
    else:
        assert exc.status_code == 502
        body = exc.response.json()
    assert body["auth_gate"] == {"outcome": "allow", "reason": "key_ok", "upstream_error": "upstream_unreachable"}
    assert "The auth gate passed this request, but upstream" in str(exc), str(exc)
