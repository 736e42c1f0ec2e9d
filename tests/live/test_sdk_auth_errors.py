"""The official SDKs (openai, anthropic, google-genai) with a wrong or missing key, through a live
gate (strict, a known key, the demo upstream behind it): each raises its own auth error whose
message is the gate's explanation, in the SDK's own dialect, naming the header the SDK sends by
default (the one the gate read: auth_gate.winner), on a stream too.
"""

from __future__ import annotations

import pytest

from sdk_clients import KEY, SDKS, WRONG_KEY, Client, clean_env, demo, expect_auth_error, fp, gate, gate_body  # noqa: F401


@pytest.mark.parametrize("sdk", SDKS)
def test_wrong_key_raises_the_sdks_auth_error_naming_the_header(sdk, gate):
    client = Client(sdk, gate.url, key=WRONG_KEY)
    exc, message = expect_auth_error(sdk, client.ask)
    header = client.key_header()  # the one the SDK sent by default, the wrong key in it
    body = gate_body(sdk, exc)
    # The header the SDK sends by default is the one the gate read, and the only one sent.
    assert body["auth_gate"]["winner"] == header
    assert body["auth_gate"]["reason"] == "mismatch"
    assert {h: s for h, s in body["auth_gate"]["headers"].items() if s != "absent"} == {header: "won"}
    assert f"Key header read: {header} won" in message
    assert f"The key read from {header} does not match proxy.api_key." in message
    assert "Fix: Use the api_key from config.yaml" in message
    assert WRONG_KEY not in str(exc) and KEY not in str(exc)
    assert fp(WRONG_KEY) in message  # a fingerprint of what was presented, never the key


@pytest.mark.parametrize("sdk", SDKS)
def test_missing_key_raises_the_sdks_auth_error_with_the_fix(sdk, gate):
    client = Client(sdk, gate.url, no_key=True)
    exc, message = expect_auth_error(sdk, client.ask)
    assert client.sent[-1].keys == {}, client.sent[-1]  # the request went without any key header
    body = gate_body(sdk, exc)
    assert body["auth_gate"]["winner"] is None and body["auth_gate"]["reason"] == "missing"
    assert "No Authorization, x-api-key or x-goog-api-key header was sent." in message
    assert "Fix: Send Authorization: Bearer <proxy api_key>." in message


@pytest.mark.parametrize("sdk", SDKS)
def test_401_speaks_the_sdks_dialect(sdk, gate):
    exc, message = expect_auth_error(sdk, Client(sdk, gate.url, key=WRONG_KEY).ask)
    body = gate_body(sdk, exc)
    if sdk == "openai":
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "invalid_api_key"
        assert exc.code == "invalid_api_key"
    elif sdk == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    else:
        assert body["error"]["code"] == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    assert exc.response.headers["www-authenticate"] == 'Bearer realm="antigravity-proxy", error="invalid_token"'


@pytest.mark.parametrize("sdk", SDKS)
def test_wrong_key_on_a_stream_raises_the_auth_error(sdk, gate):
    client = Client(sdk, gate.url, key=WRONG_KEY)
    exc, message = expect_auth_error(sdk, client.ask_stream)
    assert gate_body(sdk, exc)["auth_gate"]["winner"] == client.key_header()
    assert "Fix:" in message
