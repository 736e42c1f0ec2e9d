"""`just bench` (tests/bench.py and its parts in tests/benchmark/): it runs, checks what it
measures, and refuses options that cannot go together. The figures themselves are never asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import bench
from benchmark import instructions

BENCH = Path(bench.__file__)


def test_a_quick_run_measures_both_proxies_and_writes_its_figures(tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, str(BENCH), "--quick", "--json", str(out)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    for row in ("bare mitmdump", "gate, allowed", "gate, denied GET (401)", "gate, denied POST (401)", "decision cost", "targets"):
        assert row in run.stdout
    results = json.loads(out.read_text())
    summary = results["throughput"]["summary"]
    assert summary["bare"]["rps"] > 0 and summary["allowed"]["ratio_to_bare"] > 0
    assert results["throughput"]["problems"] == {}  # every status and body as expected
    for rnd in results["throughput"]["rounds"]:
        assert rnd["denied"]["upstream_reached"] == rnd["denied_post"]["upstream_reached"] == 0  # never upstream
    assert {"allowed_vs_bare", "denied_faster_than_allowed", "decision_cost"} <= set(results["targets"])


@pytest.mark.parametrize("argv, message", [
    (["--quick", "--compare", "addon/auth.py"], "--compare, --python, --runs and --write-baseline go with --instructions N"),
    (["--instructions", "0", "--runs", "3"], "go with --instructions N"),
    (["--proxies", "bare,nginx"], "--proxies: nginx unknown"),
    (["--instructions", "-1"], "--instructions must be positive"),
    (["--requests", "0"], "must be positive"),
])
def test_options_that_cannot_go_together_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.parse_args(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_another_checkouts_gate_must_be_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(instructions, "available", lambda: None)
    with pytest.raises(SystemExit):
        bench.parse_args(["--instructions", "10", "--compare", str(tmp_path / "nowhere" / "auth.py")])
    assert "is not a file" in capsys.readouterr().err


def test_the_instruction_total_is_read_from_the_dump_after_the_zeroing(tmp_path):
    class Proc:  # what _dumped_total reads of a process
        class proc:
            pid = 4242
        name = "gate-callgrind"
    dumps = tmp_path / "callgrind-gate"
    (tmp_path / "callgrind-gate.4242.1").write_bytes(b"events: Ir\nsummary: 123456789\n")
    (tmp_path / "callgrind-gate.4242.2").write_bytes(b"events: Ir\ntotals: 2670000\n")
    assert instructions._dumped_total(dumps, Proc) == 2670000
    (tmp_path / "callgrind-gate.4242.10").write_bytes(b"events: Ir\n")
    with pytest.raises(bench.BenchError, match="no instruction total"):
        instructions._dumped_total(dumps, Proc)
