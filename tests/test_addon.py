"""The mitmproxy adapter, with mitmproxy's own test helpers (taddons, tflow)."""

import asyncio
import json
import logging
import os
import re
import shutil
import socket

import pytest
from mitmproxy import connection, exceptions, flow, http
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow, tutils

import auth
from authgate.settings import read_config

KEY = "sk-0123456789abcdef0123456789abcdef"


@pytest.fixture
def upstream():
    """A port for upstream.url: nothing in these tests connects to it."""
    return closed_port()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write(path, mode="strict", key=KEY, lan=False, port=8045, upstream_port=8046, prefix=""):
    lines = ["proxy:", f"  port: {port}", f"  allow_lan_access: {str(lan).lower()}", f"  auth_mode: {mode}"]
    if key is not None:
        lines.append(f'  api_key: "{key}"')
    lines += ["upstream:", f"  url: http://127.0.0.1:{upstream_port}{prefix}", ""]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines))
    os.replace(tmp, path)  # a new inode: the reload check sees the edit at once
    return path


@pytest.fixture(autouse=True)
def default_config(tmp_path_factory, monkeypatch):
    """taddons configures the addon before a test can set auth_config: make the
    default a throwaway file, never the repository's config.yaml."""
    path = tmp_path_factory.mktemp("default") / "config.yaml"
    write(path, upstream_port=closed_port())
    monkeypatch.setattr(auth, "DEFAULT_CONFIG", str(path))


@pytest.fixture
def config(tmp_path, upstream):
    return write(tmp_path / "config.yaml", upstream_port=upstream)


@pytest.fixture
def gate(config):
    addon = auth.AuthGate()
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        tctx.configure(addon, auth_config=str(config))
        addon.tctx = tctx
        yield addon


def req_flow(path="/v1/models", method="GET", headers=()):
    f = tflow.tflow(req=tutils.treq(method=method.encode(), path=path.encode(), authority=b"",
                                    host="127.0.0.1", port=8046, headers=()))
    headers = [("Host", "127.0.0.1:8045"), *headers]  # as every HTTP/1.1 client sends
    f.request.headers.fields = tuple((n.encode(), v if isinstance(v, bytes) else v.encode()) for n, v in headers)
    return f


async def send(gate, *args, **kw):
    f = req_flow(*args, **kw)
    gate.request(f)
    return f


# ---- options and listener

def test_listens_where_the_config_says(gate):
    assert gate.settings.auth_mode == "strict"
    opts = gate.tctx.options
    assert opts.mode == [f"reverse:http://127.0.0.1:{gate.settings.upstream.port}@127.0.0.1:8045"]
    assert opts.connection_strategy == "lazy"


def test_lan_access_binds_all_interfaces_and_port_change_rebinds(gate, config, upstream):
    write(config, lan=True, port=9000, upstream_port=upstream)
    gate.reload_if_changed()
    assert gate.tctx.options.mode == [f"reverse:http://127.0.0.1:{upstream}@0.0.0.0:9000"]


async def test_explicit_flags_win_over_the_file(config):
    # async: both contexts share the running loop (12's taddons closes a loop it made itself)
    addon = auth.AuthGate()
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        tctx.options.update(listen_host="127.0.0.2", listen_port=7000)
        tctx.configure(addon, auth_config=str(config))
        assert tctx.options.mode[0].endswith("@127.0.0.2:7000")
    addon = auth.AuthGate()
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        tctx.options.update(mode=["reverse:http://127.0.0.1:1@5555"])
        tctx.configure(addon, auth_config=str(config))
        assert tctx.options.mode == ["reverse:http://127.0.0.1:1@5555"]


def test_options_override_live_and_bad_values_roll_back(gate):
    tctx = gate.tctx
    tctx.configure(gate, auth_mode="off")
    assert gate.settings.auth_mode == "off" and gate.settings.overridden == ("auth_mode",)
    with pytest.raises(exceptions.OptionsError, match="auth_mode: 'bogus'.*off, strict"):
        tctx.configure(gate, auth_mode="bogus")
    assert gate.settings.auth_mode == "off" and tctx.options.auth_mode == "off"
    with pytest.raises(exceptions.OptionsError, match="auth_allow_lan_access"):
        tctx.configure(gate, auth_allow_lan_access="yes")
    tctx.configure(gate, auth_allow_lan_access="true", auth_mode="auto")
    assert gate.settings.effective_mode == "all_except_health"
    tctx.configure(gate, auth_api_key="sk-other")
    assert gate.settings.api_key == "sk-other"


def test_invalid_config_at_start_says_so_once_and_never_listens(tmp_path, caplog):
    path = tmp_path / "config.yaml"
    path.write_text("proxy:\n  auth_mode: sometimes\n")
    addon = auth.AuthGate()
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        tctx.configure(addon, auth_config=str(path))
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [f"{path}: proxy.auth_mode: 'sometimes' is not an auth mode. "
                          "Fix: use one of off, strict, all_except_health, auto"]
        assert tctx.options.server is False  # not even mitmproxy's default proxy on *:8080
        assert addon.settings is None


def test_missing_key_is_generated_written_back_and_kept(tmp_path, caplog):
    path = write(tmp_path / "config.yaml", key=None)
    addon = auth.AuthGate()
    caplog.set_level(logging.INFO)
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        tctx.configure(addon, auth_config=str(path))
        key = addon.settings.api_key
        assert re.fullmatch(r"sk-[0-9a-f]{32}", key)
        assert read_config(path).api_key == key
        addon.reload_if_changed()
        assert addon.settings.api_key == key  # kept, not generated again
    assert key not in caplog.text and key[-4:] in caplog.text


# ---- the request hook

async def test_denial_is_a_crafted_401_with_comment_marker_and_metadata(gate):
    f = await send(gate, headers=[("Authorization", "Bearer sk-old"), ("x-api-key", KEY)])
    assert f.response.status_code == 401
    assert f.response.headers["www-authenticate"] == 'Bearer realm="antigravity-proxy", error="invalid_token"'
    assert f.response.headers["access-control-allow-origin"] == "*"
    body = json.loads(f.response.content)
    assert "x-api-key holds the right key" in body["error"]["message"]
    assert f.comment == ("401 · strict · Authorization won (x-api-key ignored) · key mismatch · "
                         "shadowed a correct x-api-key")
    assert f.marked == ":no_entry:"
    meta = f.metadata["auth"]
    assert (meta["outcome"], meta["winner"], meta["ignored"], meta["reason"]) == (
        "deny", "Authorization", ["x-api-key"], "mismatch")
    assert gate.denied == 1 and gate.passed == 0


async def test_bare_401_when_explanations_are_off(gate):
    gate.tctx.configure(gate, auth_explain=False)
    f = await send(gate)
    assert (f.response.status_code, f.response.content) == (401, b"")
    assert "www-authenticate" not in f.response.headers
    assert f.comment.startswith("401 · strict")  # the flow still says why


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


async def test_replay_is_decided_under_current_settings(gate):
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert f.response.status_code == 401
    gate.tctx.configure(gate, auth_mode="off")
    replay = f.copy()
    replay.response = None
    gate.request(replay)
    assert replay.response is None and replay.comment.startswith("pass · off") and replay.marked == ""


async def test_preflight_health_and_405_are_answered_locally(gate):
    f = await send(gate, "/v1/chat/completions", "OPTIONS",
                   headers=[("access-control-request-headers", "authorization, content-type")])
    h = f.response.headers
    assert f.response.status_code == 200
    assert (h["access-control-allow-origin"], h["access-control-max-age"]) == ("*", "3600")
    assert h["access-control-allow-headers"] == "authorization, content-type"
    assert "POST" in h["access-control-allow-methods"]
    f = await send(gate, "/healthz", headers=[("Authorization", f"Bearer {KEY}")])
    assert (f.response.status_code, json.loads(f.response.content)) == (200, {"status": "ok"})
    f = await send(gate, "/healthz", "HEAD", headers=[("Authorization", f"Bearer {KEY}")])
    assert (f.response.status_code, f.response.content) == (200, b"")
    f = await send(gate, "/healthz", "DELETE", headers=[("Authorization", f"Bearer {KEY}")])
    assert (f.response.status_code, f.response.headers["allow"]) == (405, "GET, HEAD")


async def test_absolute_form_is_refused(gate):
    f = tflow.tflow(req=tutils.treq(authority=b"example.com", host="example.com", port=80))
    gate.request(f)
    assert f.response.status_code == 400
    assert "example.com" in json.loads(f.response.content)["error"]["message"]
    assert f.request.host == "example.com"  # nothing was rewritten, nothing forwarded


def upstream_fails(gate, f, message, connected=True, timed_out=False):
    """What mitmproxy does when the upstream fails before answering: set flow.error, call error."""
    if connected:
        f.server_conn.timestamp_tcp_setup = 1.0
    else:
        f.server_conn.timestamp_tcp_setup = None
    if timed_out:
        f.metadata["auth"]["timed_out"] = True
    f.error = flow.Error(message)
    gate.error(f)
    return f


@pytest.mark.parametrize("connected, timed_out, status, code", [
    (False, False, 502, "upstream_unreachable"),
    (True, False, 502, "upstream_error"),
    (True, True, 504, "upstream_timeout"),
    (False, True, 504, "upstream_timeout"),  # stalled while connecting
])
async def test_upstream_failure_is_answered_in_json(gate, connected, timed_out, status, code):
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert f.response is None  # forwarded
    upstream_fails(gate, f, "server closed connection", connected, timed_out)
    assert f.response.status_code == status
    error = json.loads(f.response.content)["error"]
    assert error["code"] == code
    assert gate.settings.upstream.url in error["message"]
    assert f.response.headers["connection"] == "close"
    assert f.response.headers["x-auth-gate"].startswith("allow; mode=strict; winner=Authorization")
    assert f.comment.endswith(f"{status} {code.replace('_', ' ')}")
    if timed_out:  # mitmproxy saw a closed connection; the flow says why
        assert "upstream.timeout" in f.error.msg
    assert f.request.headers["authorization"] == f"Bearer {KEY}"  # the flow shows what the client sent


@pytest.mark.parametrize("header, path, timed_out, shape", [
    ("x-api-key", "/v1/messages", False, {"type": "error", "error": {"type": "api_error"}}),
    ("x-goog-api-key", "/v1beta/models/m:generateContent", True, {"error": {"code": 504, "status": "DEADLINE_EXCEEDED"}}),
    ("x-goog-api-key", "/v1beta/models/m:generateContent", False, {"error": {"code": 502, "status": "UNAVAILABLE"}}),
    ("Authorization", "/v1/chat/completions", False, {"error": {"type": "upstream_error", "code": "upstream_error"}}),
])
async def test_upstream_failure_speaks_the_clients_dialect(gate, header, path, timed_out, shape):
    value = f"Bearer {KEY}" if header == "Authorization" else KEY
    f = await send(gate, path, "POST", headers=[(header, value)])
    upstream_fails(gate, f, "server closed connection", timed_out=timed_out)
    body = json.loads(f.response.content)
    for key, part in shape.items():
        assert {k: body[key][k] for k in part} == part if isinstance(part, dict) else body[key] == part
    assert gate.settings.upstream.url in json.dumps(body)
    assert body["auth_gate"] == {"outcome": "allow", "reason": "key_ok",
                                 "upstream_error": "upstream_timeout" if timed_out else "upstream_error"}


async def test_upstream_failure_leaves_alone_what_cannot_be_answered(gate):
    # the client is gone: nothing can be sent, so the flow shows no made-up response
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    f.client_conn.state = connection.ConnectionState.CLOSED
    assert upstream_fails(gate, f, "Client disconnected.").response is None
    # killed in mitmweb: mitmproxy closes the connection
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert upstream_fails(gate, f, flow.Error.KILLED_MESSAGE).response is None
    # a replay from mitmweb: mitmproxy is the client and reports the error itself
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    f.is_replay = "request"
    assert upstream_fails(gate, f, "server closed connection").response is None
    # a stream already under way is not replaced
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    f.response = tutils.tresp(headers=http.Headers(content_type="text/event-stream"))
    gate.responseheaders(f)
    assert f.response.stream
    assert upstream_fails(gate, f, "server closed connection").response.status_code == 200
    # the gate's own answers never reach the upstream: nothing to answer for
    f = await send(gate)
    before = f.response
    upstream_fails(gate, f, "Client disconnected.")
    assert f.response is before


async def test_upstream_timeout_option_applies_to_the_next_request(gate):
    assert gate.settings.upstream.timeout == 300.0
    gate.tctx.configure(gate, auth_upstream_timeout=2)
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert f.metadata["auth"]["upstream"][1] == 2.0
    assert gate._timers[f.id].when() - asyncio.get_running_loop().time() <= 2.0
    with pytest.raises(exceptions.OptionsError, match="auth_upstream_timeout"):
        gate.tctx.configure(gate, auth_upstream_timeout=600)
    assert gate.settings.upstream.timeout == 2.0  # the last good value stays


async def test_timer_gives_up_only_on_a_flow_still_waiting(gate, monkeypatch):
    cut = []
    monkeypatch.setattr(auth.upstream_errors, "cut", lambda f: cut.append(f.id) or True)
    f = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    assert f.id in gate._timers  # armed for upstream.timeout
    gate._give_up(f, 300.0)
    assert cut == [f.id] and f.metadata["auth"]["timed_out"]
    g = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    g.response = tutils.tresp()
    gate.responseheaders(g)
    assert g.id not in gate._timers  # disarmed by the response headers
    gate._give_up(g, 300.0)
    assert cut == [f.id]
    # nothing to cut yet (no upstream connection): armed again rather than forgotten
    monkeypatch.setattr(auth.upstream_errors, "cut", lambda f: False)
    h = await send(gate, headers=[("Authorization", f"Bearer {KEY}")])
    gate._give_up(h, 300.0)
    assert h.id in gate._timers and "timed_out" not in h.metadata["auth"]


async def test_empty_api_key_logs_the_originals_line(gate, config, upstream, caplog):
    write(config, key="", upstream_port=upstream)
    caplog.set_level(logging.INFO)
    f = await send(gate, headers=[("Authorization", "Bearer anything")])
    assert f.response.status_code == 401
    assert "Proxy auth is enabled but api_key is empty; denying request" in caplog.messages


# ---- hot reload

async def test_edits_apply_to_the_next_request(gate, config, upstream):
    assert (await send(gate, headers=[("x-api-key", "sk-new")])).response.status_code == 401
    write(config, key="sk-new", upstream_port=upstream)
    assert (await send(gate, headers=[("x-api-key", "sk-new")])).response is None
    assert (await send(gate, headers=[("x-api-key", KEY)])).response.status_code == 401  # old key stops


async def test_invalid_edit_keeps_the_last_good_config_and_says_so_once(gate, config, caplog):
    caplog.set_level(logging.INFO)
    config.write_text("proxy:\n  auth_mode: offf\n")
    for _ in range(3):
        f = await send(gate)
        assert f.response.status_code == 401  # still strict
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith(f"{config}: proxy.auth_mode: 'offf' is not an auth mode")
    assert "keeping the last good config" in errors[0] and KEY not in errors[0]
    config.unlink()
    await send(gate)
    assert "the file is gone; keeping the last good config" in caplog.text
    assert gate.settings.auth_mode == "strict"


async def test_option_overrides_survive_a_reload(gate, config, upstream):
    gate.tctx.configure(gate, auth_mode="off")
    write(config, mode="strict", key="sk-new", upstream_port=upstream)
    f = await send(gate)
    assert f.response is None and gate.settings.api_key == "sk-new" and gate.settings.auth_mode == "off"


def test_script_reads_config_yaml_beside_its_folder_by_default(tmp_path, upstream):
    # The script as mitmproxy loads it, in a copy of the repository layout, so
    # the default auth_config (<repo>/config.yaml) is the copy's, never ours.
    addon_dir = os.path.dirname(auth.__file__)
    (tmp_path / "addon").mkdir()
    shutil.copy(os.path.join(addon_dir, "auth.py"), tmp_path / "addon")
    config = write(tmp_path / "config.yaml", key=None, upstream_port=upstream)
    with taddons.context() as tctx:
        tctx.master.addons.add(proxyserver.Proxyserver())
        sc = tctx.script(str(tmp_path / "addon" / "auth.py"))
        assert tctx.options.auth_config == str(config)
        assert re.fullmatch(r"sk-[0-9a-f]{32}", read_config(config).api_key)  # generated into the copy
        assert sc.addons[0].settings.auth_mode == "strict"


async def test_upstream_headers_are_added_forwarded_and_never_shown(tmp_path, upstream, monkeypatch, caplog):
    monkeypatch.setenv("UPSTREAM_SECRET", "real-upstream-secret")
    path = tmp_path / "config.yaml"
    path.write_text(f'proxy:\n  auth_mode: strict\n  api_key: "{KEY}"\nupstream:\n'
                    f'  url: http://127.0.0.1:{upstream}\n  headers:\n    x-goog-api-key: "${{UPSTREAM_SECRET}}"\n')
    caplog.set_level(logging.DEBUG)
    addon = auth.AuthGate()
    with taddons.context(proxyserver.Proxyserver(), addon) as tctx:
        tctx.configure(addon, auth_config=str(path))
        f = await send(addon, headers=[("Authorization", f"Bearer {KEY}"), ("x-goog-api-key", "client-sent")])
        # upstream sees its own credential and none of the client's key headers
        assert f.request.headers.get_all("x-goog-api-key") == ["real-upstream-secret"]
        assert "authorization" not in f.request.headers
        f.response = tutils.tresp()
        addon.response(f)
        # the flow shows what the client sent
        assert f.request.headers.get_all("x-goog-api-key") == ["client-sent"]
        assert f.request.headers["authorization"] == f"Bearer {KEY}"
        assert "real-upstream-secret" not in f.comment + json.dumps(f.metadata["auth"])
        assert "real-upstream-secret" not in addon.status()
    assert "real-upstream-secret" not in caplog.text and "adds x-goog-api-key" in caplog.text


# ---- issue 5: version profiles, shadow mode, languages

async def test_v4_profile(gate):
    gate.tctx.configure(gate, auth_profile="v4", auth_mode="all_except_health")
    f = await send(gate, "/health")
    assert json.loads(f.response.content) == {"status": "ok", "version": auth.V4_VERSION}
    assert (await send(gate, "/internal/metrics")).response is None  # forwarded without a key
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert f.response.status_code == 403
    body = json.loads(f.response.content)
    assert body["error"] == {"message": "Invalid token. Please check your API key.", "type": "token_rejected",
                             "code": "token_rejected"}
    assert body["auth_gate"]["reason"] == "mismatch" and f.comment.startswith("403 · all_except_health")
    assert (await send(gate)).response.status_code == 401  # a missing key stays 401
    gate.tctx.configure(gate, auth_explain=False)
    f = await send(gate, headers=[("x-api-key", "sk-wrong")])
    assert json.loads(f.response.content) == {"error": auth.V4_REJECTED}


@pytest.mark.parametrize("headers, status, verdict, marker", [
    ([("x-api-key", "sk-wrong")], 401, "401 from the proxy auth layer, as predicted", ":no_entry:"),
    ([("x-api-key", KEY)], 401, "401 the auth layer would not give", ":warning:"),
    ([("x-api-key", "sk-wrong")], 200, "passed although the auth layer should refuse", ":warning:"),
    ([("x-api-key", KEY)], 200, "passed, as predicted", ""),
])
async def test_shadow_mode_forwards_unchanged_and_judges_the_answer(gate, headers, status, verdict, marker):
    gate.tctx.configure(gate, auth_enforce="false")
    f = await send(gate, headers=headers)
    assert f.response is None  # forwarded, whatever the prediction
    assert f.request.headers["x-api-key"] == headers[0][1]  # credentials included
    f.response = tutils.tresp(status_code=status)
    gate.responseheaders(f)
    gate.response(f)
    assert f.comment.startswith(f"{status} · shadow · {verdict}")
    assert "predicted " + ("pass" if headers[0][1] == KEY else "401") in f.comment
    assert f.marked == marker


async def test_shadow_mode_real_proxy_that_fails_is_a_finding_and_gets_json(gate):
    gate.tctx.configure(gate, auth_enforce="false")
    f = await send(gate, headers=[("x-api-key", KEY)])
    upstream_fails(gate, f, "server closed connection", timed_out=True)
    assert f.comment.startswith("--- · shadow · no response: no answer from the upstream within")
    assert f.marked == ":warning:"
    assert f.response.status_code == 504
    assert f.response.headers["x-auth-gate"].endswith("shadow=no_response")


async def test_accept_language_picks_the_401_language(gate):
    from authgate import explain
    f = await send(gate, headers=[("Accept-Language", "xx, en;q=0.5")])
    assert f.response.headers["content-language"] == "en"
    for lang in explain.CATALOGS:
        f = await send(gate, headers=[("Accept-Language", f"{lang};q=0.9, xx")])
        assert f.response.headers["content-language"] == lang
        assert json.loads(f.response.content)["error"]["message"] == explain.message(gate._decide(f), lang)
    assert f.comment.startswith("401 · strict · no key header")  # comments follow auth_lang, not the client


async def test_every_answer_names_the_decision_in_a_header(gate):
    f = await send(gate, headers=[("Authorization", "Bearer sk-old"), ("x-api-key", KEY)])
    gate.responseheaders(f)
    assert f.response.headers["x-auth-gate"] == \
        "deny; mode=strict; winner=Authorization; reason=mismatch; shadowed=x-api-key"
    f = await send(gate, headers=[("x-api-key", KEY)])
    f.response = tutils.tresp()
    gate.responseheaders(f)
    assert f.response.headers["x-auth-gate"] == "allow; mode=strict; winner=x-api-key; reason=key_ok"
    gate.tctx.configure(gate, auth_explain=False)  # the original's answers: no extra header
    f = await send(gate)
    gate.responseheaders(f)
    assert "x-auth-gate" not in f.response.headers


async def test_explain_and_status_commands(gate):
    f = await send(gate, headers=[("Authorization", "Bearer sk-old"), ("x-api-key", KEY)])
    out = gate.explain_flow(f)
    assert "Authorization: present, read (first present key header)" in out
    assert "x-api-key holds the right key but is never read" in out and KEY not in out
    assert "recorded when the flow ran" not in out
    gate.tctx.configure(gate, auth_mode="off")
    out = gate.explain_flow(f)
    assert "effective mode: off" in out and "recorded when the flow ran: 401 · strict" in out
    status = gate.status()
    assert "effective mode: off (auth_mode=off)" in status and "flows: 0 passed, 1 denied" in status
    assert "options override: auth_mode" in status and KEY not in status and "sk-…cdef" in status


def test_error_answer_wrapper_installs_once_and_uninstalls():
    from mitmproxy.proxy.layers.http import _http1

    from authgate import upstream_errors
    upstream_errors.uninstall()
    original = _http1.Http1Server.send
    try:
        assert upstream_errors.install() and upstream_errors.install()
        wrapped = _http1.Http1Server.send
        assert wrapped is not original
        upstream_errors.install()
        assert _http1.Http1Server.send is wrapped  # not wrapped twice (a script reload calls load again)
    finally:
        upstream_errors.uninstall()
    assert _http1.Http1Server.send is original
