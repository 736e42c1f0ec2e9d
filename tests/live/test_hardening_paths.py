"""Issue #11, 6 and 7: the path that decides, against a live `mitmdump -s addon/auth.py` and an
upstream that records every request and connection (upstreams.Recorder): under profile v4 no dot
segment gets the /internal/ exemption; an absolute-form /healthz is the gate's own route
(test_security_forwarding.py covers the rest of absolute-form).

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its test ends.
"""

from __future__ import annotations

import json

from hardening_probes import KEY
from live import config_text
from live_fixtures import confdir, gate, recorder  # noqa: F401
from raw_http import raw_exchange, request

# ====================================================================== 6. v4: no dot segment gets the exemption

def test_6_v4_internal_dot_segments_need_the_key(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url, extra="  profile: v4"))
    for path in (b"/internal/../v1/chat/completions", b"/internal/%2e%2e/v1/chat/completions",
                 b"/internal/..%2fv1/chat/completions", b"/internal/%2E%2E%2Fv1/chat/completions",
                 b"/internal/./../v1/models", b"/internal/%252e%252e/v1/models", b"/internal\\..\\v1/models"):
        status, _, payload = raw_exchange(m.port, request(b"POST", path, [], b"{}"))
        assert status == 401, (path, status, payload[:200])
        if path.startswith(b"/internal/"):  # (a backslash is no separator: no /internal/ path at all)
            assert "internal_dot_segments" in json.loads(payload)["auth_gate"]["notes"], path
    assert recorder.requests == [] and recorder.connections == 0
    status, _, _ = raw_exchange(m.port, request(b"POST", b"/internal/warmup", [], b"{}"))
    assert status == 200 and recorder.requests[0]["path"] == "/internal/warmup"  # the exemption itself stays


# ====================================================================== 7. absolute-form

def test_7_absolute_form_healthz_is_the_gates_own_route(gate, recorder):
    m = gate(config_text("all_except_health", KEY, recorder.url))
    status, _, payload = raw_exchange(m.port, request(b"GET", b"http://127.0.0.1:8045/healthz", [],
                                                      host=b"127.0.0.1:8045"))
    assert (status, json.loads(payload)) == (200, {"status": "ok"})
    assert recorder.requests == [] and recorder.connections == 0
