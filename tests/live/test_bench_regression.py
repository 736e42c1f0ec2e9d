"""The gate's cost per request does not creep up: instructions per request (callgrind), set
against bare mitmdump's, may fall at most 2% of bare below the figures stored in
tests/benchmark/baseline.json for this Python and mitmproxy.

The count is the bench's own (just bench), with fewer requests (a few minutes under
valgrind): bare mitmdump and the gate, the allowed POST, the denied GET (against bare's
allowed GET) and the denied POST. Instructions do not move with the machine's load, so
the bound holds on a busy CI machine too. The figures are printed."""

import json
import subprocess
import sys

import pytest

import bench
from benchmark import instructions

BASELINE = bench.REPO / "tests" / "benchmark" / "baseline.json"
TOLERANCE = 0.02  # of bare's figure: the bound (runs agree within about 0.5%)
CHECKED = ("gate_post", "gate_get_denied", "gate_post_denied")


def expected(baseline: dict, key: str) -> tuple[dict, str]:
    """This version's stored ratios; for a version without its own, the lowest stored ratio
    of each scenario (any version), said so."""
    versions = baseline["versions"]
    if key in versions:
        return versions[key]["ratios"], key
    lowest = {name: min(v["ratios"][name] for v in versions.values()) for name in CHECKED}
    return lowest, f"no baseline for {key}: the lowest of {', '.join(versions)}"


def test_the_baseline_covers_the_supported_versions_it_was_measured_on():
    baseline = json.loads(BASELINE.read_text())
    assert baseline["tolerance"] == TOLERANCE
    for key, entry in baseline["versions"].items():
        assert set(CHECKED) <= set(entry["ratios"]), key
        assert all(0.5 < r < 1.5 for r in entry["ratios"].values()), key
    assert {"py3.11-mitmproxy11.0.2", "py3.13-mitmproxy12.3.1"} <= set(baseline["versions"])


def test_a_missing_version_is_held_to_the_lowest_stored_figures():
    baseline = {"versions": {"a": {"ratios": {"gate_post": 0.97, "gate_get_denied": 1.01, "gate_post_denied": 0.8}},
                             "b": {"ratios": {"gate_post": 0.98, "gate_get_denied": 1.00, "gate_post_denied": 0.9}}}}
    assert expected(baseline, "a")[0]["gate_post"] == 0.97
    ratios, said = expected(baseline, "c")
    assert ratios == {"gate_post": 0.97, "gate_get_denied": 1.00, "gate_post_denied": 0.8} and "no baseline" in said


@pytest.mark.skipif(instructions.available() is not None, reason=str(instructions.available()))
def test_instructions_per_request_stay_within_2_percent_of_bare_of_the_baseline(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run([sys.executable, str(bench.REPO / "tests" / "bench.py"), "--skip-throughput",
                          "--skip-decision", "--instructions", "80", "--warmup", "40", "--idle", "4",
                          "--proxies", "bare,gate", "--json", str(out)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(out.read_text())["instructions"]["interpreters"]
    measured = next(e for e in results.values() if e["executable"] == sys.executable)
    stored, said = expected(json.loads(BASELINE.read_text()), measured["key"])
    print(f"baseline: {said}")
    worse = {}
    for name in CHECKED:
        got = measured["ratios"][name]
        print(f"  {name:<18} {got:.4f} (baseline {stored[name]:.4f}, bound {stored[name] - TOLERANCE:.4f})")
        if got < stored[name] - TOLERANCE:
            worse[name] = (got, stored[name])
    assert not worse, f"instructions per request regressed by more than {TOLERANCE:.0%} of bare: {worse}"
