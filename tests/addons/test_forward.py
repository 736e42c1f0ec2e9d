"""Forward (authgate/addons/forward.py): what passes goes to upstream.url without the client's key headers,
the client's request is put back on the flow, and the wait for the upstream is bounded."""

import asyncio
import json
import logging

import pytest
from mitmproxy import exceptions
from mitmproxy.test import tutils

from authgate import mitmproxy_compat
from gate_harness import KEY, config, default_config, gate, running_gate, send, upstream, write  # noqa: F401


async def test_pass_rewrites_to_upstream_strips_keys_and_restores_them(gate, config, upstream):
    write(config, upstream_port=upstream, prefix="/base")
    f = await send(gate, "/v1/models?x=1", headers=[("X-Api-Key", KEY), ("x-goog-api-key", "other"),
                                                    ("accept", "application/json")])
    assert f.response is None and f.comment == "pass · strict · x-api-key won (Authorization absent; " \
                                               "x-goog-api-key ignored) · key ok"
    r = f.request
    assert (r.scheme, r.host, r.port, r.path) == ("http", "127.0.0.1", upstream, "/base/v1/models?x=1")
    assert r.headers["host"] == f"127.0.0.1:{upstream}"
    assert "x-api-key" not in r.headers and "x-goog-api-key" not in r.headers
    assert f.marked == ""
    f.response = tutils.tresp()
    gate.responseheaders(f)
    gate.response(f)
    # mitmweb shows what the client sent, and a replay is decided on it again
    assert r.path == "/v1/models?x=1" and r.headers["x-api-key"] == KEY
    assert f.response.headers["access-control-allow-origin"] == "*"
    gate.request(f.copy())  # replay: decided again, same outcome


async def test_upstream_headers_are_added_forwarded_and_never_shown(tmp_path, upstream, monkeypatch, caplog):
    monkeypatch.setenv("UPSTREAM_SECRET", "real-upstream-secret")
    path = tmp_path / "config.yaml"
    path.write_text(f'proxy:\n  auth_mode: strict\n  api_key: "{KEY}"\nupstream:\n'
                    f'  url: http://127.0.0.1:{upstream}\n  headers:\n    x-goog-api-key: "${{UPSTREAM_SECRET}}"\n')
    caplog.set_level(logging.DEBUG)
    with running_gate(path) as g:
        f = await send(g, headers=[("Authorization", f"Bearer {KEY}"), ("x-goog-api-key", "client-sent")])
        # upstream sees its own credential and none of the client's key headers
        assert f.request.headers.get_all("x-goog-api-key") == ["real-upstream-secret"]
        assert "authorization" not in f.request.headers
        f.response = tutils.tresp()
        g.response(f)
        # the flow shows what the client sent
        assert f.request.headers.get_all("x-goog-api-key") == ["client-sent"]
        assert f.request.headers["authorization"] == f"Bearer {KEY}"
        assert "real-upstream-secret" not in f.comment + json.dumps(f.metadata["auth"])
        assert "real-upstream-secret" not in g.commands.status()
    assert "real-upstream-secret" not in caplog.text and "adds x-goog-api-key" in caplog.text


async def test_upstream_timeout_option_applies_to_the_next_request(gate):
    assert gate.settings.upstream.timeout == 300.0
    gate.configure(auth_upstream_timeout=2)
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert f.metadata["auth"]["upstream"][1] == 2.0
    assert gate.forward._timers.when(f.id) - asyncio.get_running_loop().time() <= 2.0
    with pytest.raises(exceptions.OptionsError, match="auth_upstream_timeout"):
        gate.configure(auth_upstream_timeout=600)
    assert gate.settings.upstream.timeout == 2.0  # the last good value stays


async def test_timer_gives_up_only_on_a_flow_still_waiting(gate, monkeypatch):
    cut = []
    monkeypatch.setattr(mitmproxy_compat, "cut", lambda f: cut.append(f.id) or True)
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert f.id in gate.forward._timers  # armed for upstream.timeout
    gate.forward._give_up(f, 300.0)
    assert cut == [f.id] and f.metadata["auth"]["timed_out"]
    g = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    g.response = tutils.tresp()
    gate.responseheaders(g)
    assert g.id not in gate.forward._timers  # disarmed by the response headers
    gate.forward._give_up(g, 300.0)
    assert cut == [f.id]
    # nothing to cut yet (no upstream connection): armed again rather than forgotten
    monkeypatch.setattr(mitmproxy_compat, "cut", lambda f: False)
    h = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    gate.forward._give_up(h, 300.0)
    assert h.id in gate.forward._timers and "timed_out" not in h.metadata["auth"]


async def test_no_client_credential_is_forwarded_and_the_flow_shows_what_was_sent(gate, upstream):
    creds = [("Authorization", f"Bearer {KEY}"), ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
             ("X-Forwarded-Authorization", f"Bearer {KEY}")]
    f = await send(gate, f"/v1beta/models/m:generateContent?key={KEY}&alt=sse", "POST", headers=creds)
    assert f.request.path == "/v1beta/models/m:generateContent?alt=sse"
    assert not {"authorization", "proxy-authorization", "x-forwarded-authorization"} & set(f.request.headers.keys())
    f.response = tutils.tresp()
    gate.response(f)
    assert f.request.path == f"/v1beta/models/m:generateContent?key={KEY}&alt=sse"  # restored for mitmweb, replays
    assert f.request.headers["proxy-authorization"] == "Basic dXNlcjpwYXNz"
    gate.configure(auth_enforce="false")  # shadow mode forwards as sent
    f = await send(gate, f"/v1beta/models?key={KEY}", headers=creds)
    assert f.request.path == f"/v1beta/models?key={KEY}" and "proxy-authorization" in f.request.headers
