"""Where the gate listens, on every supported mitmproxy and Python (addon/authgate/addons/bind.py).

On Python 3.12+ mitmproxy starts its listeners before a `-s` script has loaded; without the
gate's take-over, `mitmdump -s addon/auth.py` served mitmproxy's default forward proxy on *:8080
(on every interface) instead of the gate on 127.0.0.1:proxy.port. These tests read the process's
listening sockets from /proc, so they see every listener, not only the one mitmproxy announces.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from live import Gates, config_text
from raw_http import send

KEY = "sk-listen0123456789abcdef01234567"

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads listening sockets from /proc")


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the process listens on."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state != "0A" or inode not in inodes:  # 0A: LISTEN
                    continue
                addr_hex, port_hex = local.split(":")
                raw = bytes.fromhex(addr_hex)
                # /proc prints each 32-bit word in host (little-endian) order
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add((socket.inet_ntop(family, raw), int(port_hex, 16)))
    return found


@pytest.fixture
def start(tmp_path):
    with Gates(tmp_path, tmp_path / "mitmconf") as start:
        yield start


@pytest.fixture
def port_8080_taken():
    """mitmproxy's default listener address, held by someone else (if it is free now)."""
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", 8080))
        s.listen()
    except OSError:
        pass  # already taken by another process: the same situation
    try:
        yield
    finally:
        s.close()


def test_serves_only_on_loopback_and_the_configured_port(start, port_8080_taken):
    gate = start(config_text("strict", KEY, "http://127.0.0.1:9"))
    assert listening(gate.proc.pid) == {("127.0.0.1", gate.port)}, gate.output
    assert "reverse proxy to http://127.0.0.1:9 listening at 127.0.0.1:" in gate.output
    assert "HTTP(S) proxy listening" not in gate.output and "8080" not in gate.output, gate.output
    # the gate itself answers: a reverse proxy, never a forward one
    r = send(gate.port, "GET", "/v1/models")
    assert r.status == 401 and r.header("x-auth-gate")


def test_serves_on_a_fixed_port_from_config_yaml(start, port_8080_taken):
    with socket.socket() as s:  # a free port, released for the gate
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gate = start(config_text("strict", KEY, "http://127.0.0.1:9", port=port), port_option=False)
    assert gate.port == port
    assert listening(gate.proc.pid) == {("127.0.0.1", port)}, gate.output


def test_bad_config_at_start_never_listens_even_with_8080_taken(start, port_8080_taken):
    gate = start(config_text("bogus", KEY), wait=False)
    rc = gate.wait_exit()
    assert rc not in (None, 0), gate.output
    assert "listening at" not in gate.output and "proxy.auth_mode" in gate.output, gate.output


def test_explicit_mode_flag_is_the_users(start):
    gate = start(config_text("strict", KEY, "http://127.0.0.1:9"),
                 "--mode", "reverse:http://127.0.0.1:9@127.0.0.1:0", port_option=False)
    assert listening(gate.proc.pid) == {("127.0.0.1", gate.port)}, gate.output
