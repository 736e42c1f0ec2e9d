"""Monitor (authgate/addons/monitor.py): the IP a user token came from is recorded once the response
is out, whatever its status (monitor.rs), in memory; it counts for the token's IP limit from
the next request on, and survives a reload of config.yaml."""

import json

from mitmproxy.test import tutils

from gate_harness import KEY, config, default_config, gate, running_gate, send, upstream, upstream_fails  # noqa: F401

TOKENS = """tokens:
  - token: sk-one-ip
    username: carol
    max_ips: 1
"""


def v4_config(path, upstream, mode="strict", extra=""):
    path.write_text(f"proxy:\n  auth_mode: {mode}\n  api_key: {KEY}\n  profile: v4\n{extra}"
                    f"upstream:\n  url: http://127.0.0.1:{upstream}\n{TOKENS}")
    return path


def from_ip(ip):
    return [("x-api-key", "sk-one-ip"), ("X-Forwarded-For", f"{ip}, 10.0.0.1")]


async def test_the_binding_is_recorded_after_the_response_whatever_its_status(tmp_path, upstream):
    with running_gate(v4_config(tmp_path / "config.yaml", upstream)) as g:
        f = await send(g, headers=from_ip("203.0.113.1"))
        assert f.response is None and f.metadata["auth_bind"][1] == "203.0.113.1"
        # not yet: the original checks, answers, and only then records
        assert (await send(g, headers=from_ip("203.0.113.2"))).response is None
        f.response = tutils.tresp(status_code=500)  # the upstream's status does not matter
        g.responseheaders(f)
        g.response(f)
        assert "auth_bind" not in f.metadata
        f = await send(g, headers=from_ip("203.0.113.2"))
        assert f.response.status_code == 403
        assert json.loads(f.response.content)["error"]["message"].startswith("IP limit reached (1/1)")
        assert (await send(g, headers=from_ip("203.0.113.1"))).response is None  # a bound IP always passes


async def test_an_upstream_failure_records_too_and_only_once(tmp_path, upstream, monkeypatch):
    with running_gate(v4_config(tmp_path / "config.yaml", upstream)) as g:
        calls = []
        monkeypatch.setattr(g.state, "record", calls.append)
        f = await send(g, headers=from_ip("203.0.113.1"))
        upstream_fails(g, f, "connection refused", connected=False)
        g.response(f)
        assert len(calls) == 1 and calls[0][0].startswith("cfg-") and calls[0][1] == "203.0.113.1"


async def test_recorded_bindings_survive_a_reload_and_off_mode_records_too(tmp_path, upstream):
    path = v4_config(tmp_path / "config.yaml", upstream, mode="off")
    with running_gate(path) as g:
        f = await send(g, headers=from_ip("203.0.113.1"))  # off: tagged, unchecked, recorded
        assert f.metadata["auth"]["token"] == "tagged"
        g.response(f)
        v4_config(path, upstream, mode="strict", extra="  port: 9001\n")
        f = await send(g, headers=from_ip("203.0.113.2"))
        assert f.response.status_code == 403 and g.settings.port == 9001


async def test_faq_and_denials_record_nothing(gate):
    f = await send(gate, headers=[("x-api-key", KEY)])
    assert "auth_bind" not in f.metadata
    gate.configure(auth_profile="v4")
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert f.response.status_code == 403 and "auth_bind" not in f.metadata



def test_hooks_that_a_snapshot_does_not_need_are_not_called(gate):
    # each handler mitmproxy calls costs 1-2 µs per flow: Monitor's only under v4, the late
    # shadow verdict's (Shadow, Replies) only in shadow mode
    assert gate.monitor.response is None and gate.monitor.error is None
    assert gate.shadow.response is None and gate.replies.response is None
    gate.configure(auth_profile="v4", auth_enforce="false")
    assert callable(gate.monitor.response) and callable(gate.monitor.error)
    assert callable(gate.shadow.response) and callable(gate.replies.response)
    gate.configure(auth_profile="faq", auth_enforce="true")
    assert gate.monitor.response is None and gate.shadow.response is None
    assert callable(gate.replies.error) and callable(gate.shadow.error)  # never switched
