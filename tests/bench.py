#!/usr/bin/env python3
"""Benchmark: the decision's cost per call, and mitmdump with the auth gate
against bare mitmdump, side by side in one run, on the same local upstream.

    python3 tests/bench.py                 # full run (just bench)
    python3 tests/bench.py --quick         # smoke run, a few seconds
    python3 tests/bench.py --requests 5000 --concurrency 16 --rounds 5 --json out.json

What runs (loopback only, bounded in request count and in time):

* a fixed-answer HTTP/1.1 keep-alive upstream (asyncio, its own process, so
  it never competes with the load generator for the GIL);
* bare mitmdump in reverse mode to that upstream;
* mitmdump -s addon/auth.py (strict mode, a known key) to the same upstream;
* a stdlib asyncio load generator: C keep-alive connections, N requests per
  scenario after an unmeasured warm-up, each scenario capped in time.

Scenarios are interleaved over several rounds (bare, gate allowed, gate
denied, in a rotating order) and the median round is reported: the machine
this runs on may have two cores and plenty of noise. Beside req/s and latency,
each row gives the proxy process's own CPU time per request (from /proc),
which other processes on the machine disturb much less. Every status is
checked (200 with the upstream's body for bare and allowed, 401 for denied),
the upstream's own counters prove the denied path never reaches it, and
connections that reach the upstream without carrying a request are counted.

In-process, without sockets: decide() per call (timeit, CPU time, best of
interleaved repeats), and the gate's hooks per flow (requestheaders, request,
responseheaders, response) through mitmproxy's own dispatch on the script as
mitmdump loads it (mitmproxy.test.taddons): what the gate adds to each
request, set against bare mitmdump's CPU per request.

Targets (printed PASS/MISS; the exit status is 0 either way, it is a
measurement): allowed path at least 0.95 of bare mitmdump's throughput, denied
path faster than the allowed path, decision under 5 µs per call. The exit
status is non-zero only when something failed to run (2) or answered wrongly (1).

Only the standard library, plus the addon's modules and mitmproxy's test helpers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADDON_DIR = REPO / "addon"
ADDON = ADDON_DIR / "auth.py"

API_KEY = "sk-bench0123456789abcdef0123456789a"  # 35 chars, as long as a generated key
WRONG_KEY = "sk-bench0123456789abcdef0123456789b"
HOST = "127.0.0.1"

UPSTREAM_BODY = b'{"id":"bench","object":"chat.completion","choices":[],"ok":true}'
REQUEST_BODY = b'{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"stream":false}'
REQUEST_PATH = "/v1/chat/completions"
COUNT_PATH = "/__bench/count"  # the upstream answers how many requests it served

TARGET_RATIO = 0.95
TARGET_DECISION_NS = 5000.0
STARTUP_TIMEOUT = 30.0  # seconds for a mitmdump to say "listening at"
IO_TIMEOUT = 10.0  # seconds for one response before the connection counts as failed


class BenchError(RuntimeError):
    """Something failed to run; the message says what."""


# ====================================================================== headers

def typical_headers(key: str | None, port: int | str = 8045) -> list[tuple[str, str]]:
    """About eight headers an OpenAI-style SDK sends, Authorization among them."""
    headers = [
        ("Host", f"{HOST}:{port}"),
        ("User-Agent", "OpenAI/Python 1.54.0"),
        ("Accept", "application/json"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Content-Type", "application/json"),
    ]
    if key is not None:
        headers.append(("Authorization", f"Bearer {key}"))
    headers += [
        ("X-Stainless-Lang", "python"),
        ("X-Stainless-Retry-Count", "0"),
        ("anthropic-version", "2023-06-01"),
    ]
    return headers


def request_bytes(port: int, key: str | None) -> bytes:
    lines = [f"POST {REQUEST_PATH} HTTP/1.1"]
    lines += [f"{n}: {v}" for n, v in typical_headers(key, port)]
    lines.append(f"Content-Length: {len(REQUEST_BODY)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + REQUEST_BODY


# ====================================================================== decision cost

def bench_decision(quick: bool) -> dict:
    if str(ADDON_DIR) not in sys.path:
        sys.path.insert(0, str(ADDON_DIR))
    from authgate import explain
    from authgate.decision import RequestView, decide
    from authgate.settings import FileConfig, Overrides, merge, parse_upstream

    upstream = parse_upstream("http://127.0.0.1:8046", "bench", "upstream.url")
    strict = merge(FileConfig(auth_mode="strict", api_key=API_KEY, upstream=upstream), Overrides(), "bench")
    exempt = merge(FileConfig(auth_mode="all_except_health", api_key=API_KEY, upstream=upstream),
                   Overrides(), "bench")

    def raw(headers):
        return tuple((n.encode("latin-1"), v.encode("latin-1")) for n, v in headers)

    cases = [
        ("allowed (Bearer, 9 headers)", "strict", RequestView("POST", REQUEST_PATH, raw(typical_headers(API_KEY))),
         strict, True),
        ("denied (key mismatch)", "strict", RequestView("POST", REQUEST_PATH, raw(typical_headers(WRONG_KEY))),
         strict, False),
        ("/healthz exempt", "all_except_health",
         RequestView("GET", "/healthz", raw(typical_headers(None)[:4])), exempt, True),
        ("OPTIONS preflight", "strict", RequestView("OPTIONS", REQUEST_PATH, raw(typical_headers(None)[:4] + [
            ("Origin", "http://localhost:3000"), ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "authorization, content-type")])), strict, True),
    ]
    # CPU time, not wall time: a busy machine preempts the loop, it does not slow the code.
    # Repeats go round-robin over the cases, each keeps its best, so a burst of
    # load elsewhere (a busy sibling core) spoils one repeat, not one case.
    slice_s = 0.02 if quick else 0.04
    rounds = 4 if quick else 12

    def timer_for(stmt: str, env: dict) -> tuple[timeit.Timer, int]:
        timer = timeit.Timer(stmt, globals=env, timer=time.process_time)
        estimate = max(timer.timeit(number=200) / 200, 1e-9)
        return timer, max(200, int(slice_s / estimate))

    jobs: dict[tuple[str, str], tuple[timeit.Timer, int]] = {("loop", "overhead"): timer_for("pass", {})}
    out = {"cases": []}
    for name, mode, view, policy, expect_allowed in cases:
        d = decide(view, policy)
        if d.allowed != expect_allowed:
            raise BenchError(f"decision case {name!r}: expected allowed={expect_allowed}, got {d.reason}")
        env = {"decide": decide, "view": view, "policy": policy, "d": d, "explain": explain}
        jobs[(name, "decide")] = timer_for("decide(view, policy)", env)
        # What the addon's request hook does with every decision besides decide().
        extra = "explain.detail(d); explain.comment(d)"
        if not d.allowed:
            extra += "; explain.denial_body(d, view.path); explain.www_authenticate(d)"
        try:  # informative only: the explain API may move, the decision is what is measured
            jobs[(name, "explain")] = timer_for(extra, env)
        except Exception as e:  # noqa: BLE001
            print(f"note: explain timing skipped for {name} ({type(e).__name__}: {e})", file=sys.stderr)
        out["cases"].append({"case": name, "mode": mode, "reason": d.reason})
    best = {key: float("inf") for key in jobs}
    for _ in range(rounds):
        for key, (timer, number) in jobs.items():
            best[key] = min(best[key], timer.timeit(number=number) / number * 1e9)
    overhead = best[("loop", "overhead")]  # the timing loop's own cost, subtracted
    out["loop_overhead_ns"] = round(overhead, 1)
    out["repeats"] = rounds
    for c in out["cases"]:
        c["decide_ns"] = round(best[(c["case"], "decide")] - overhead, 1)
        explain_ns = best.get((c["case"], "explain"))
        c["explain_ns"] = None if explain_ns is None else round(explain_ns - overhead, 1)
    out["worst_decide_ns"] = max(c["decide_ns"] for c in out["cases"])
    return out


# ====================================================================== addon hooks

def bench_hooks(quick: bool) -> dict:
    """CPU time of the gate's hooks per flow, in-process (mitmproxy.test.taddons).

    addon/auth.py is loaded as mitmdump loads a script, and each event goes
    through mitmproxy's own dispatch (AddonManager.invoke_addon on the script
    module, its addons, their handlers): what the gate adds to each request on
    top of mitmproxy's own work, lookups of the events it does not handle
    included (requestheaders has no handler). Set against the bare proxy's CPU
    per request it predicts the throughput ratio without the noise of a shared
    machine.
    """
    if str(ADDON_DIR) not in sys.path:
        sys.path.insert(0, str(ADDON_DIR))
    import logging

    from mitmproxy import hooks as mhooks
    from mitmproxy import http
    from mitmproxy.addons import proxyserver
    from mitmproxy.proxy.layers.http import (HttpRequestHeadersHook, HttpRequestHook, HttpResponseHeadersHook,
                                             HttpResponseHook)
    from mitmproxy.test import taddons, tflow, tutils

    n = 300 if quick else 1000
    repeats = 2 if quick else 4
    tmp = Path(tempfile.mkdtemp(prefix="authgate-hooks-"))
    config = tmp / "config.yaml"
    events = {"requestheaders": HttpRequestHeadersHook, "request": HttpRequestHook,
              "responseheaders": HttpResponseHeadersHook, "response": HttpResponseHook}

    def flows(key: str, count: int, up_port: int) -> list:
        fields = tuple((k.encode(), v.encode()) for k, v in typical_headers(key, 8045))
        out = []
        for _ in range(count):
            # Reverse mode points the request at the upstream before any hook runs.
            f = tflow.tflow(req=tutils.treq(method=b"POST", path=REQUEST_PATH.encode(), authority=b"",
                                            host=HOST, port=up_port, headers=()))
            f.request.headers.fields = fields
            f.request.content = REQUEST_BODY
            out.append(f)
        return out

    def upstream_response() -> http.Response:
        return tutils.tresp(headers=http.Headers(content_type="application/json",
                                                 content_length=str(len(UPSTREAM_BODY))),
                            content=UPSTREAM_BODY)

    async def measure() -> dict:
        # Nothing connects in-process: the port is only written into upstream.url.
        up_port = 8046
        config.write_text(f"proxy:\n  port: 0\n  auth_mode: strict\n  api_key: {API_KEY}\n"
                          f"upstream:\n  url: http://{HOST}:{up_port}\n")
        result: dict = {}
        with taddons.context(proxyserver.Proxyserver()) as tctx:
            tctx.options.update_defer(auth_config=str(config))  # applied when the script declares it
            gate = tctx.script(str(ADDON))  # the script module, as mitmdump loads it
            if gate is None:
                raise RuntimeError(f"{ADDON} did not load")
            invoke = tctx.master.addons.invoke_addon
            await invoke(gate, events["request"](flows(API_KEY, 1, up_port)[0]))  # warm-up
            best: dict[str, dict[str, float]] = {"allowed": {}, "denied": {}}
            for _ in range(repeats):  # alternating, so a burst of load elsewhere spoils one batch only
                for name, key, status in (("allowed", API_KEY, None), ("denied", WRONG_KEY, 401)):
                    batch = flows(key, n, up_port)
                    times = {}
                    for hook in ("requestheaders", "request", "responseheaders", "response"):
                        if hook == "responseheaders":
                            got = batch[-1].response.status_code if batch[-1].response else None
                            if got != status:
                                raise RuntimeError(f"{name}: request left status {got}, expected {status or 'none'}")
                            if status is None:  # forwarded: the upstream's answer comes back through the gate
                                for f in batch:
                                    f.response = upstream_response()
                        # mitmproxy runs every event on a response the request hook made, too.
                        event = events[hook]
                        t0 = time.process_time_ns()
                        for f in batch:
                            await invoke(gate, event(f))
                        times[hook] = time.process_time_ns() - t0
                    for hook, ns in times.items():
                        best[name][hook] = min(best[name].get(hook, float("inf")), ns / n / 1000)
            await tctx.master.addons.invoke_addon(gate, mhooks.DoneHook())
            for name, hooks in best.items():
                result[name] = {**{f"{k}_us": round(v, 1) for k, v in hooks.items()},
                                "total_us": round(sum(hooks.values()), 1)}
        return result

    # The denial's log line goes to a handler like mitmdump's termlog would; keep it quiet here.
    authlog = logging.getLogger("authgate")
    propagate, authlog.propagate = authlog.propagate, False
    try:
        out = asyncio.run(measure())
    finally:
        authlog.propagate = propagate
        shutil.rmtree(tmp, ignore_errors=True)
    out["flows"] = n
    return out


# ====================================================================== upstream

async def _upstream_main() -> None:
    served = connections = accepted = 0
    ok = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
          + str(len(UPSTREAM_BODY)).encode() + b"\r\n\r\n" + UPSTREAM_BODY)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served, connections, accepted
        accepted += 1
        counted = False  # a connection counts once it carries a request to serve
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, chunked, close = _parse_head(head)
                if chunked:
                    await _read_chunked(reader)
                elif length:
                    await reader.readexactly(length)
                if head.startswith(b"GET " + COUNT_PATH.encode() + b" "):
                    body = json.dumps({"served": served, "connections": connections,
                                       "accepted": accepted}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
                else:
                    served += 1
                    if not counted:
                        counted = True
                        connections += 1
                    writer.write(ok)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        # Stop when the parent goes away (stdin closes), never linger.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def _parse_head(head: bytes) -> tuple[int | None, bool, bool]:
    """(content-length, chunked, connection: close) from a message head."""
    length, chunked, close = None, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    return length, chunked, close


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def upstream_count(port: int) -> tuple[int, int, int]:
    """(requests served, connections that carried them, connections accepted) so far.

    Accepted counts every connection, this count request's included; the
    difference shows connections that never carried a request (probes)."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(f"GET {COUNT_PATH} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    counts = json.loads(data.partition(b"\r\n\r\n")[2])
    return counts["served"], counts["connections"], counts["accepted"]


# ====================================================================== processes

def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this script dies without cleaning up (SIGKILL)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Proc:
    """A child process with its output in a file; stopped by its own PID."""

    def __init__(self, name: str, argv: list[str], logdir: Path, cwd: Path | None = None,
                 stdout_pipe: bool = False):
        self.name = name
        self.argv = argv
        self.log = logdir / f"{name}.log"
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, stdin=subprocess.PIPE, preexec_fn=_die_with_parent,
            stdout=subprocess.PIPE if stdout_pipe else self._logf, stderr=self._logf)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"

    def stop(self) -> None:
        p = self.proc
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for f in (p.stdin, p.stdout):
            if f:
                f.close()
        self._logf.close()


def wait_listening(p: Proc, upstream_url: str) -> int:
    """The port from mitmdump's "reverse proxy to URL listening at HOST:PORT." line."""
    pattern = re.compile(rb"reverse proxy to " + re.escape(upstream_url.encode())
                         + rb"/? listening at \[?[0-9a-fA-F.:]+?\]?:(\d+)\.", re.I)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        ports = [int(m.group(1)) for m in pattern.finditer(p.log.read_bytes())]
        if ports:
            return ports[-1]
        if p.proc.poll() is not None:
            raise BenchError(f"{p.name} exited with status {p.proc.returncode} before listening:\n{p.tail()}")
        time.sleep(0.05)
    raise BenchError(f"{p.name} did not say 'listening at' within {STARTUP_TIMEOUT:.0f} s:\n{p.tail()}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used (Linux /proc), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def log_errors(p: Proc) -> int:
    """Addon errors and tracebacks in a mitmdump's output: each one spoils the figures."""
    try:
        text = p.log.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if "Addon error" in line or line.startswith("Traceback"))


def find_mitmdump() -> str:
    # The one installed beside this Python (skips a pyenv shim's extra exec).
    beside = Path(sys.executable).parent / "mitmdump"
    found = str(beside) if beside.exists() else shutil.which("mitmdump")
    if not found:
        raise BenchError("mitmdump not found: install the requirements (just install)")
    return found


# ====================================================================== load generator

async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, close = _parse_head(head)
    if chunked:
        body = await _read_chunked(reader)
    elif length is not None:
        body = await reader.readexactly(length)
    else:
        body, close = await reader.read(), True
    return status, body, close


async def run_load(port: int, payload: bytes, total: int, concurrency: int, cap: float,
                   expect_status: int, expect_body: bytes | None) -> dict:
    """`total` requests over `concurrency` keep-alive connections, at most `cap` seconds."""
    remaining = total
    latencies: list[float] = []
    statuses: Counter = Counter()
    problems: Counter = Counter()  # unexpected outcomes, by kind

    async def connect():
        return await asyncio.wait_for(asyncio.open_connection(HOST, port), IO_TIMEOUT)

    async def worker(conn) -> None:
        nonlocal remaining
        reader, writer = conn
        try:
            while remaining > 0:
                remaining -= 1
                t0 = time.perf_counter()
                try:
                    writer.write(payload)
                    status, body, close = await asyncio.wait_for(_read_response(reader), IO_TIMEOUT)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                        ValueError) as e:
                    problems[f"connection error: {type(e).__name__}"] += 1
                    writer.close()
                    reader, writer = await connect()
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
                if status != expect_status:
                    problems[f"status {status}"] += 1
                elif expect_body is not None and body != expect_body:
                    problems["200 without the upstream's body"] += 1
                if close:
                    writer.close()
                    reader, writer = await connect()
        finally:
            writer.close()

    conns = await asyncio.gather(*(connect() for _ in range(concurrency)))
    start = time.perf_counter()
    tasks = [asyncio.ensure_future(worker(c)) for c in conns]
    capped = False
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), cap)
    except asyncio.TimeoutError:
        capped = True
    elapsed = time.perf_counter() - start
    done = len(latencies)
    lat = sorted(latencies)

    def pct(q: float) -> float:
        return lat[max(0, math.ceil(q * len(lat)) - 1)] * 1000 if lat else float("nan")

    return {"requests": done, "elapsed_s": round(elapsed, 4), "rps": done / elapsed if elapsed else 0.0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "mean_ms": statistics.fmean(lat) * 1000 if lat else None,
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "problems": dict(problems),
            "capped": capped}


# ====================================================================== throughput

SCENARIOS = [
    # name, label, target (bare|gate|upstream), key, expected status, expect upstream body
    ("bare", "bare mitmdump", "bare", API_KEY, 200, True),
    ("allowed", "gate, allowed", "gate", API_KEY, 200, True),
    ("denied", "gate, denied (401)", "gate", WRONG_KEY, 401, False),
]


def bench_throughput(args, logdir: Path, procs: list[Proc]) -> dict:
    up = Proc("upstream", [sys.executable, str(Path(__file__).resolve()), "--_upstream"], logdir, stdout_pipe=True)
    procs.append(up)
    line = up.proc.stdout.readline().strip()
    if not line.isdigit():
        raise BenchError(f"the bench upstream did not start:\n{up.tail()}")
    up_port = int(line)
    upstream_url = f"http://{HOST}:{up_port}"

    config = logdir / "config.yaml"
    config.write_text("proxy:\n  port: 0\n  allow_lan_access: false\n  auth_mode: strict\n"
                      f"  api_key: {API_KEY}\nupstream:\n  url: {upstream_url}\n")
    mitmdump = find_mitmdump()
    common = ["--set", "flow_detail=0", "--set", "termlog_verbosity=info"]
    bare = Proc("bare-mitmdump", [mitmdump, "--mode", f"reverse:{upstream_url}@{HOST}:0",
                                  "--set", "connection_strategy=lazy", *common], logdir, cwd=REPO)
    procs.append(bare)
    gate = Proc("gate-mitmdump", [mitmdump, "-s", str(ADDON), "--set", f"auth_config={config}",
                                  "--set", "auth_port=0", *common], logdir, cwd=REPO)
    procs.append(gate)
    ports = {"upstream": up_port, "bare": wait_listening(bare, upstream_url),
             "gate": wait_listening(gate, upstream_url)}
    print(f"upstream {upstream_url} · bare mitmdump pid {bare.proc.pid} on :{ports['bare']} · "
          f"gate mitmdump pid {gate.proc.pid} on :{ports['gate']}")

    warmup = max(50, args.requests // 10)
    rounds: list[dict] = []
    problems: Counter = Counter()

    def load(port: int, key: str, n: int, status: int, body: bool) -> dict:
        return asyncio.run(run_load(port, request_bytes(port, key), n, args.concurrency, args.time_cap,
                                    status, UPSTREAM_BODY if body else None))

    # Reference: the upstream alone, to show it is not the bottleneck.
    load(ports["upstream"], API_KEY, warmup, 200, True)
    direct = load(ports["upstream"], API_KEY, args.requests, 200, True)
    problems.update({f"upstream direct: {k}": v for k, v in direct["problems"].items()})

    for r in range(args.rounds):
        order = SCENARIOS[r % len(SCENARIOS):] + SCENARIOS[:r % len(SCENARIOS)]  # rotate to spread drift
        results = {}
        for name, label, target, key, status, body in order:
            port = ports[target]
            proxy = {"bare": bare, "gate": gate}[target]
            before, conns_before, accepted_before = upstream_count(up_port)
            w = load(port, key, warmup, status, body)
            if w["requests"] == 0 or sum(w["problems"].values()) == w["requests"]:
                raise BenchError(f"{label}: the warm-up got no expected answer "
                                 f"(statuses {w['statuses']}, problems {w['problems']}); see {gate.log if target == 'gate' else bare.log}:\n"
                                 f"{(gate if target == 'gate' else bare).tail()}")
            cpu0 = cpu_seconds(proxy.proc.pid)
            res = load(port, key, args.requests, status, body)
            cpu1 = cpu_seconds(proxy.proc.pid)
            # The proxy's own CPU per request: steadier than req/s when other
            # processes share the cores (throughput of a CPU-bound proxy ~ 1/this).
            res["proxy_cpu_us"] = ((cpu1 - cpu0) / res["requests"] * 1e6
                                   if cpu0 is not None and cpu1 is not None and res["requests"] else None)
            served, conns, accepted = upstream_count(up_port)
            reached = served - before
            res["upstream_reached"] = reached
            res["upstream_connections"] = conns - conns_before  # warm-up included
            # Connections that never carried a request (an upstream probe, say); -1: the count request.
            res["upstream_idle_connections"] = accepted - accepted_before - 1 - res["upstream_connections"]
            res["window_requests"] = w["requests"] + res["requests"]  # what the upstream counters cover
            expected_reached = 0 if name == "denied" else w["requests"] + res["requests"]
            if reached != expected_reached:
                res["problems"][f"upstream saw {reached} requests, expected {expected_reached}"] = 1
            for k, v in {**w["problems"], **res["problems"]}.items():
                problems[f"{label}: {k}"] += v
            results[name] = res
            flag = " (time cap hit)" if res["capped"] else ""
            print(f"  round {r + 1}/{args.rounds}  {label:<20} {res['rps']:8.0f} req/s  "
                  f"p50 {res['p50_ms']:6.2f} ms  p99 {res['p99_ms']:6.2f} ms  "
                  f"proxy CPU {_fmt(res['proxy_cpu_us'], '4.0f')} µs/req  "
                  f"upstream: {reached} requests on {res['upstream_connections']} connections"
                  + (f" + {res['upstream_idle_connections']} without a request"
                     if res["upstream_idle_connections"] else "") + flag, flush=True)
        rounds.append(results)

    for p in (bare, gate):
        if p.proc.poll() is not None:
            raise BenchError(f"{p.name} died during the run (status {p.proc.returncode}):\n{p.tail()}")
        if errors := log_errors(p):
            problems[f"{p.name}: {errors} addon errors/tracebacks in its log ({p.log})"] += errors

    summary = {}
    bare_rps = statistics.median(rd["bare"]["rps"] for rd in rounds)
    bare_cpu = _median(rd["bare"]["proxy_cpu_us"] for rd in rounds)
    for name, label, *_ in SCENARIOS:
        rps = statistics.median(rd[name]["rps"] for rd in rounds)
        cpu = _median(rd[name]["proxy_cpu_us"] for rd in rounds)
        per_round_ratio = [rd[name]["rps"] / rd["bare"]["rps"] if rd["bare"]["rps"] else 0.0 for rd in rounds]
        summary[name] = {
            "label": label,
            "rps": round(rps, 1),
            "p50_ms": round(statistics.median(rd[name]["p50_ms"] for rd in rounds), 3),
            "p99_ms": round(statistics.median(rd[name]["p99_ms"] for rd in rounds), 3),
            "ratio_to_bare": round(rps / bare_rps, 3) if bare_rps else 0.0,
            "ratio_per_round": [round(x, 3) for x in per_round_ratio],
            "rps_per_round": [round(rd[name]["rps"], 1) for rd in rounds],
            "proxy_cpu_us_per_request": None if cpu is None else round(cpu, 1),
            # upstream connections that carried no request, per measured request (probes, say)
            "upstream_idle_connections_per_request": round(statistics.median(
                rd[name]["upstream_idle_connections"] / rd[name]["window_requests"]
                if rd[name]["window_requests"] else 0
                for rd in rounds), 3),
            # bare's CPU per request over this one: the throughput ratio a CPU-bound proxy would show
            "cpu_ratio_to_bare": round(bare_cpu / cpu, 3) if cpu and bare_cpu else None,
        }
    summary["upstream_direct"] = {"label": "upstream alone (ref.)", "rps": round(direct["rps"], 1),
                                  "p50_ms": round(direct["p50_ms"], 3), "p99_ms": round(direct["p99_ms"], 3),
                                  "ratio_to_bare": round(direct["rps"] / bare_rps, 3) if bare_rps else 0.0}
    return {"ports": ports, "warmup_requests": warmup, "summary": summary, "rounds": rounds,
            "problems": dict(problems), "capped": any(rd[n]["capped"] for rd in rounds for n in rd),
            "logs": str(logdir)}


# ====================================================================== report

def _median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _fmt(value, spec: str) -> str:
    if value is None:
        return "n/a".rjust(int(re.match(r"\d*", spec).group() or 0))
    return format(value, spec)


def report(dec: dict | None, hooks: dict | None, thr: dict | None) -> dict:
    targets = {}
    if thr:
        s = thr["summary"]
        print()
        print(f"{'scenario':<22} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'vs bare':>8} "
              f"{'CPU µs/req':>11} {'CPU vs bare':>12}   vs bare per round")
        for name in ("bare", "allowed", "denied", "upstream_direct"):
            row = s[name]
            rounds = " ".join(f"{x:.2f}" for x in row.get("ratio_per_round", [])) or "-"
            print(f"{row['label']:<22} {row['rps']:>7.0f} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} "
                  f"{row['ratio_to_bare']:>8.2f} {_fmt(row.get('proxy_cpu_us_per_request'), '11.0f')} "
                  f"{_fmt(row.get('cpu_ratio_to_bare'), '12.2f')}   {rounds}")
        print("(median of the rounds; CPU = the proxy process's own CPU time per request, "
              "CPU vs bare = bare's CPU/request over this one)")
        for name in ("bare", "allowed", "denied"):
            idle = s[name]["upstream_idle_connections_per_request"]
            if idle >= 0.01:
                print(f"note: {s[name]['label']}: {idle:.2f} upstream connections per request carried no request "
                      f"(connect-only, e.g. a reachability probe): each costs the proxy a TCP connect")
        targets["allowed_vs_bare"] = {"target": f">= {TARGET_RATIO} x bare", "value": s["allowed"]["ratio_to_bare"],
                                      "pass": s["allowed"]["ratio_to_bare"] >= TARGET_RATIO}
        targets["denied_faster_than_allowed"] = {
            "target": "denied req/s > allowed req/s",
            "value": round(s["denied"]["rps"] / s["allowed"]["rps"], 3) if s["allowed"]["rps"] else None,
            "pass": s["denied"]["rps"] > s["allowed"]["rps"]}
    if dec:
        print()
        print(f"decision cost (decide() per call, best of repeats; loop overhead {dec['loop_overhead_ns']:.0f} ns removed)")
        for c in dec["cases"]:
            print(f"  {c['case']:<30} {c['decide_ns'] / 1000:6.2f} µs   (+ explain.* for the flow: "
                  f"{_fmt(c['explain_ns'] and c['explain_ns'] / 1000, '6.2f')} µs)")
        if hooks and "error" not in hooks:
            print()
            print("gate hooks per flow (in-process, through mitmproxy's dispatch, taddons, CPU time, best of repeats)")
            bare_cpu = thr and thr["summary"]["bare"].get("proxy_cpu_us_per_request")
            for name in ("allowed", "denied"):
                h = hooks[name]
                parts = ", ".join(f"{k[:-3]} {v:.0f}" for k, v in h.items() if k != "total_us")
                line = f"  {name:<8} {h['total_us']:6.0f} µs  ({parts})"
                if bare_cpu:
                    line += (f"  = {h['total_us'] / bare_cpu:.1%} of bare mitmdump's {bare_cpu:.0f} µs CPU/request"
                             + (f" -> CPU-bound ratio ~{bare_cpu / (bare_cpu + h['total_us']):.2f}"
                                if name == "allowed" else ""))
                print(line)
        targets["decision_cost"] = {"target": f"< {TARGET_DECISION_NS / 1000:.0f} µs (worst case)",
                                    "value_ns": dec["worst_decide_ns"],
                                    "pass": dec["worst_decide_ns"] < TARGET_DECISION_NS}
    print()
    print("targets")
    labels = {"allowed_vs_bare": "allowed path >= 0.95 x bare", "denied_faster_than_allowed":
              "denied path faster than allowed", "decision_cost": "decision < 5 µs per call"}
    for name, t in targets.items():
        value = (f"{t['value_ns'] / 1000:.2f} µs" if "value_ns" in t else f"{t['value']:.3f}")
        print(f"  {'PASS' if t['pass'] else 'MISS'}  {labels[name]:<34} ({value})")
    return targets


# ====================================================================== main

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
    p.add_argument("--_upstream", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.requests is None:
        args.requests = 300 if args.quick else 1200
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    if args.requests < 1 or args.concurrency < 1 or args.rounds < 1 or args.time_cap <= 0:
        p.error("--requests, --concurrency, --rounds and --time-cap must be positive")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args._upstream:
        try:
            asyncio.run(_upstream_main())
        except KeyboardInterrupt:
            pass
        return 0

    # SIGTERM (e.g. a CI timeout) unwinds through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    load_before = loadavg()
    procs: list[Proc] = []
    logdir = Path(tempfile.mkdtemp(prefix="authgate-bench-"))
    dec = thr = hooks = None
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
    targets = report(dec, hooks, thr)
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
        "decision": dec, "addon_hooks": hooks, "throughput": thr, "targets": targets,
        "duration_s": round(time.monotonic() - started, 1),
        "loadavg": {"before": load_before, "after": loadavg()},
    }
    try:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    except OSError as e:
        print(f"bench failed: cannot write {args.json} ({e})", file=sys.stderr)
        return 2
    print(f"\nresults written to {args.json} · {results['duration_s']} s")

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
