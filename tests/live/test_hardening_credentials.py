"""Issue #11, 2 and 3: credentials by any road, against a live `mitmdump -s addon/auth.py` and an
upstream that records every request exactly as it arrives (upstreams.Recorder): a `?key=` query
parameter (any case, any percent-encoding) is stripped when forwarding and only its fingerprint is
in the gate's lines; `Proxy-Authorization` and `X-Forwarded-Authorization` are never forwarded.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its test ends.
"""

from __future__ import annotations

import json
import re

import pytest

from authgate.rules.credentials import fingerprint
from hardening_probes import AUTH, KEY, K
from live import config_text
from live_fixtures import confdir, gate, recorder  # noqa: F401
from raw_http import raw_exchange, request

QUERY_KEYS = [b"?key=" + K, b"?key=" + K + b"&alt=sse", b"?alt=sse&key=" + K, b"?KEY=" + K, b"?%6Bey=" + K,
              b"?key=" + K + b"&key=sk-other", b"?key=" + K + b"&x=1&key=" + K]


@pytest.mark.parametrize("mode", ["off", "strict", "all_except_health"])
def test_2_3_no_client_credential_is_forwarded(gate, recorder, mode):
    m = gate(config_text(mode, KEY, recorder.url), "--set", "flow_detail=0")
    credentials = [(b"Proxy-Authorization", b"Basic " + K), (b"X-Forwarded-Authorization", b"Bearer " + K),
                   (b"proxy-authorization", b"Bearer " + K)]
    for i, query in enumerate(QUERY_KEYS):
        path = f"/v1beta/models/m{i}:generateContent".encode()
        status, _, _ = raw_exchange(m.port, request(b"POST", path + query, [AUTH, *credentials], b"{}"))
        assert status == 200, (query, status)
        (seen,) = recorder.find(path.decode())
        assert K not in (seen["line"] + json.dumps(seen["headers"])).encode(), seen
        names = {n.lower() for n, _ in seen["headers"]}
        assert not names & {"authorization", "proxy-authorization", "x-forwarded-authorization"}, names
        assert "key=" not in seen["path"].lower() and "%6bey" not in seen["path"].lower()
        assert ("alt=sse" in seen["path"]) == (b"alt=sse" in query) and ("x=1" in seen["path"]) == (b"x=1" in query)
    # Denied with only a query key: the gate's log line shows the fingerprint, never the key
    if mode != "off":
        for query in QUERY_KEYS[:2]:
            status, _, _ = raw_exchange(m.port, request(b"GET", b"/v1beta/models" + query, []))
            assert status == 401
        assert m.wait_for(fingerprint(KEY), timeout=3.0), m.output[-2000:]
    # flow_detail=0: mitmproxy prints no flow, so nothing mitmdump printed may hold the key
    out = m.stop()
    assert KEY not in out, [line for line in out.splitlines() if KEY in line][:3]


def test_2_the_gates_own_lines_never_hold_a_query_key_at_any_flow_detail(gate, recorder):
    """flow_detail 1-4: mitmproxy's own dump of each flow prints the request line as the client sent
    it (docs/security.md); the gate's lines (the decision, errors) carry only the fingerprint."""
    for detail in ("1", "2", "4"):
        m = gate(config_text("strict", KEY, recorder.url), "--set", f"flow_detail={detail}")
        raw_exchange(m.port, request(b"GET", b"/v1beta/models?key=" + K, []))
        raw_exchange(m.port, request(b"GET", b"/v1beta/models?alt=sse&key=" + K, [(b"x-goog-api-key", b"sk-wrong")]))
        assert m.wait_for("— GET /v1beta/models?alt=sse&key=<", timeout=3.0)
        lines = m.stop().splitlines()
        gate_lines = [line for line in lines if re.match(r"^\[[\d:.]+\] \d{3} · ", line)]  # the gate's log
        assert len(gate_lines) == 2 and all(fingerprint(KEY) in line for line in gate_lines), gate_lines
        assert not [line for line in lines if KEY in line and " · " in line]  # nor its flow view (Auth gate)
    assert recorder.requests == []
