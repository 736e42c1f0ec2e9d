"""The figures side by side, and the targets, printed."""

from __future__ import annotations

from .common import TARGET_DECISION_NS, TARGET_RATIO, fmt


def report(dec: dict | None, hooks: dict | None, thr: dict | None, ins: dict | None = None) -> dict:
    targets = {}
    if ins:
        print()
        print(f"instructions per allowed request (callgrind, {ins['requests']} requests after {ins['warmup']})")
        print(f"  {'proxy':<40} {'M/request':>10} {'added':>9} {'vs bare':>8}")
        for v in ins["variants"].values():
            print(f"  {v['label']:<40} {v['instructions_per_request'] / 1e6:>10.3f} "
                  f"{v['added_per_request'] / 1e3:>8.0f}k {v['ratio_to_bare']:>8.3f}")
    if thr:
        s = thr["summary"]
        print()
        print(f"{'scenario':<24} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'vs bare':>8} "
              f"{'CPU µs/req':>11} {'CPU vs bare':>12}   vs bare per round")
        for name in ("bare", "allowed", "denied", "denied_post", "upstream_direct"):
            row = s[name]
            rounds = " ".join(f"{x:.2f}" for x in row.get("ratio_per_round", [])) or "-"
            print(f"{row['label']:<24} {row['rps']:>7.0f} {row['p50_ms']:>7.2f} {row['p99_ms']:>7.2f} "
                  f"{row['ratio_to_bare']:>8.2f} {fmt(row.get('proxy_cpu_us_per_request'), '11.0f')} "
                  f"{fmt(row.get('cpu_ratio_to_bare'), '12.2f')}   {rounds}")
        print("(median of the rounds; CPU = the proxy process's own CPU time per request, "
              "CPU vs bare = bare's CPU/request over this one)")
        for name in ("bare", "allowed", "denied", "denied_post"):
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
                  f"{fmt(c['explain_ns'] and c['explain_ns'] / 1000, '6.2f')} µs)")
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
    if ins:
        gate = ins["variants"]["gate"]["ratio_to_bare"]
        targets["allowed_instructions_vs_bare"] = {"target": f">= {TARGET_RATIO} x bare", "value": gate,
                                                   "pass": gate >= TARGET_RATIO}
    labels = {"allowed_instructions_vs_bare": "allowed instructions >= 0.95 x bare",
              "allowed_vs_bare": "allowed path >= 0.95 x bare", "denied_faster_than_allowed":
              "denied (GET) faster than allowed", "decision_cost": "decision < 5 µs per call"}
    for name, t in targets.items():
        value = (f"{t['value_ns'] / 1000:.2f} µs" if "value_ns" in t else f"{t['value']:.3f}")
        print(f"  {'PASS' if t['pass'] else 'MISS'}  {labels[name]:<36} ({value})")
    return targets
