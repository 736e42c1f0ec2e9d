#!/usr/bin/env python3
"""Benchmark: mitmdump with the auth gate against bare mitmdump and the floor
script, side by side in one run, on the same local upstream.

The headline is CPU instructions per request under valgrind's callgrind
(benchmark/instructions.py): bare mitmdump, the floor (benchmark/floor.py) and
the gate, allowed and denied, for every Python given; the machine's load does
not move it. Throughput rounds, the decision's cost and the hooks' cost follow
as secondary figures. docs/performance.md says how to read them.

    python3 tests/bench.py                 # full run (just bench): instructions, then throughput
    python3 tests/bench.py --quick         # smoke run of the throughput rounds, a few seconds
    python3 tests/bench.py --skip-throughput --skip-decision --instructions 120 --runs 3 --python OTHER/bin/python
    python3 tests/bench.py --instructions 120 --compare ../before/addon/auth.py --write-baseline
    python3 tests/bench.py --requests 5000 --concurrency 16 --rounds 5 --instructions 0 --json out.json

What runs (loopback only, bounded in request count and in time):

* a fixed-answer HTTP/1.1 keep-alive upstream (asyncio, its own process, so
  it never competes with the load generator for the GIL);
* bare mitmdump in reverse mode to that upstream;
* mitmdump -s addon/auth.py (strict mode, a known key) to the same upstream;
* a stdlib asyncio load generator: C keep-alive connections, N requests per
  scenario after an unmeasured warm-up, each scenario capped in time.

Scenarios are interleaved over several rounds (bare, gate allowed, gate
denied GET, gate denied POST, in a rotating order) and the median round is reported: the machine
this runs on may have two cores and plenty of noise. Beside req/s and latency,
each row gives the proxy process's own CPU time per request (from /proc),
which other processes on the machine disturb much less. Every status is
checked (200 with the upstream's body for bare and allowed, 401 for denied),
the upstream's own counters prove the denied path never reaches it, and
connections that reach the upstream without carrying a request are counted.
A denial is answered at the request's headers: a GET keeps its connection, a
POST's connection is closed (its body is never read, as the original's hyper
does), so that row includes a new TCP connection per request.

In-process, without sockets: decide() per call (timeit, CPU time, best of
interleaved repeats), and the gate's hooks per flow (requestheaders, request,
responseheaders, response) through mitmproxy's own dispatch on the script as
mitmdump loads it (mitmproxy.test.taddons): what the gate adds to each
request, set against bare mitmdump's CPU per request.

Targets (printed PASS/MISS; the exit status is 0 either way, it is a
measurement): the allowed path at least 0.97 of bare mitmdump's instructions and
a denied GET at least 1.0 of bare's allowed GET (per Python); allowed at least
0.95 of bare's throughput, a denial (GET) faster than the allowed path, the
decision under 5 µs per call. tests/live/test_bench_regression.py holds the
instruction ratios to tests/benchmark/baseline.json. The exit
status is non-zero only when something failed to run (2) or answered wrongly (1).

Only the standard library, plus the addon's modules and mitmproxy's test helpers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmark import instructions
from benchmark.common import REPO, BenchError
from benchmark.inprocess import bench_decision, bench_hooks
from benchmark.load import bench_throughput
from benchmark.processes import Proc, loadavg
from benchmark.report import report
from benchmark.upstream import serve, start_upstream


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, help="measured requests per scenario and round (default 1200; quick 300)")
    p.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (default 8)")
    p.add_argument("--rounds", type=int, help="interleaved rounds; the median is reported (default 5; quick 1)")
    p.add_argument("--time-cap", type=float, default=30.0, help="seconds at most per scenario (default 30)")
    p.add_argument("--json", default="bench-results.json", help="where to write the results (default ./bench-results.json)")
    p.add_argument("--quick", action="store_true", help="small counts: a smoke run of a few seconds")
    p.add_argument("--skip-decision", action="store_true",
                   help="skip the in-process parts (decision and addon hook cost)")
    p.add_argument("--skip-throughput", action="store_true", help="only the in-process parts (no mitmdump)")
    p.add_argument("--instructions", type=int, metavar="N",
                   help="CPU instructions per request under valgrind's callgrind, N requests per scenario "
                        "(the headline: default 300, about 5 minutes per Python; 0: skip; --quick: 0)")
    p.add_argument("--runs", type=int, default=1, metavar="R",
                   help="with --instructions: count every proxy R times (the median is the figure)")
    p.add_argument("--python", action="append", default=[], metavar="PYTHON",
                   help="with --instructions: also count under this interpreter (another venv's bin/python, with "
                        "its own mitmproxy); repeatable. The venvs in .venvs/*/ are found by themselves")
    p.add_argument("--proxies", default="bare,floor,gate",
                   help="with --instructions: which proxies to count (default bare,floor,gate)")
    p.add_argument("--idle", type=float, default=instructions.IDLE_SECONDS, metavar="S",
                   help="with --instructions: seconds each proxy is counted idle, to take its timers out")
    p.add_argument("--warmup", type=int, default=instructions.WARMUP, metavar="N",
                   help="with --instructions: requests per scenario before the counters are zeroed")
    p.add_argument("--write-baseline", action="store_true",
                   help="with --instructions: store the ratios to bare measured here as the baseline of their "
                        "Python and mitmproxy in tests/benchmark/baseline.json (the regression test reads it)")
    p.add_argument("--compare", type=Path, metavar="AUTH_PY", action="append", default=[],
                   help="with --instructions: another checkout's addon/auth.py counted beside this one "
                        "(before/after a change); may be given more than once")
    p.add_argument("--_upstream", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.requests is None:
        args.requests = 300 if args.quick else 1200
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    if args.requests < 1 or args.concurrency < 1 or args.rounds < 1 or args.time_cap <= 0:
        p.error("--requests, --concurrency, --rounds and --time-cap must be positive")
    if args.instructions is None:
        args.instructions = 0 if args.quick else 300
    if args.instructions < 0 or args.runs < 1 or args.warmup < 1 or args.idle <= 0:
        p.error("--instructions must be positive (0: skip), --runs, --warmup and --idle too")
    args.proxies = [x.strip() for x in args.proxies.split(",") if x.strip()]
    if unknown := set(args.proxies) - set(instructions.PROXY_SCENARIOS):
        p.error(f"--proxies: {', '.join(sorted(unknown))} unknown (bare, floor, gate)")
    if (args.compare or args.python or args.runs > 1 or args.write_baseline) and not args.instructions:
        p.error("--compare, --python, --runs and --write-baseline go with --instructions N")
    for other in args.compare:
        if not other.is_file():
            p.error(f"--compare: {other} is not a file (give another checkout's addon/auth.py)")
    for python in args.python:
        if not Path(python).is_file():
            p.error(f"--python: {python} is not a file (give another venv's bin/python)")
    if args.instructions and (why := instructions.available()):
        if explicit_instructions(argv):
            p.error(f"--instructions: {why}")
        print(f"note: no instruction count ({why}); throughput only", file=sys.stderr)
        args.instructions = 0
    return args


def explicit_instructions(argv) -> bool:
    return any(a == "--instructions" or a.startswith("--instructions=") for a in (sys.argv[1:] if argv is None
                                                                                  else argv))


def pythons(extra: list[str]) -> list[str]:
    """This interpreter, then the ones given, then the venvs in .venvs/*/ (each once)."""
    found = [sys.executable, *extra, *(str(p) for p in sorted(REPO.glob(".venvs/*/bin/python")))]
    out, seen = [], set()
    for python in found:
        prefix = Path(python).parent.parent.resolve()  # a venv's bin/python links to the same binary
        if prefix not in seen:
            seen.add(prefix)
            out.append(python)
    return out


BASELINE = REPO / "tests" / "benchmark" / "baseline.json"


def write_baseline(ins: dict, when: str) -> Path:
    """Store each measured version's ratios to bare (gate, allowed POST, denied GET and POST) in
    baseline.json, beside the versions measured before."""
    try:
        baseline = json.loads(BASELINE.read_text())
    except FileNotFoundError:
        baseline = {"tolerance": 0.02, "versions": {}}
    for key, entry in ins["interpreters"].items():
        baseline["versions"][key] = {
            "ratios": {name: entry["ratios"][name] for name in ("gate_post", "gate_get_denied", "gate_post_denied")},
            "instructions_per_request": entry["median"],
            "measured": f"{when}, {ins['requests']} requests per scenario, median of {ins['runs']} run(s)"}
    BASELINE.write_text(json.dumps(baseline, indent=2) + "\n")
    return BASELINE


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._upstream:
        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            pass
        return 0

    # SIGTERM (e.g. a CI timeout) unwinds through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    load_before = loadavg()
    procs: list[Proc] = []
    logdir = Path(tempfile.mkdtemp(prefix="authgate-bench-"))
    dec = thr = hooks = ins = None
    ok = False
    try:
        print(f"auth gate benchmark · {platform.python_implementation()} {platform.python_version()} · "
              f"{os.cpu_count()} CPUs · {args.requests} requests x {args.concurrency} connections x "
              f"{args.rounds} round(s){' · quick' if args.quick else ''}", flush=True)
        if not args.skip_decision:
            dec = bench_decision(args.quick)
            try:
                hooks = bench_hooks(args.quick)
            except Exception as e:  # noqa: BLE001 - informative part: say so, measure the rest
                hooks = {"error": f"{type(e).__name__}: {e}"}
                print(f"note: addon hook timing skipped ({hooks['error']})", file=sys.stderr)
        if not args.skip_throughput:
            thr = bench_throughput(args, logdir, procs)
        if args.instructions:
            print(f"instructions per request under callgrind ({args.instructions} requests per scenario, "
                  f"one at a time, {args.runs} run(s))", flush=True)
            ins = instructions.bench_instructions(args.instructions, start_upstream(logdir, procs), logdir, procs,
                                                  pythons(args.python), [c.resolve() for c in args.compare],
                                                  args.runs, args.proxies, args.idle, args.warmup)
        ok = True
    except BenchError as e:
        print(f"\nbench failed: {e}", file=sys.stderr)
    except (KeyboardInterrupt, SystemExit):
        print(f"\ninterrupted; child processes stopped; logs in {logdir}", file=sys.stderr)
        raise
    except Exception:  # noqa: BLE001 - anything else that failed to run: say what, exit non-zero
        traceback.print_exc()
        print("\nbench failed: unexpected error (traceback above)", file=sys.stderr)
    finally:
        for p in reversed(procs):
            p.stop()

    if not ok:
        print(f"logs kept in {logdir}", file=sys.stderr)
        return 2
    targets = report(dec, hooks, thr, ins)
    cpus = os.cpu_count() or 1
    if load_before and load_before[0] > 0.5 * cpus:
        print(f"note: load average was {load_before[0]:.2f} on {cpus} CPUs before the run: other processes "
              f"share the cores, req/s is noisy (the CPU µs/req columns much less so)")
    import mitmproxy.version
    results = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"python": platform.python_version(), "mitmproxy": mitmproxy.version.VERSION,
                    "cpus": os.cpu_count(), "platform": platform.platform()},
        "settings": {"requests": args.requests, "concurrency": args.concurrency, "rounds": args.rounds,
                     "time_cap_s": args.time_cap, "quick": args.quick},
        "decision": dec, "addon_hooks": hooks, "throughput": thr, "instructions": ins, "targets": targets,
        "duration_s": round(time.monotonic() - started, 1),
        "loadavg": {"before": load_before, "after": loadavg()},
    }
    try:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    except OSError as e:
        print(f"bench failed: cannot write {args.json} ({e})", file=sys.stderr)
        return 2
    print(f"\nresults written to {args.json} · {results['duration_s']} s")
    if args.write_baseline and ins:
        print(f"baseline written to {write_baseline(ins, results['when'])}")

    problems = (thr or {}).get("problems") or {}
    if problems:
        print("\nunexpected answers (the figures above are not trustworthy):", file=sys.stderr)
        for what, n in problems.items():
            print(f"  {n:6d} × {what}", file=sys.stderr)
        print(f"logs kept in {logdir}", file=sys.stderr)
        return 1
    if thr and thr["capped"]:
        print(f"note: a scenario hit the {args.time_cap:.0f} s time cap; its figures cover the requests done",
              file=sys.stderr)
    shutil.rmtree(logdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
