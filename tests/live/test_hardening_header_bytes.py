"""Issue #11, 1: header values the original's HTTP parser refuses (a control byte: a bare CR that a
lenient upstream reads as a second header, NUL, DEL, ...; an obs-fold line) get 400 before auth,
naming the header, in every mode, against a live `mitmdump -s addon/auth.py` and an upstream that
records every request and connection (upstreams.Recorder): nothing is forwarded.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its test ends.
"""

from __future__ import annotations

import json

import pytest

from hardening_probes import AUTH, KEY, K
from live import config_text
from live_fixtures import confdir, gate, recorder  # noqa: F401
from raw_http import raw_exchange, request

BAD_LINES = {
    # name: the header line as it goes on the wire
    "bare CR injecting a key header": b"X-Foo: a\rx-goog-api-key: " + K,
    "bare CR injecting Transfer-Encoding": b"X-Foo: a\rTransfer-Encoding: chunked",
    "DEL after a Bearer key (a right x-api-key beside it)": b"Authorization: Bearer sk-abc\x7f",
    "NUL": b"X-Foo: a\x00b",
    "SOH in x-api-key": b"x-api-key: " + K + b"\x01",
    "VT inside": b"X-Foo: a\x0bb",
    "ESC": b"X-Foo: a\x1b[31m",
    "US": b"X-Foo: a\x1f",
    "obs-fold (space)": b"X-Foo: a\r\n x-api-key: " + K,
    "obs-fold (tab)": b"X-Foo: a\r\n\tb",
}


@pytest.mark.parametrize("mode", ["off", "strict"])
def test_1_header_values_the_original_refuses_get_400_and_nothing_is_forwarded(gate, recorder, mode):
    m = gate(config_text(mode, KEY, recorder.url))
    for what, line in BAD_LINES.items():
        name = line.split(b":")[0].decode()
        for extra in ([], [b"x-api-key: " + K]):
            head = [b"POST /v1/chat/completions HTTP/1.1", b"Host: gate", *extra, line,
                    b"Content-Length: 60", b"Connection: close"]
            # a body that a lenient upstream could take for a second request, carrying the key
            body = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + K + b"\r\n\r\n"
            raw = b"\r\n".join(head) + b"\r\n\r\n" + body[:60]
            status, headers, payload = raw_exchange(m.port, raw)
            assert status == 400, f"{mode}, {what}: {status} {payload[:200]!r}"
            err = json.loads(payload)
            assert err["auth_gate"]["headers"] == {name: err["auth_gate"]["reason"]}, (what, err["auth_gate"])
            assert err["auth_gate"]["reason"] == ("header_obs_fold" if "obs-fold" in what else "header_control_byte")
            assert name in err["error"]["message"] and "400" in err["error"]["message"]
            assert K not in payload and b"sk-abc" not in payload and b"Transfer-Encoding: chunked" not in payload
            assert headers.get("x-auth-gate", "").startswith("deny; mode=") and "reason=header_" in headers["x-auth-gate"]
    assert recorder.requests == [] and recorder.connections == 0, [r["line"] for r in recorder.requests]
    # 0x80-0xFF fall through as before (the original's to_str(): only a key header would count as absent)
    status, _, _ = raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH, (b"X-Note", "café ☕".encode())]))
    assert status == 200
    (seen,) = recorder.requests
    assert ("X-Note", "café ☕".encode().decode("latin-1")) in seen["headers"]
