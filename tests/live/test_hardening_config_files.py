"""Issue #11, 5: config.yaml swapped, while a live `mitmdump -s addon/auth.py` runs, for what could
hang or exhaust it (a FIFO, a symlink to /dev/zero, a 10 MB file, a YAML alias bomb, a list slow to
parse): refused at once, said once, requests answered meanwhile under the last good config.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its test ends. The figures are printed under
-q too.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from authgate.addons.snapshots import READ_WAIT
from hardening_probes import AUTH, KEY
from live import config_text, write_config
from live_fixtures import confdir, gate, memory_kb, recorder, report  # noqa: F401
from raw_http import raw_exchange, request

ALIAS_BOMB = "".join(f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) \
    .join(["a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n", "proxy:\n  auth_mode: strict\n  api_key: *i\n"])


def _fifo(path: Path) -> None:
    tmp = path.with_name(".fifo")
    os.mkfifo(tmp)
    os.replace(tmp, path)


def _zero(path: Path) -> None:
    tmp = path.with_name(".zero")
    os.symlink("/dev/zero", tmp)
    os.replace(tmp, path)


CONFIG_SWAPS = {
    "fifo": (_fifo, "is a FIFO"),
    "symlink-to-dev-zero": (_zero, "is a character device"),
    "10-MB-yaml": (lambda p: write_config(p, "proxy:\n  auth_mode: off\n" + "# padding\n" * 1_000_000),
                   "is larger than 256 KiB"),
    "alias-bomb": (lambda p: write_config(p, ALIAS_BOMB), "an anchor (&) or alias (*)"),
}


@pytest.mark.parametrize("swap", list(CONFIG_SWAPS))
def test_5_a_config_that_could_hang_or_exhaust_the_gate_is_refused_at_once(gate, recorder, capsys, swap):
    m = gate(config_text("strict", KEY, recorder.url))
    make, says = CONFIG_SWAPS[swap]
    base = memory_kb(m.proc.pid)
    make(m.config)
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        no_key = raw_exchange(m.port, request(b"GET", b"/v1/models", []), timeout=5.0)[0]
        good = raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH]), timeout=5.0)[0]
        times.append((time.monotonic() - t0) / 2)
        assert (no_key, good) == (401, 200), f"{swap}: {no_key}, {good}"  # the last good config, still
    time.sleep(1.5)  # the idle watcher's turn
    assert m.proc.poll() is None
    notices = [line for line in m.lines if says in line]
    assert len(notices) == 1 and len(notices[0]) < 600, notices
    grew = memory_kb(m.proc.pid) - base
    assert grew < 30 * 1024, f"{swap}: RSS grew by {grew // 1024} MiB"
    said = re.search(r"\((?:file|YAML)\): (.*?)\. Fix", notices[0]).group(1)
    report(capsys, "hardening",
           f"config.yaml swapped for {swap}: requests answered in {max(times) * 1000:.1f} ms at most "
           f"(median {sorted(times)[2] * 1000:.1f} ms); RSS {grew / 1024:+.1f} MiB; the gate: \"{said[:90]}\"")
    write_config(m.config, config_text("off", KEY, recorder.url))  # a good file again applies at once
    assert raw_exchange(m.port, request(b"GET", b"/v1/models", []))[0] == 200


def test_5_a_slow_to_parse_config_is_read_off_the_event_loop(gate, recorder, capsys):
    """A 250 KiB YAML list takes a second or more to parse: the gate reads it in a thread, a
    request waits for it at most snapshots.READ_WAIT (then the last good config decides it)."""
    m = gate(config_text("strict", KEY, recorder.url))
    items = ",".join(["1"] * 120_000)
    write_config(m.config, f"proxy:\n  auth_mode: strict\n  api_key: \"{KEY}\"\n  port: [{items}]\n")
    t0 = time.monotonic()
    status = raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH]), timeout=10.0)[0]
    took = time.monotonic() - t0
    assert status == 200 and took < READ_WAIT + 0.5, took
    assert m.wait_for("proxy.port: [1, 1, 1, 1, ...] is not a port number", timeout=10.0)
    report(capsys, "hardening",
           f"a 250 KiB config.yaml (a list, slow to parse) while a request came: answered in {took:.2f} s")
