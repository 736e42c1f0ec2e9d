"""The figures side by side, and the targets, printed."""

from __future__ import annotations

from .common import TARGET_DECISION_NS, TARGET_INSTRUCTIONS, TARGET_RATIO, fmt
from .instructions import ROWS


def report(dec: dict | None, hooks: dict | None, thr: dict | None, ins: dict | None = None) -> dict:
    targets = {}
    if ins:
        instruction_table(ins)
    if thr:
        s = thr["summary"]
        print()
        print()
        print("throughput (secondary: req/s on a shared machine swings from round to round; the spread is shown)")
        print(f"{'scenario':<24} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'vs bare':>8} "
              f"{'CPU µs/req':>11} {'CPU vs bare':>12}   vs bare per round (req/s | CPU)")
        for name in ("bare", "allowed", "denied", "denied_post", "upstream_direct"):
            row = s[name]
            rounds = " ".join(f"{x:.2f}" for x in row.get("ratio_per_round", [])) or "-"
            if cpu_rounds := [x for x in row.get("cpu_ratio_per_round", []) if x]:
                rounds += f" | {min(cpu_rounds):.2f}-{max(cpu_rounds):.2f}"
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
    for key, entry in (ins or {}).get("interpreters", {}).items():
        r = entry["ratios"]
        if "gate_post" in r:
            targets[f"allowed_instructions_{key}"] = {"target": f">= {TARGET_INSTRUCTIONS} x bare",
                                                      "value": r["gate_post"],
                                                      "pass": r["gate_post"] >= TARGET_INSTRUCTIONS}
        if "gate_get_denied" in r:
            targets[f"denied_get_instructions_{key}"] = {"target": ">= 1.0 x bare's allowed GET",
                                                         "value": r["gate_get_denied"],
                                                         "pass": r["gate_get_denied"] >= 1.0}
    labels = {**{f"allowed_instructions_{k}": f"allowed >= {TARGET_INSTRUCTIONS} x bare, instructions, {k}"
                 for k in (ins or {}).get("interpreters", {})},
              **{f"denied_get_instructions_{k}": f"denied GET >= 1.0 x bare GET, instructions, {k}"
                 for k in (ins or {}).get("interpreters", {})},
              "allowed_vs_bare": "allowed path >= 0.95 x bare", "denied_faster_than_allowed":
              "denied (GET) faster than allowed", "decision_cost": "decision < 5 µs per call"}
    for name, t in targets.items():
        value = (f"{t['value_ns'] / 1000:.2f} µs" if "value_ns" in t else f"{t['value']:.3f}")
        print(f"  {'PASS' if t['pass'] else 'MISS'}  {labels[name]:<62} ({value})")
    return targets


def instruction_table(ins: dict) -> None:
    """The headline: instructions per request, every proxy and scenario, one column per Python."""
    entries = ins["interpreters"]
    keys = list(entries)
    print()
    print(f"instructions per request (callgrind, {ins['requests']} requests per scenario after {ins['warmup']}, "
          f"one connection, idle timers taken out; median of {ins['runs']} run(s); ratio = bare / this)")
    print(f"  {'':<30}" + "".join(f" {k:>30}" for k in keys))
    first = entries[keys[0]]["median"]
    compared = [(proxy, scenario, f"{proxy}, {scenario.replace('_', ' ')}", None)
                for proxy in first if proxy.startswith("compare") for scenario in first[proxy]]
    for proxy, scenario, label, _ in ROWS + compared:
        cells = []
        for key in keys:
            value = entries[key]["median"].get(proxy, {}).get(scenario)
            if value is None:
                cells.append(f"{'-':>30}")
                continue
            ratio = entries[key]["ratios"].get(f"{proxy}_{scenario}")
            spread = [r.get(f"{proxy}_{scenario}") for r in entries[key]["ratios_per_run"]]
            text = f"{value / 1e6:.3f}M"
            if ratio is not None:
                text += f"  {ratio:.3f}"
                if len(spread) > 1:
                    text += f" ({min(spread):.3f}-{max(spread):.3f})"
            cells.append(f"{text:>30}")
        print(f"  {label:<30}" + "".join(f" {c}" for c in cells))
    print("  (a denied GET is set against bare's allowed GET, a denied POST against bare's allowed POST;"
          " a denied POST connects again for every request)")
