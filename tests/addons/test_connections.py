"""Connections (authgate/addons/connections.py): a deadline for each request head; no socket left open."""

import pytest
from mitmproxy import exceptions
from mitmproxy.test import tflow, tutils

from authgate import mitmproxy_compat
from gate_harness import KEY, config, default_config, gate, send, upstream  # noqa: F401


def test_the_head_timeout_option(gate):
    assert gate.connections.timeout == 30.0  # as hyper's header_read_timeout
    gate.configure(auth_head_timeout=5)
    assert gate.connections.timeout == 5.0
    with pytest.raises(exceptions.OptionsError, match="auth_head_timeout"):
        gate.configure(auth_head_timeout=600)


async def test_each_request_head_has_a_deadline(gate, monkeypatch):
    closed = []
    monkeypatch.setattr(mitmproxy_compat, "close_client", lambda client: closed.append(client.id) or True)
    c = gate.connections
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    client = f.client_conn
    c.client_connected(client)
    deadline = c._deadlines[client.id][0]
    c.requestheaders(f)  # a head arrived in time: no deadline while the request runs
    assert client.id not in c._deadlines
    c._expire(deadline + 100)
    assert closed == []
    f.response = tutils.tresp()
    c.response(f)  # the next request on the kept-alive connection gets the same time
    c._expire(c._deadlines[client.id][0] + 0.01)
    assert closed == [client.id] and client.id not in c._deadlines and c.closed == 1


async def test_a_connection_still_receiving_a_response_is_left_alone(gate, monkeypatch):
    monkeypatch.setattr(mitmproxy_compat, "close_client", lambda client: None)
    c = gate.connections
    client = tflow.tclient_conn()
    c.client_connected(client)
    deadline = c._deadlines[client.id][0]
    c._expire(deadline + 1)
    assert c._deadlines[client.id][0] == deadline + 2  # looked at again a second later
    c.client_disconnected(client)
    assert client.id not in c._deadlines


async def test_no_deadline_with_timeout_0_nor_for_upgraded_or_http2_connections(gate):
    c = gate.connections
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    f.response = tutils.tresp(status_code=101)
    c.response(f)
    f.response = tutils.tresp()
    f.request.http_version = "HTTP/2.0"
    c.response(f)
    assert f.client_conn.id not in c._deadlines
    gate.configure(auth_head_timeout=0)
    c.client_connected(tflow.tclient_conn())
    assert c._deadlines == {}
