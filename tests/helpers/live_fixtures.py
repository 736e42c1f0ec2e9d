"""The fixtures the live test modules share (import them by name, as gate_harness's are), and two
small helpers: a finding printed under -q too, a process's memory from /proc.

- `confdir` (per module): mitmproxy's own confdir (CA, options file), isolated from ~/.mitmproxy.
- `gate` (per test): starts gates on config texts (live.Gates); all are stopped afterwards.
- `echo`, `recorder`, `faulty` (per test): the demo echo upstream, a Recorder, FaultyUpstreams by mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from live import Gates
from upstreams import FaultyUpstream, Recorder, Upstream


@pytest.fixture(scope="module")
def confdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mitmconf")


@pytest.fixture
def gate(tmp_path, confdir):
    """Start gates for one test (config text, extra args); all are stopped afterwards."""
    with Gates(tmp_path, confdir) as start:
        yield start


@pytest.fixture
def echo():
    with Upstream() as e:
        yield e


@pytest.fixture
def recorder():
    with Recorder() as r:
        yield r


@pytest.fixture
def faulty():
    made: list[FaultyUpstream] = []

    def make(mode: str) -> FaultyUpstream:
        u = FaultyUpstream(mode)
        made.append(u)
        return u

    yield make
    for u in made:
        u.stop()


def report(capsys, tag: str, text: str) -> None:
    """Print a finding on the terminal even under -q (the figures are part of the deliverable)."""
    with capsys.disabled():
        print(f"\n[{tag}] {text}")


def memory_kb(pid: int, field: str = "VmRSS") -> int:
    """A process's VmRSS (or VmHWM, its peak) in kB, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")
