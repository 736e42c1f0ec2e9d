"""mitmweb's options and commands with the gate, against a live `mitmweb -s addon/auth.py` through
its HTTP API: an option changed applies to the next request (a bad value is refused and rolled
back), a replay is decided again under the current settings, auth.status, auth.explain on one flow,
and auth.regenerate (on a mitmweb of its own: it rewrites the key).

One mitmweb serves the tests that flip an option and put it back (throwaway overrides:
auth_save=false; saving into config.yaml is test_web_settings.py's).
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from authgate.rules.credentials import fingerprint
from live import config_text, write_config
from mitmweb_live import DENIED, KEY, POLL_TIMEOUT, WRONG, WebAPI, send, start_mitmweb, unique, upstream, web  # noqa: F401

# ====================================================================== options, replay, commands (the shared mitmweb)

def test_options_change_applies_to_the_next_request(web):
    api = WebAPI.of(web)
    before = unique("keyless-strict")
    assert send(web.port, before)[0] == 401
    assert api.flow_by_path(before)["comment"] == "401 · strict · no key header · key required"
    try:
        status, body = api.set_options(auth_mode="off")
        assert status == 200, body
        assert api.option("auth_mode") == "off"
        after = unique("keyless-off")
        assert send(web.port, after)[0] == 200
        f = api.flow_by_path(after)
        assert f["comment"].startswith("pass · off"), f["comment"]
        assert f["marked"] == ""

        status, body = api.set_options(auth_mode="bogus")
        assert 400 <= status < 500, (status, body)
        assert b"bogus" in body
        assert api.option("auth_mode") == "off"  # rolled back
        still = unique("keyless-still-off")
        assert send(web.port, still)[0] == 200
        assert api.flow_by_path(still)["comment"].startswith("pass · off")
    finally:
        status, body = api.set_options(auth_mode=None)  # back to config.yaml's strict
        assert status == 200, body
    again = unique("keyless-strict-again")
    assert send(web.port, again)[0] == 401
    assert api.flow_by_path(again)["marked"] == DENIED


def test_api_key_option_applies_to_the_next_request(web):
    api = WebAPI.of(web)
    try:
        assert api.set_options(auth_api_key=WRONG)[0] == 200
        old, new = unique("key-option-old"), unique("key-option-new")
        assert send(web.port, old, {"x-api-key": KEY})[0] == 401
        assert api.flow_by_path(old)["comment"] == "401 · strict · x-api-key won (Authorization absent) · key mismatch"
        assert send(web.port, new, {"x-api-key": WRONG})[0] == 200
        assert api.flow_by_path(new)["comment"] == "pass · strict · x-api-key won (Authorization absent) · key ok"
        status = api.command("auth.status")
        assert f"api_key: {fingerprint(WRONG)}" in status
        assert re.search(r"options override: [^)]*\bapi_key\b", status), status
    finally:
        assert api.set_options(auth_api_key=None)[0] == 200
    back = unique("key-option-back")
    assert send(web.port, back, {"x-api-key": KEY})[0] == 200


def test_replay_decides_again_under_the_current_settings(web):
    api = WebAPI.of(web)
    path = unique("replay")
    assert send(web.port, path, {"x-api-key": WRONG})[0] == 401
    flow = api.flow_by_path(path)
    assert flow["comment"].startswith("401 · strict")
    assert flow["marked"] == DENIED
    try:
        assert api.set_options(auth_mode="off")[0] == 200
        status, body = api.write("POST", f"/flows/{flow['id']}/replay", None)
        assert status == 200, body
        deadline = time.monotonic() + POLL_TIMEOUT
        while True:
            now = next(f for f in api.flows() if f["id"] == flow["id"])
            if now["comment"].startswith("pass · off") and now.get("response"):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the replayed flow was not decided again within {POLL_TIMEOUT}s: {now}")
            time.sleep(0.05)
        assert now["is_replay"] == "request"
        assert now["response"]["status_code"] == 200
        assert now["marked"] == ""
    finally:
        assert api.set_options(auth_mode=None)[0] == 200


def test_status_command(web):
    api = WebAPI.of(web)
    counts = re.compile(r"flows: (\d+) passed, (\d+) denied")
    first = api.command("auth.status")
    assert "effective mode: strict (auth_mode=strict)" in first
    assert f"api_key: {fingerprint(KEY)}" in first and fingerprint(KEY).startswith("sk-…")
    assert KEY not in first
    assert "upstream: http://127.0.0.1:" in first
    passed, denied = map(int, counts.search(first).groups())
    assert send(web.port, unique("status-deny"))[0] == 401
    assert send(web.port, unique("status-pass"), {"x-api-key": KEY})[0] == 200
    passed2, denied2 = map(int, counts.search(api.command("auth.status")).groups())
    assert (passed2, denied2) == (passed + 1, denied + 1)


def test_explain_command_on_one_flow(web):
    api = WebAPI.of(web)
    path = unique("explain")
    assert send(web.port, path, {"x-api-key": WRONG})[0] == 401
    flow = api.flow_by_path(path)
    # mitmweb 11 parses a flow argument with view.flows.resolve: "@<flow id>" names one flow.
    trace = api.command("auth.explain", f"@{flow['id']}")
    lines = trace.splitlines()
    assert len(lines) >= 6, trace
    assert lines[0] == f"GET {path}"
    assert "effective mode: strict (auth_mode=strict)" in trace
    assert "  Authorization: absent" in lines
    assert "  x-api-key: present, read (first present key header)" in lines
    assert "  x-goog-api-key: absent" in lines
    assert f"  key read: {fingerprint(WRONG)}" in lines
    assert any(line.startswith("result: 401: key mismatch") for line in lines), trace
    assert any(line.startswith("fix: ") for line in lines), trace
    assert WRONG not in trace and KEY not in trace
    # A filter that matches several flows is refused: the command wants exactly one.
    status, data = api.write("POST", "/commands/auth.explain", {"arguments": ["@all"]})
    assert status == 200 and "error" in json.loads(data)


# ====================================================================== regenerate (own mitmweb)

def test_regenerate_command(upstream, tmp_path):
    config = tmp_path / "config.yaml"
    old = "sk-regen0123456789abcdef012345678"
    write_config(config, config_text("strict", old, upstream))
    mw = start_mitmweb(config)
    try:
        api = WebAPI.of(mw)
        assert send(mw.port, unique("regen-before"), {"Authorization": f"Bearer {old}"})[0] == 200

        value = api.command("auth.regenerate")
        new = yaml.safe_load(config.read_text(encoding="utf-8"))["proxy"]["api_key"]
        assert new != old and re.fullmatch(r"sk-[0-9a-f]{32}", new), new
        assert fingerprint(new) in value, value
        assert fingerprint(old) not in value
        assert new not in value

        old_path, new_path = unique("regen-old"), unique("regen-new")
        status, body = send(mw.port, old_path, {"Authorization": f"Bearer {old}"})
        assert status == 401, body
        assert api.flow_by_path(old_path)["comment"] == "401 · strict · Authorization won · key mismatch"
        status, body = send(mw.port, new_path, {"Authorization": f"Bearer {new}"})
        assert status == 200, body
        assert api.flow_by_path(new_path)["comment"] == "pass · strict · Authorization won · key ok"
        assert fingerprint(new) in api.command("auth.status")

        events = json.dumps(api.get("/events"), ensure_ascii=False)
        assert fingerprint(new) in events  # the warning the command logs...
        assert new not in events  # ...names the key by its fingerprint only
    finally:
        mw.stop()
    assert fingerprint(new) in mw.output
    assert new not in mw.output

