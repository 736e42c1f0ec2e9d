"""The load generator (stdlib asyncio keep-alive connections) and the throughput
scenarios: bare mitmdump, the gate allowing, the gate denying, interleaved in rounds."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import Counter
from pathlib import Path

from .common import (
    ADDON,
    API_KEY,
    HOST,
    IO_TIMEOUT,
    UPSTREAM_BODY,
    WRONG_KEY,
    BenchError,
    fmt,
    median,
    parse_head,
    read_chunked,
    request_bytes,
)
from .processes import (
    Proc,
    bare_args,
    cpu_seconds,
    find_mitmdump,
    gate_args,
    log_errors,
    start_mitmdump,
    wait_listening,
)
from .upstream import start_upstream, upstream_count


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, close = parse_head(head)
    if chunked:
        body = await read_chunked(reader)
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


SCENARIOS = [
    # name, label, target (bare|gate|upstream), key, expected status, expect upstream body, method
    ("bare", "bare mitmdump", "bare", API_KEY, 200, True, "POST"),
    ("allowed", "gate, allowed", "gate", API_KEY, 200, True, "POST"),
    # A denial answered at the headers keeps a connection whose request has no body...
    ("denied", "gate, denied GET (401)", "gate", WRONG_KEY, 401, False, "GET"),
    # ...and closes one whose body was never read (as hyper does), so this client connects again.
    ("denied_post", "gate, denied POST (401)", "gate", WRONG_KEY, 401, False, "POST"),
]
DENIED = ("denied", "denied_post")


def bench_throughput(args, logdir: Path, procs: list[Proc]) -> dict:
    up_port = start_upstream(logdir, procs)
    upstream_url = f"http://{HOST}:{up_port}"
    mitmdump = [find_mitmdump()]
    bare = start_mitmdump("bare-mitmdump", mitmdump, bare_args(upstream_url), logdir, procs)
    gate = start_mitmdump("gate-mitmdump", mitmdump, gate_args(ADDON, upstream_url, logdir), logdir, procs)
    ports = {"upstream": up_port, "bare": wait_listening(bare, upstream_url),
             "gate": wait_listening(gate, upstream_url)}
    print(f"upstream {upstream_url} · bare mitmdump pid {bare.proc.pid} on :{ports['bare']} · "
          f"gate mitmdump pid {gate.proc.pid} on :{ports['gate']}")

    warmup = max(50, args.requests // 10)
    rounds: list[dict] = []
    problems: Counter = Counter()

    def load(port: int, key: str, n: int, status: int, body: bool, method: str = "POST") -> dict:
        return asyncio.run(run_load(port, request_bytes(port, key, method), n, args.concurrency, args.time_cap,
                                    status, UPSTREAM_BODY if body else None))

    # Reference: the upstream alone, to show it is not the bottleneck.
    load(ports["upstream"], API_KEY, warmup, 200, True)
    direct = load(ports["upstream"], API_KEY, args.requests, 200, True)
    problems.update({f"upstream direct: {k}": v for k, v in direct["problems"].items()})

    for r in range(args.rounds):
        order = SCENARIOS[r % len(SCENARIOS):] + SCENARIOS[:r % len(SCENARIOS)]  # rotate to spread drift
        results = {}
        for name, label, target, key, status, body, method in order:
            port = ports[target]
            proxy = {"bare": bare, "gate": gate}[target]
            before, conns_before, accepted_before = upstream_count(up_port)
            w = load(port, key, warmup, status, body, method)
            if w["requests"] == 0 or sum(w["problems"].values()) == w["requests"]:
                raise BenchError(f"{label}: the warm-up got no expected answer "
                                 f"(statuses {w['statuses']}, problems {w['problems']}); see {gate.log if target == 'gate' else bare.log}:\n"
                                 f"{(gate if target == 'gate' else bare).tail()}")
            cpu0 = cpu_seconds(proxy.proc.pid)
            res = load(port, key, args.requests, status, body, method)
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
            expected_reached = 0 if name in DENIED else w["requests"] + res["requests"]
            if reached != expected_reached:
                res["problems"][f"upstream saw {reached} requests, expected {expected_reached}"] = 1
            for k, v in {**w["problems"], **res["problems"]}.items():
                problems[f"{label}: {k}"] += v
            results[name] = res
            flag = " (time cap hit)" if res["capped"] else ""
            print(f"  round {r + 1}/{args.rounds}  {label:<24} {res['rps']:8.0f} req/s  "
                  f"p50 {res['p50_ms']:6.2f} ms  p99 {res['p99_ms']:6.2f} ms  "
                  f"proxy CPU {fmt(res['proxy_cpu_us'], '4.0f')} µs/req  "
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
    bare_cpu = median(rd["bare"]["proxy_cpu_us"] for rd in rounds)
    for name, label, *_ in SCENARIOS:
        rps = statistics.median(rd[name]["rps"] for rd in rounds)
        cpu = median(rd[name]["proxy_cpu_us"] for rd in rounds)
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
            "cpu_ratio_per_round": [round(rd["bare"]["proxy_cpu_us"] / rd[name]["proxy_cpu_us"], 3)
                                    if rd[name]["proxy_cpu_us"] and rd["bare"]["proxy_cpu_us"] else None
                                    for rd in rounds],
        }
    summary["upstream_direct"] = {"label": "upstream alone (ref.)", "rps": round(direct["rps"], 1),
                                  "p50_ms": round(direct["p50_ms"], 3), "p99_ms": round(direct["p99_ms"], 3),
                                  "ratio_to_bare": round(direct["rps"] / bare_rps, 3) if bare_rps else 0.0}
    return {"ports": ports, "warmup_requests": warmup, "summary": summary, "rounds": rounds,
            "problems": dict(problems), "capped": any(rd[n]["capped"] for rd in rounds for n in rd),
            "logs": str(logdir)}
