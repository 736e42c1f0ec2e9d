"""In-process, without sockets: decide() per call, and the gate's hooks per flow
through mitmproxy's own dispatch (mitmproxy.test.taddons)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import timeit
from pathlib import Path

from .common import (
    ADDON,
    ADDON_DIR,
    API_KEY,
    HOST,
    REQUEST_BODY,
    REQUEST_PATH,
    UPSTREAM_BODY,
    WRONG_KEY,
    BenchError,
    typical_headers,
)


def bench_decision(quick: bool) -> dict:
    if str(ADDON_DIR) not in sys.path:
        sys.path.insert(0, str(ADDON_DIR))
    from authgate.config.read import merge
    from authgate.config.settings import FileConfig, Overrides, parse_upstream
    from authgate.rules.common import RequestView
    from authgate.rules.decide import decide
    from authgate.words import error_bodies, explain

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
        env = {"decide": decide, "view": view, "policy": policy, "d": d, "explain": explain,
               "error_bodies": error_bodies}
        jobs[(name, "decide")] = timer_for("decide(view, policy)", env)
        # What the addon's request hook does with every decision besides decide().
        extra = "explain.detail(d); explain.comment(d)"
        if not d.allowed:
            extra += "; error_bodies.denial_body(d, view.path); error_bodies.www_authenticate(d)"
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
    from mitmproxy.proxy.layers.http import (
        HttpRequestHeadersHook,
        HttpRequestHook,
        HttpResponseHeadersHook,
        HttpResponseHook,
    )
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
