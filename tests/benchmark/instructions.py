"""CPU instructions per request under valgrind's callgrind: the bench's headline.

Bare mitmdump, the floor script (floor.py: one handler that checks a header)
and mitmdump with the gate (and, with --compare, other checkouts' gates), each
on the same upstream, for every Python given (--python: another venv's
interpreter, with its own mitmproxy). Instructions do not move with the
machine's load, so this shows a difference of a few percent that req/s on a
shared machine cannot: runs agree within about ±50k (0.5%).

Each proxy runs under callgrind (PYTHONHASHSEED=0) and serves its scenarios
one after the other on one keep-alive connection (a denied POST connects again
for each request: its body is never read). Per scenario: a warm-up, then the
counters are zeroed (callgrind_control --zero), `count` requests go through,
and the counters are dumped. After the first warm-up the proxy sits idle for
`idle` seconds, counted alone: what its timers cost per second (the gate's config watcher
and request-head sweeper wake every second, and callgrind stretches a request
to about 0.1 s). That idle rate times the scenario's duration is taken out of
its count, for bare and the floor as for the gate, so the figure is what a
request costs. Slow: valgrind runs Python some 50 times slower.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from .common import API_KEY, HOST, REPO, UPSTREAM_BODY, WRONG_KEY, BenchError, request_bytes
from .processes import Proc, bare_args, gate_args, start_mitmdump, wait_listening

WARMUP = 50
IDLE_SECONDS = 8.0
SETTLE_SECONDS = 3.0  # after the first warm-up, before the idle count
CALLGRIND_STARTUP = 240.0  # seconds for mitmdump under callgrind to listen
FLOOR = REPO / "tests" / "benchmark" / "floor.py"
_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.M)

# scenario -> (key, method, expected status, the upstream's body expected)
SCENARIOS = {
    "post": (API_KEY, "POST", 200, True),
    "get": (API_KEY, "GET", 200, True),
    "get_denied": (WRONG_KEY, "GET", 401, False),
    "post_denied": (WRONG_KEY, "POST", 401, False),
}
# The rows of the headline: (proxy, scenario, label, the bare scenario it is set against)
ROWS = [
    ("bare", "post", "bare mitmdump, allowed POST", None),
    ("bare", "get", "bare mitmdump, allowed GET", None),
    ("floor", "post", "floor script, allowed POST", "post"),
    ("floor", "get_denied", "floor script, denied GET", "get"),
    ("gate", "post", "gate, allowed POST", "post"),
    ("gate", "get_denied", "gate, denied GET", "get"),
    ("gate", "post_denied", "gate, denied POST", "post"),
]
PROXY_SCENARIOS = {"bare": ("post", "get"), "floor": ("post", "get_denied"),
                   "gate": ("post", "get_denied", "post_denied")}


def available() -> str | None:
    """Why the instruction count cannot run here, or None."""
    missing = [tool for tool in ("valgrind", "callgrind_control") if not shutil.which(tool)]
    return f"{' and '.join(missing)} not found (apt install valgrind)" if missing else None


def describe_python(python: str) -> dict:
    """{"python": X.Y.Z, "mitmproxy": version, "key": "py3.11-mitmproxy11.0.2"} of an interpreter."""
    out = subprocess.run([python, "-c", "import platform, mitmproxy.version as v; "
                                        "print(platform.python_version(), v.VERSION)"],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise BenchError(f"{python}: cannot import mitmproxy ({out.stderr.strip()[-300:]})")
    py, mitm = out.stdout.split()
    return {"python": py, "mitmproxy": mitm, "executable": python, "key": version_key(py, mitm)}


def version_key(python: str, mitmproxy: str) -> str:
    """py3.11-mitmproxy11.0.2: the baseline's key (Python's minor release, mitmproxy's exact one)."""
    return f"py{'.'.join(python.split('.')[:2])}-mitmproxy{mitmproxy}"


def bench_instructions(count: int, up_port: int, logdir: Path, procs: list[Proc], pythons: list[str],
                       compare: list[Path] = (), runs: int = 1, proxies=("bare", "floor", "gate"),
                       idle: float = IDLE_SECONDS, warmup: int = WARMUP) -> dict:
    upstream_url = f"http://{HOST}:{up_port}"
    variants = []
    for name in proxies:
        if name == "bare":
            variants.append(("bare", "bare mitmdump", bare_args(upstream_url), PROXY_SCENARIOS["bare"]))
        elif name == "floor":
            variants.append(("floor", "floor script", ["-s", str(FLOOR), *bare_args(upstream_url)],
                             PROXY_SCENARIOS["floor"]))
        elif name == "gate":
            variants.append(("gate", "gate", gate_args(REPO / "addon" / "auth.py", upstream_url, logdir),
                             PROXY_SCENARIOS["gate"]))
    for i, other in enumerate(compare, 1):
        variants.append((f"compare{i}", f"gate at {other.parent.parent}", gate_args(other, upstream_url, logdir),
                         PROXY_SCENARIOS["gate"]))
    out = {"requests": count, "warmup": warmup, "idle_seconds": idle, "runs": runs, "interpreters": {}}
    for python in pythons:
        info = describe_python(python)
        entry = out["interpreters"][info["key"]] = {**info, "runs": []}
        for run in range(runs):
            figures: dict = {}
            for name, label, args, scenarios in variants:  # one at a time: each gets the cores alone
                figures[name] = _count(python, f"{info['key']}-{name}-{run + 1}", label, args, scenarios,
                                       count, up_port, logdir, procs, idle, warmup)
                said = ", ".join(f"{s} {v['per_request'] / 1e6:.3f}M" for s, v in figures[name].items())
                print(f"  {info['key']} run {run + 1}/{runs}  {label:<22} {said}", flush=True)
            entry["runs"].append(figures)
        entry["median"] = {proxy: {s: round(statistics.median(r[proxy][s]["per_request"] for r in entry["runs"]))
                                   for s in entry["runs"][0][proxy]} for proxy in entry["runs"][0]}
        entry["ratios"] = ratios(entry["median"])
        entry["ratios_per_run"] = [ratios({p: {s: v["per_request"] for s, v in r[p].items()} for p in r})
                                   for r in entry["runs"]]
    return out


def ratios(median: dict) -> dict:
    """bare's figure over each variant's (> 1: cheaper than bare): allowed against bare's
    allowed POST, a denied GET against bare's allowed GET, a denied POST against bare's POST."""
    bare = median.get("bare")
    if not bare:
        return {}
    against = {"post": "post", "get": "get", "get_denied": "get", "post_denied": "post"}
    return {f"{proxy}_{s}": round(bare[against[s]] / v, 4)
            for proxy, scenarios in median.items() if proxy != "bare" for s, v in scenarios.items()}


def _count(python: str, name: str, label: str, args: list[str], scenarios, count: int, up_port: int,
           logdir: Path, procs: list[Proc], idle: float, warmup: int) -> dict:
    from .load import run_load  # the same load generator as the throughput rounds

    upstream_url = f"http://{HOST}:{up_port}"
    dumps = logdir / f"callgrind-{name}"
    prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dumps}.%p", python, "-c",
              "import sys; from mitmproxy.tools.main import mitmdump; sys.argv[0] = 'mitmdump'; mitmdump()"]
    # One hash seed for all: str hashes decide dict and set layouts, which move the count by about 1%.
    p = start_mitmdump(f"{name}-callgrind", prefix, args, logdir, procs, env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        port = wait_listening(p, upstream_url, timeout=CALLGRIND_STARTUP)

        def load(scenario: str, n: int) -> None:
            key, method, status, body = SCENARIOS[scenario]
            res = asyncio.run(run_load(port, request_bytes(port, key, method), n, 1, CALLGRIND_STARTUP, status,
                                       UPSTREAM_BODY if body else None))
            if res["problems"] or res["requests"] != n:
                raise BenchError(f"{label}, {scenario} under callgrind: {res['problems'] or res['statuses']}:"
                                 f"\n{p.tail()}")

        measured, idle_rate = {}, 0.0
        for i, scenario in enumerate(scenarios):
            load(scenario, warmup)
            if i == 0:
                # Idle, once warm: the timers alone (start-up's last work done, and what a request
                # leaves behind, a closing connection or a log line, stays in the request's count).
                time.sleep(SETTLE_SECONDS)
                _control("--zero", p)
                time.sleep(idle)
                _control("--dump", p)
                idle_rate = _dumped_total(dumps, p) / idle
            _control("--zero", p)
            t0 = time.monotonic()
            load(scenario, count)
            seconds = time.monotonic() - t0
            _control("--dump", p)
            measured[scenario] = (_dumped_total(dumps, p), seconds)
    finally:
        p.stop()
    return {scenario: {"raw_per_request": round(total / count), "seconds": round(seconds, 2),
                       "idle_per_second": round(idle_rate),
                       "per_request": round((total - idle_rate * seconds) / count)}
            for scenario, (total, seconds) in measured.items()}


def _control(flag: str, p: Proc) -> None:
    done = subprocess.run(["callgrind_control", flag, str(p.proc.pid)], capture_output=True, timeout=120)
    if done.returncode != 0:
        raise BenchError(f"callgrind_control {flag} {p.proc.pid}: {done.stderr.decode(errors='replace')}")


def _dumped_total(dumps: Path, p: Proc) -> int:
    """The instruction total of the newest dump (callgrind numbers dumps .1, .2, ...)."""
    files = sorted(dumps.parent.glob(f"{dumps.name}.{p.proc.pid}.*"), key=lambda f: int(f.suffix[1:]))
    if not files:
        raise BenchError(f"no callgrind dump for {p.name} in {dumps.parent}")
    found = _TOTALS.search(files[-1].read_bytes())
    if not found:
        raise BenchError(f"no instruction total in {files[-1]}")
    return int(found.group(1))
