"""`just run` and `just web` (addon/run.py): the gate and the demo upstream start together, and
whatever stops the recipe stops both, ports freed, each signal sent as its sender sends it:
SIGTERM to `just` itself (an IDE's stop button, a supervisor, `kill`), even SIGKILL; SIGINT and SIGHUP to the
recipe's process group, as a terminal does on Ctrl-C and when it closes (`just` itself ignores
both while its recipe runs, leaving them to the group). Everything on 127.0.0.1, ephemeral
ports, bounded waits."""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time

import pytest

from authgate.config import ports
from live import Process, closed_port, config_text, write_config
from raw_http import send

KEY = "sk-launcher-0123456789abcdef0123456789"
FREED_WITHIN = 2.0  # seconds: what the issue asks of a stop
UPSTREAM_LINE = re.compile(r"demo upstream .* listening on http://127\.0\.0\.1:(\d+)")


def _refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.fixture
def recipe(tmp_path):
    started = []

    def start(name: str) -> Process:
        config = tmp_path / "config.yaml"
        write_config(config, config_text("strict", KEY, f"http://127.0.0.1:{closed_port()}"))
        extra = ["--set", "web_port=0", "--set", "web_open_browser=false"] if name == "web" else []
        p = Process("just", name, "--config", str(config), "--set", f"confdir={tmp_path / 'mitmproxy'}", *extra,
                    env={"PYTHON": sys.executable}, new_session=True)
        started.append(p)
        p.wait_listening(web=name == "web")
        assert p.wait_for(lambda out: UPSTREAM_LINE.search(out), 10), p.output
        return p

    yield start
    for p in started:
        p.stop()


@pytest.mark.parametrize("name", ["run", "web"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL], ids=lambda s: s.name)
def test_a_signal_to_the_recipe_stops_everything_and_frees_the_ports(recipe, name, sig):
    p = recipe(name)
    upstream_port = int(UPSTREAM_LINE.search(p.output).group(1))
    ok = send(p.port, "GET", "/v1/models", headers=[("Authorization", f"Bearer {KEY}")])
    assert ok.status == 200, ok  # the gate forwards to the demo upstream it started
    holders = {port: ports.holder(port) for port in (p.port, upstream_port)}
    pids = [int(re.search(r"pid (\d+)", h).group(1)) for h in holders.values() if h]
    assert len(pids) == 2, holders  # this OS tells who holds each port

    if sig in (signal.SIGTERM, signal.SIGKILL):  # SIGKILL: `just` dies at once; the kernel tells run.py
        os.kill(p.proc.pid, sig)
    else:
        os.killpg(p.proc.pid, sig)
    deadline = time.monotonic() + FREED_WITHIN
    while time.monotonic() < deadline and not (_refused(p.port) and _refused(upstream_port)
                                                and not any(map(_alive, pids))):
        time.sleep(0.05)
    took = FREED_WITHIN - (deadline - time.monotonic())
    left = [pid for pid in pids if _alive(pid)]
    print(f"\n[launcher] just {name}, {sig.name}: ports freed and children gone in {took:.2f} s")
    assert _refused(p.port) and _refused(upstream_port), f"a port still answers after {FREED_WITHIN} s"
    assert not left, f"still running after {FREED_WITHIN} s: {left}\n{p.output}"


def test_the_demo_upstream_leaving_keeps_the_gate(recipe):
    # upstream.url not local, or the demo killed: the gate still answers what it answers itself
    p = recipe("run")
    upstream_port = int(UPSTREAM_LINE.search(p.output).group(1))
    pid = int(re.search(r"pid (\d+)", ports.holder(upstream_port)).group(1))
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.3)
    assert p.proc.poll() is None, p.output
    assert send(p.port, "GET", "/v1/models").status == 401
    assert send(p.port, "GET", "/v1/models", headers=[("Authorization", f"Bearer {KEY}")]).status == 502
