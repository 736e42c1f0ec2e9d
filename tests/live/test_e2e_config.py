"""End to end, config.yaml in a running gate and at its start: hot reload (mode, key, upstream.url,
port) applied to the next request without a restart; a bad edit or a deleted file keeps the last
good config and says so once; a missing key generated, written and kept; a bad config, a missing
file or a busy port exits non-zero, before any listener opens, saying the fix. Each test has a
`mitmdump -s addon/auth.py` of its own, on an ephemeral loopback port.

Everything stays on 127.0.0.1 and every socket call has a timeout.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

import pytest
import yaml

from e2e_gates import KEY, OTHER_KEY, bearer, confdir, echo, start  # noqa: F401
from live import closed_port, config_text, write_config
from raw_http import send

# ====================================================================== hot reload

def test_hot_reload_applies_to_the_next_request(start, echo):
    m = start(config_text("strict", KEY, echo.url))
    pid, port = m.proc.pid, m.port
    assert m.send("GET", "/v1/models").status == 401

    write_config(m.config, config_text("off", KEY, echo.url))
    assert m.send("GET", "/v1/models").from_echo

    write_config(m.config, config_text("all_except_health", KEY, echo.url))
    assert m.send("GET", "/v1/models").status == 401
    assert m.send("GET", "/healthz").status == 200

    write_config(m.config, config_text("strict", OTHER_KEY, echo.url))
    old = m.send("GET", "/v1/models", [bearer(KEY)])
    assert old.status == 401 and old.gate["reason"] == "mismatch"
    assert m.send("GET", "/v1/models", [bearer(OTHER_KEY)]).from_echo

    write_config(m.config, config_text("strict", "", echo.url))
    r = m.send("GET", "/v1/models", [bearer(OTHER_KEY)])
    assert r.status == 401 and r.gate["reason"] == "empty_api_key"

    assert m.proc.poll() is None and m.proc.pid == pid and m.port == port  # no restart
    out = m.stop()
    assert KEY not in out and OTHER_KEY not in out


def test_hot_reload_of_upstream_url(start, echo):
    m = start(config_text("strict", KEY, echo.url))
    write_config(m.config, config_text("strict", KEY, echo.url + "/moved"))
    r = m.send("GET", "/v1/models", [bearer()])
    assert r.from_echo and r.json()["path"] == "/moved/v1/models"


def test_hot_reload_of_port_rebinds_the_listener(start, echo):
    m = start(config_text("strict", KEY, echo.url, port=0), port_option=False)
    first = m.port
    assert m.send("GET", "/healthz", [bearer()]).status == 200
    new_port = closed_port()
    seen = len(m.lines)
    write_config(m.config, config_text("strict", KEY, echo.url, port=new_port))
    # no request on the old port: the idle watcher picks the edit up by itself
    m.wait_listening(skip=seen)
    assert m.port == new_port != first
    assert m.send("GET", "/v1/models", [bearer()]).from_echo
    with pytest.raises(OSError):
        send(first, "GET", "/healthz", [bearer()])


@pytest.mark.parametrize("bad, field", [
    ("proxy:\n  auth_mode: [strict\n  api_key: x\n", "(YAML syntax)"),
    (config_text("bogus", OTHER_KEY), "proxy.auth_mode"),
    (config_text("strict", OTHER_KEY, port=70000), "proxy.port"),
    (config_text("off", OTHER_KEY) + "  colour: red\n", "proxy.colour"),
], ids=["bad-yaml", "bad-auth_mode", "bad-port", "unknown-field"])
def test_invalid_edit_keeps_last_good_config_and_says_so_once(start, echo, bad, field):
    m = start(config_text("strict", KEY, echo.url))
    write_config(m.config, bad)

    def still_old() -> None:
        assert m.send("GET", "/v1/models").status == 401
        assert m.send("GET", "/v1/models", [bearer(OTHER_KEY)]).status == 401
        assert m.send("GET", "/v1/models", [bearer()]).from_echo

    for _ in range(3):
        still_old()
    time.sleep(1.5)  # the idle watcher (every 1 s) gets a chance to repeat itself, too
    still_old()
    assert m.wait_for("keeping the last good config")
    errors = [line for line in m.lines if "keeping the last good config" in line]
    assert len(errors) == 1, errors
    err = errors[0]
    assert str(m.config) in err
    assert field in err
    assert "Fix:" in err
    if field == "proxy.auth_mode":
        assert "off, strict, all_except_health, auto" in err

    # a good edit afterwards applies again
    write_config(m.config, config_text("off", KEY, echo.url))
    assert m.send("GET", "/v1/models").from_echo
    assert len([line for line in m.lines if "keeping the last good config" in line]) == 1


def test_deleted_config_keeps_last_good(start, echo):
    m = start(config_text("strict", KEY, echo.url))
    m.config.unlink()
    assert m.send("GET", "/v1/models").status == 401
    assert m.send("GET", "/v1/models", [bearer()]).from_echo
    assert m.wait_for("keeping the last good config")
    write_config(m.config, config_text("off", KEY, echo.url))
    assert m.send("GET", "/v1/models").from_echo


# ====================================================================== key generation

def test_missing_api_key_is_generated_written_and_kept(start, echo, tmp_path):
    path = tmp_path / "gen" / "config.yaml"
    path.parent.mkdir()
    write_config(path, "# my settings\n" + config_text("strict", None, echo.url))
    m = start(None, path=path)
    data = yaml.safe_load(path.read_text())
    key = data["proxy"]["api_key"]
    assert re.fullmatch(r"sk-[0-9a-f]{32}", key), key
    assert path.read_text().startswith("# my settings\n")
    assert m.send("GET", "/v1/models", [bearer(key)]).from_echo
    assert m.send("GET", "/v1/models").status == 401
    out = m.stop()
    assert key not in out
    assert key[:3] + "…" + key[-4:] in out  # the fingerprint is what the log shows

    # a second start keeps the key written the first time
    m2 = start(None, path=path)
    assert yaml.safe_load(path.read_text())["proxy"]["api_key"] == key
    assert m2.send("GET", "/v1/models", [bearer(key)]).from_echo
    assert key not in m2.stop()


def test_unquoted_auth_mode_off_is_off(start, echo, tmp_path):
    text = f"proxy:\n  port: 0\n  auth_mode: off\n  api_key: {KEY}\nupstream:\n  url: {echo.url}\n"
    assert yaml.safe_load(text)["proxy"]["auth_mode"] is False  # YAML 1.1 reads it as a bool
    m = start(text)
    assert m.send("GET", "/v1/models").from_echo
    assert m.send("GET", "/healthz").json() == {"status": "ok"}
    assert m.wait_for("mode off")


# ====================================================================== start-up errors

@pytest.mark.parametrize("text, extra, field", [
    (config_text("bogus", KEY), (), "proxy.auth_mode"),
    (config_text("strict", KEY, port=70000), (), "proxy.port"),
    ('proxy:\n  auth_mode: strict\n  port: "abc"\n  api_key: x\n', (), "proxy.port"),
    ("proxy:\n  auth_mode: strict\n  port: abc\n  api_key: x\n", (), "proxy.port"),
    (config_text("strict", KEY) + "  colour: red\n", (), "proxy.colour"),
    (config_text("strict", KEY) + "extra:\n  a: 1\n", (), "extra"),
    ("proxy:\n  auth_mode: strict\n  allow_lan_access: yes please\n  api_key: x\n", (), "proxy.allow_lan_access"),
    (config_text("strict", KEY, upstream="ftp://127.0.0.1:21"), (), "upstream.url"),
    ("proxy:\n  auth_mode: [strict\n", (), "(YAML syntax)"),
    (config_text("strict", KEY), ("--set", "auth_mode=bogus"), "auth_mode"),
], ids=["auth_mode", "port-70000", "port-quoted-abc", "port-abc", "unknown-field", "unknown-section",
        "lan-not-bool", "upstream-scheme", "bad-yaml", "option-auth_mode"])
def test_invalid_config_at_start_exits_non_zero(start, text, extra, field):
    m = start(text, *extra, wait=False)
    rc = m.wait_exit()
    out = m.output
    assert rc is not None, f"mitmdump still running:\n{out}"
    assert rc != 0, out
    if not extra:
        assert str(m.config) in out, out
    assert field in out, out
    assert "Fix:" in out, out


@pytest.mark.parametrize("text, extra", [
    (config_text("bogus", KEY), ()),
    (config_text("strict", KEY), ("--set", "auth_mode=bogus")),
], ids=["file", "option"])
def test_invalid_config_at_start_opens_no_listener(start, text, extra):
    # "It is never an open forward proxy": a start that fails on its config must not serve
    # anything on the way out, least of all mitmproxy's default regular-mode proxy on *:8080.
    m = start(text, *extra, wait=False)
    rc = m.wait_exit()
    assert rc not in (None, 0), m.output
    assert "listening at" not in m.output, m.output


def test_missing_config_file_at_start_exits_non_zero(start, tmp_path):
    m = start(None, path=tmp_path / "nope.yaml", wait=False)
    rc = m.wait_exit()
    assert rc not in (None, 0), m.output
    assert str(tmp_path / "nope.yaml") in m.output and "does not exist" in m.output


def test_a_busy_port_says_who_holds_it_and_which_settings_move_the_gate(start):
    # mitmproxy says only "[Errno 98] ... address already in use"; the person also needs who and the fix.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        m = start(config_text("strict", KEY, port=port), wait=False, port_option=False)
        rc = m.wait_exit()
    out = m.output
    assert rc not in (None, 0), out
    assert "address already in use" in out.lower(), out
    # The holder is this test's own process, as the OS tells: its name and pid, not a guess.
    holder = f"{Path(f'/proc/{os.getpid()}/comm').read_text().strip()} (pid {os.getpid()})"
    hint = f"Port {port} is already in use on 127.0.0.1: {holder} listens there"
    assert hint in out and "Fix: stop it, or set proxy.port in config.yaml (e.g. 8044), or start with --set " \
                           "auth_port=8044" in out
    assert out.index("already in use on 127.0.0.1") > out.lower().index("address already in use")  # after mitmproxy's
