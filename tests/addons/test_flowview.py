"""FlowView (authgate/addons/flowview.py): the "Auth gate" content view, through mitmproxy's own content
view machinery, for each kind of flow the gate decides; and the gate's own answers shown at the
gate's address with their marker. A live mitmweb and a browser: test_web_views.py."""

import json

from mitmproxy import contentviews
from mitmproxy.test import tutils

from authgate.addons import flowview
from gate_harness import KEY, config, default_config, gate, running_gate, send, upstream  # noqa: F401

GATE_ADDRESS = ("127.0.0.1", 8045)


def shown(f, message) -> tuple[str, str]:
    """(view name, text) as mitmweb's "auto" view shows the message (11.x: View, 12.x: Contentview)."""
    if hasattr(contentviews, "prettify_message"):
        r = contentviews.prettify_message(message, f, "auto")
        return r.view_name, r.text
    description, lines, _ = contentviews.get_message_content_view("Auto", message, f)
    return description, "\n".join("".join(text for _, text in line) for line in lines)


async def decided(gate, *args, **kw):
    f = flowview_flow(*args, **kw)
    gate.request(f)
    return f


def flowview_flow(*args, **kw):
    from gate_harness import req_flow
    f = req_flow(*args, **kw)
    f.request.content = b""  # a GET as clients send it
    f.client_conn.sockname = GATE_ADDRESS  # where the client called the gate
    return f


async def test_a_denial_opens_in_the_view_on_both_tabs(gate):
    f = await decided(gate, headers=[("Authorization", "Bearer sk-old"), ("x-api-key", KEY)])
    name, text = shown(f, f.request)
    assert name.lower() == "auth gate"
    lines = text.splitlines()
    assert lines[0].startswith("Auth gate: 401 · strict · Authorization won (x-api-key ignored) · key mismatch")
    assert "Answered by the auth gate itself at 127.0.0.1:8045: nothing was sent to the upstream" in text
    assert "  x-api-key: present, ignored (a higher-priority header came first)" in lines
    assert any(line.startswith("fix: Remove Authorization") for line in lines)
    assert lines[-2:] == ["Request body:", "(no body)"]  # a GET: no body, and the view says so
    name, text = shown(f, f.response)
    assert name.lower() == "auth gate" and "Response body (what the client received):" in text
    body = text.split("Response body (what the client received):\n", 1)[1]
    assert all(len(line) <= flowview.WIDTH for line in text.splitlines())  # wrapped, not clipped
    message = json.loads(f.response.content)["error"]["message"]
    assert " ".join(w for line in body.splitlines() for w in line.split()).count(message.split(". ")[0]) == 1
    assert KEY not in text


async def test_a_pass_opens_in_the_view_the_upstreams_answer_does_not(gate):
    f = await decided(gate, "/v1/chat/completions", "POST",
                      headers=[("x-api-key", KEY), ("content-type", "application/json")])
    f.request.content = json.dumps({"model": "demo", "messages": [{"role": "user", "content": "hi"}]}).encode()
    name, text = shown(f, f.request)
    assert name.lower() == "auth gate"
    assert "Passed by the auth gate; it goes to http://127.0.0.1:" in text
    assert '"content": "hi"' in text.split("Request body:", 1)[1]
    f.response = tutils.tresp(content=b'{"ok": true}', headers=((b"content-type", b"application/json"),))
    gate.responseheaders(f)
    gate.response(f)
    assert "Passed by the auth gate and forwarded to http://127.0.0.1:" in shown(f, f.request)[1]
    name, _ = shown(f, f.response)
    assert name.lower() != "auth gate"  # the upstream's JSON keeps mitmproxy's view


async def test_local_answers_show_the_gates_address_and_marker(gate):
    gate.configure(auth_mode="all_except_health")
    for path, method, status in (("/healthz", "GET", 200), ("/healthz", "POST", 405), ("/v1/x", "OPTIONS", 200)):
        f = await decided(gate, path, method)
        assert f.response.status_code == status
        assert (f.request.scheme, f.request.host, f.request.port) == ("http", *GATE_ADDRESS)
        assert f.request.host_header == "127.0.0.1:8045" and f.marked == ":shield:"
        assert "Answered by the auth gate itself at 127.0.0.1:8045" in shown(f, f.response)[1]
    f = await decided(gate, "/v1/models")
    assert f.marked == ":no_entry:" and f.request.port == 8045
    f = await decided(gate, "/v1/models", headers=[("x-api-key", KEY)])
    assert f.response is None and f.marked == "" and f.request.port != 8045  # forwarded: the upstream's URL


async def test_a_flow_the_gate_no_longer_remembers_is_decided_again(gate):
    f = await decided(gate, headers=[("x-api-key", "sk-wrong")])
    gate.state._decisions.clear()  # as for a flow loaded from a file
    text = shown(f, f.request)[1]
    assert "no longer in memory" in text and "result: 401: key mismatch" in text


async def test_the_view_speaks_auth_lang_and_leaves_other_flows_alone(config):
    with running_gate(config, auth_lang="ja") as g:
        f = flowview_flow(headers=[("x-api-key", "sk-wrong")])
        g.request(f)
        text = shown(f, f.request)[1]
        assert "認証ゲート自身が 127.0.0.1:8045 で応答しました" in text and "リクエストボディ：" in text
        other = flowview_flow()
        other.response = tutils.tresp()
        assert g.flowview.priority(b"", other, other.request) == -1  # not decided by the gate
