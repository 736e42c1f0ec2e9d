"""`just demo --agents`: the FAQ's scenarios with Claude Code, Codex CLI and Gemini CLI against a live
gate (addon/agent_demo.py). The whole demo from the command line, as `just demo --agents` runs it;
a scenario that behaves otherwise is reported and fails; an agent that is not installed is skipped
with the command that installs it; the words in the FAQ's five languages.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

import agent_demo
import agent_run
from agent_checks import agent
from agent_run import Setup
from authgate.config.paths import REPO
from authgate.words import explain

ROW = re.compile(r"^([✓✗])  (Claude Code|Codex CLI|Gemini CLI)\s{2,}(.+)$")


def rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if ROW.match(line)]


def test_just_demo_agents_walks_every_scenario():
    for name in agent_run.AGENTS:
        agent(name)  # skipped (failed in CI) when one is missing: the demo would skip its rows
    run = subprocess.run([sys.executable, str(REPO / "addon" / "faq_lesson.py"), "--agents"],
                         capture_output=True, text=True, timeout=300)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr
    n = len(agent_demo.SCENARIOS)
    assert out.rstrip().endswith(f"{n} of {n} scenarios behave as expected."), out
    table = rows(out)
    assert len(table) == n and all(row.startswith("✓") for row in table), out
    # The pitfalls, as the gate saw them: the header each agent sent, which one it read, and why it failed.
    both = next(row for row in table if "ANTHROPIC_AUTH_TOKEN=sk-old, ANTHROPIC_API_KEY=$KEY" in row)
    assert "Authorization: Bearer sk-old, x-api-key: $KEY" in both and "shadowed a correct x-api-key" in both
    gemini_glued = next(row for row in table if "GEMINI_CLI_CUSTOM_HEADERS=Authorization: Bearer$KEY" in row)
    assert "no space after Bearer · shadowed a correct x-goog-api-key" in gemini_glued
    codex_wrong = next(row for row in table if row.startswith("✓  Codex CLI") and "=sk-old" in row)
    assert re.search(r"401 ×\d+ · key mismatch · exit 1", codex_wrong), codex_wrong  # it retries: the count shows
    assert "printed: Not logged in · Please run /login" in out  # Claude Code's words for a 401 without a key read
    assert "Proxy auth (strict) denied this request." in out  # Codex and Gemini CLI print the gate's reason
    assert not re.search(r"sk-(?!old|…)[\w-]{6,}", out), "a key in full in the demo's output"


def test_a_scenario_that_behaves_otherwise_is_reported_and_fails():
    agent("claude")
    wrong = agent_demo.Scenario("claude", "deliberately wrong expectation",
                                Setup((("ANTHROPIC_API_KEY", "$KEY"),)), "mismatch")
    out = io.StringIO()
    assert agent_demo.run("en", out, scenarios=(wrong,)) == 1
    text = out.getvalue()
    assert "!! the gate's reason key_ok, expected mismatch" in text and "!! exit 0; expected a failure" in text
    assert "0 of 1 scenarios behave as expected; 1 do not." in text


def test_a_missing_agent_is_skipped_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(agent_run, "NODE_BIN", tmp_path)  # nothing installed there
    out = io.StringIO()
    assert agent_demo.run("en", out) == 0
    text = out.getvalue()
    for a in agent_run.AGENTS.values():
        assert f"{a.title} ({a.package}) is not installed: skipped. Install it with `npm ci` at the repository root." \
            in text
    assert rows(text) == [] and "No agent is installed: run `npm ci`" in text


@pytest.mark.parametrize("lang", [lang for lang in explain.LANGUAGES if lang != "en"])
def test_every_word_and_title_is_translated(lang):
    en, other = agent_demo.words("en"), explain._part("agent_demo", lang)
    assert set(other) == set(en)
    assert set(other["titles"]) == {s.title for s in agent_demo.SCENARIOS}
    for name, text in en.items():
        if name != "titles":
            assert set(re.findall(r"{(\w+)", other[name])) == set(re.findall(r"{(\w+)", text)), name


def test_the_demo_in_japanese():
    agent("claude")
    right = next(s for s in agent_demo.SCENARIOS if s.title == "right key in ANTHROPIC_API_KEY")
    out = io.StringIO()
    assert agent_demo.run("ja", out, scenarios=(right,)) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("コーディングエージェントで FAQ のシナリオ")
    assert lines[2].split()[:3] == ["エージェント", "設定した内容", "送られた"]
    assert lines[3].startswith("✓  Claude Code") and "200 · key 一致 · 終了コード 0、" in lines[3]
    assert lines[4].strip() == "シナリオ：ANTHROPIC_API_KEY に正しい key"
    assert lines[-1] == "1 件中 1 件のシナリオが想定どおりに動作しました。"
