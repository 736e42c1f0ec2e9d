"""Where mitmweb's UI may listen with the gate: on loopback unless forced. mitmweb 11.0 has no
password, so a non-loopback web_host (0.0.0.0, ::) is refused at start, before anything listens;
11.1.2+ asks for its token (or web_password), so it starts and says so; `auth_web_remote=true`
forces it. Each test has a `mitmweb -s addon/auth.py` of its own.

Everything listens on 127.0.0.1 (ephemeral ports; the forced UI on 0.0.0.0 briefly), every socket
call and wait is bounded, and every process is stopped.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from live import ADDON, WEB_HAS_AUTH, WEB_LISTENING, Process, closed_port, config_text, write_config
from live_fixtures import confdir, recorder  # noqa: F401
from mitmweb_live import EXIT_TIMEOUT, KEY, START_TIMEOUT, WebAPI, mitmweb, start_mitmweb, upstream  # noqa: F401
from raw_http import IO_TIMEOUT

# ====================================================================== mitmweb_live.mitmweb

@pytest.mark.skipif(WEB_HAS_AUTH, reason="mitmweb 11.1.2+ asks for a token: a non-loopback UI is allowed there")
def test_non_loopback_web_host_is_refused(upstream, tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    # listen_host/listen_port keep even the fallback proxy listener on loopback, ephemeral.
    mw = mitmweb(config, "--set", "web_host=0.0.0.0", "--set", "listen_host=127.0.0.1", "--set", "listen_port=0")
    try:
        code = mw.wait_exit(EXIT_TIMEOUT)
    finally:
        mw.stop()
    if code is None:
        pytest.fail(f"mitmweb with web_host=0.0.0.0 still runs after {EXIT_TIMEOUT}s:\n{mw.output}")
    out = mw.output
    assert code != 0, out
    assert "web_host 0.0.0.0 is not a loopback address" in out, out
    assert "auth_web_remote=true" in out, out
    assert WEB_LISTENING not in out, out


@pytest.mark.skipif(not WEB_HAS_AUTH, reason="mitmweb 11.0 has no token: a non-loopback UI is refused there")
def test_non_loopback_web_host_is_token_protected_and_said(upstream, tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    mw = start_mitmweb(config, "--set", "web_host=0.0.0.0")
    try:
        assert "mitmweb on 0.0.0.0: whoever has its token or web_password sees the keys" in mw.output
        assert WebAPI(mw.web_port).raw("GET", "/flows")[0] == 403  # no token: nothing to see
        assert WebAPI.of(mw).raw("GET", "/flows")[0] == 200
    finally:
        mw.stop()


def test_non_loopback_web_host_starts_when_forced(upstream, tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    mw = start_mitmweb(config, "--set", "web_host=0.0.0.0", "--set", "auth_web_remote=true")
    try:
        assert f"{WEB_LISTENING} http://0.0.0.0:{mw.web_port}/" in mw.output
        status, _, _ = WebAPI.of(mw).raw("GET", "/")  # reached on 127.0.0.1 only
        assert status == 200
    finally:
        mw.stop()


# ====================================================================== the same, mitmweb's arguments given whole

def _mitmweb_args(tmp_path: Path, confdir: Path, upstream: str, web_host: str, web_port: int,
                  *extra: str) -> list[str]:
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    return ["-s", str(ADDON), "--set", f"confdir={confdir}", "--set", f"auth_config={config}",
            "--set", "auth_port=0", "--set", f"web_host={web_host}", "--set", f"web_port={web_port}",
            "--set", "web_open_browser=false", *extra]


@pytest.mark.skipif(WEB_HAS_AUTH, reason="mitmweb 11.1.2+ asks for a token: the test above covers it there")
@pytest.mark.parametrize("web_host", ["0.0.0.0", "::"])
def test_mitmweb_refuses_a_non_loopback_web_host(tmp_path, confdir, recorder, web_host):
    p = Process("mitmweb", *_mitmweb_args(tmp_path, confdir, recorder.url, web_host, closed_port()))
    try:
        rc = p.wait_exit(EXIT_TIMEOUT)
    finally:
        out = p.stop()
    assert rc is not None, f"mitmweb with web_host={web_host} still runs after {EXIT_TIMEOUT}s:\n{out}"
    assert rc != 0, out
    assert "loopback" in out and "auth_web_remote=true" in out, out
    assert "listening at" not in out, out  # neither the UI nor the proxy ever listened


def test_mitmweb_non_loopback_web_host_starts_when_forced(tmp_path, confdir, recorder):
    web_port = closed_port()
    p = Process("mitmweb", *_mitmweb_args(tmp_path, confdir, recorder.url, "0.0.0.0", web_port,
                                          "--set", "auth_web_remote=true"))
    try:
        p.wait_listening(timeout=START_TIMEOUT, web=True)
        with socket.create_connection(("127.0.0.1", web_port), timeout=IO_TIMEOUT) as sock:
            sock.settimeout(IO_TIMEOUT)
            token = f"?token={p.web_token}" if p.web_token else ""
            sock.sendall(f"GET /{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        p.stop()
