"""CPU instructions per request under valgrind's callgrind: bare mitmdump and
mitmdump with the gate (and, with --compare, other checkouts' gates) side by
side, each on the same upstream. Instructions do not move with the machine's
load, so this shows a difference of a few percent that req/s on a shared
machine cannot: two bare runs agree within about 0.2%.

Each proxy runs under callgrind; after a warm-up the counters are zeroed
(callgrind_control --zero), `count` allowed requests go through one keep-alive
connection, and the counters are dumped: their total over `count` is the
figure. Slow (valgrind runs Python some 50 times slower): a few minutes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .common import ADDON, API_KEY, HOST, UPSTREAM_BODY, BenchError, request_bytes
from .processes import Proc, bare_args, gate_args, start_mitmdump, wait_listening

WARMUP = 50
CALLGRIND_STARTUP = 240.0  # seconds for mitmdump under callgrind to listen
_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.M)


def available() -> str | None:
    """Why the instruction count cannot run here, or None."""
    missing = [tool for tool in ("valgrind", "callgrind_control") if not shutil.which(tool)]
    return f"{' and '.join(missing)} not found (apt install valgrind)" if missing else None


def bench_instructions(count: int, up_port: int, logdir: Path, procs: list[Proc],
                       compare: list[Path] = ()) -> dict:
    from .load import run_load  # the same load generator as the throughput rounds

    upstream_url = f"http://{HOST}:{up_port}"
    variants = [("bare", "bare mitmdump", bare_args(upstream_url)),
                ("gate", "gate, allowed", gate_args(ADDON, upstream_url, logdir))]
    for i, other in enumerate(compare, 1):
        variants.append((f"compare{i}", f"gate at {other.parent.parent}", gate_args(other, upstream_url, logdir)))
    out = {"requests": count, "warmup": WARMUP, "variants": {}}
    for name, label, args in variants:  # one at a time: valgrind is slow, and each gets the cores alone
        dumps = logdir / f"callgrind-{name}"
        prefix = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dumps}.%p", sys.executable, "-c",
                  "import sys; from mitmproxy.tools.main import mitmdump; sys.argv[0] = 'mitmdump'; mitmdump()"]
        # One hash seed for all: str hashes decide dict and set layouts, which move the count by about 1%.
        p = start_mitmdump(f"{name}-callgrind", prefix, args, logdir, procs, env={**os.environ, "PYTHONHASHSEED": "0"})
        port = wait_listening(p, upstream_url, timeout=CALLGRIND_STARTUP)

        def load(n: int) -> dict:
            res = asyncio.run(run_load(port, request_bytes(port, API_KEY), n, 1, CALLGRIND_STARTUP, 200,
                                       UPSTREAM_BODY))
            if res["problems"] or res["requests"] != n:
                raise BenchError(f"{label} under callgrind: {res['problems'] or res['statuses']}:\n{p.tail()}")
            return res

        load(WARMUP)
        _control("--zero", p)
        load(count)
        _control("--dump", p)
        total = _dumped_total(dumps, p)
        p.stop()
        out["variants"][name] = {"label": label, "instructions_per_request": round(total / count)}
        print(f"  {label:<28} {total / count / 1e6:7.3f} M instructions per request", flush=True)
    bare = out["variants"]["bare"]["instructions_per_request"]
    for v in out["variants"].values():
        v["ratio_to_bare"] = round(bare / v["instructions_per_request"], 4)
        v["added_per_request"] = v["instructions_per_request"] - bare
    return out


def _control(flag: str, p: Proc) -> None:
    done = subprocess.run(["callgrind_control", flag, str(p.proc.pid)], capture_output=True, timeout=120)
    if done.returncode != 0:
        raise BenchError(f"callgrind_control {flag} {p.proc.pid}: {done.stderr.decode(errors='replace')}")


def _dumped_total(dumps: Path, p: Proc) -> int:
    """The instruction total of the dump made after the zeroing (callgrind numbers dumps .1, .2, ...)."""
    files = sorted(dumps.parent.glob(f"{dumps.name}.{p.proc.pid}.*"), key=lambda f: int(f.suffix[1:]))
    if not files:
        raise BenchError(f"no callgrind dump for {p.name} in {dumps.parent}")
    found = _TOTALS.search(files[-1].read_bytes())
    if not found:
        raise BenchError(f"no instruction total in {files[-1]}")
    return int(found.group(1))
