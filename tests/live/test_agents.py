"""Claude Code, Codex CLI and Gemini CLI (the versions package.json pins) through a live gate:
strict, real mitmdump, the demo upstream behind it. Each agent runs non-interactively with a HOME of
its own, telemetry off and only loopback (addon/agent_run.py); skipped without `npm ci`, failed
then under AUTHGATE_REQUIRE_AGENTS=1 (CI).

For each agent: the right key gives the demo's answer (which says no key header reached the
upstream), exit 0; a wrong key exits non-zero within 15 s, nothing reaching the upstream, and where
the agent prints error bodies (Codex, Gemini CLI) its output holds the gate's reason. Claude Code
with both ANTHROPIC_AUTH_TOKEN (wrong) and ANTHROPIC_API_KEY (right) gets the 401 that names the
shadowed x-api-key. The explained 401's x-should-retry: false is what stops Claude Code: against the
bare 401 (auth_explain=false, the original's) it keeps retrying. The figures are printed. Last, the
config files docs/agents.md shows are the ones these runs use.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from agent_checks import KEY, WRONG_KEY, AgentGate
from agent_demo import what_it_printed
from agent_run import AGENTS as RUNNERS
from agent_run import CODEX_KEY_VARIABLE, GEMINI_SETTINGS, PROMPT, Setup, codex_config
from authgate.rules.credentials import fingerprint
from live_fixtures import report

AGENTS = ("claude", "codex", "gemini")
NO_KEY_REACHED = "key headers: none (Authorization, x-api-key, x-goog-api-key absent)"
FAILS_WITHIN = 15.0  # seconds: the bound for a wrong key
DENIED = "Proxy auth (strict) denied this request."
MISMATCH = "does not match proxy.api_key"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "agents.md"


def key_setup(name: str, key: str) -> Setup:
    """The documented way to give each agent the proxy key (docs/agents.md)."""
    if name == "claude":
        return Setup((("ANTHROPIC_API_KEY", key),))
    if name == "codex":
        return Setup(((CODEX_KEY_VARIABLE, key),), (("env_key", json.dumps(CODEX_KEY_VARIABLE)),))
    return Setup((("GEMINI_API_KEY", key),))


# The header each agent puts its key in, as the gate logs it; the paths its one turn calls.
HEADER = {"claude": "x-api-key", "codex": "Authorization", "gemini": "x-goog-api-key"}
PATHS = {"claude": r"/v1/messages\?beta=true", "codex": r"/v1/responses",
         "gemini": r"/v1beta/models/[\w.-]+:(generateContent|streamGenerateContent\?alt=sse)"}


def sent(name: str, key: str) -> dict[str, str]:
    form = f"Bearer {fingerprint(key)}" if HEADER[name] == "Authorization" else fingerprint(key)
    return {HEADER[name]: form}


@pytest.fixture(scope="module")
def through(tmp_path_factory):
    with AgentGate(tmp_path_factory.mktemp("agents-gate")) as g:
        yield g
    assert KEY not in g.gate.output and WRONG_KEY not in g.gate.output, "a key in full in mitmdump's output"


@pytest.mark.parametrize("name", AGENTS)
def test_right_key_gets_the_demo_answer(name, through, capsys):
    run, decisions, reached = through.run(name, key_setup(name, KEY))
    report(capsys, f"agents/{name}", f"right key: exit {run.returncode} in {run.seconds:.1f} s, "
                                     f"{len(decisions)} request(s); printed: {what_it_printed(run.output, KEY)}")
    assert run.returncode == 0, run.output
    assert NO_KEY_REACHED in run.output and f"You said: {PROMPT}" in run.output, run.output
    assert KEY not in run.output
    assert decisions and all(d["status"] == 200 and d["reason"] == "key_ok" and d["winner"] == HEADER[name]
                             and d["sent"] == sent(name, KEY) for d in decisions), decisions
    # Each request the gate passed reached the upstream once, on the agent's own API.
    assert len(reached) == len(decisions), reached
    assert all(re.fullmatch(PATHS[name], path) for _, path in reached), reached
    if name == "gemini":
        # The model router's JSON classification parsed the first time: one call, then the answer.
        assert sum(":generateContent" in path for _, path in reached) == 1, reached


@pytest.mark.parametrize("name", AGENTS)
def test_wrong_key_fails_fast_with_the_gates_reason(name, through, capsys):
    run, decisions, reached = through.run(name, key_setup(name, WRONG_KEY))
    report(capsys, f"agents/{name}", f"wrong key: exit {run.returncode} after {run.seconds:.1f} s, "
                                     f"{len(decisions)} denial(s); printed: {what_it_printed(run.output, KEY)}")
    assert run.returncode not in (0, None), run.output
    assert run.seconds < FAILS_WITHIN, f"{run.seconds:.1f} s: {run.output}"
    assert decisions and all(d["status"] == 401 and d["reason"] == "mismatch" and d["winner"] == HEADER[name]
                             and d["sent"] == sent(name, WRONG_KEY) for d in decisions), decisions
    assert reached == []
    if name == "claude":
        # Claude Code prints no error body, only its own line; it stopped at the first 401.
        assert "Invalid API key" in run.output and len(decisions) == 1, (decisions, run.output)
    else:
        assert DENIED in run.output and MISMATCH in run.output, run.output
    assert WRONG_KEY not in run.output


def test_claude_with_both_variables_gets_the_401_naming_the_shadowed_x_api_key(through, capsys):
    """The FAQ's "I clearly sent x-api-key": ANTHROPIC_AUTH_TOKEN (stale) becomes Authorization,
    which the gate reads first; the right ANTHROPIC_API_KEY in x-api-key is never read."""
    both = Setup((("ANTHROPIC_AUTH_TOKEN", WRONG_KEY), ("ANTHROPIC_API_KEY", KEY)))
    run, decisions, reached = through.run("claude", both)
    report(capsys, "agents/claude", f"both variables: exit {run.returncode} after {run.seconds:.1f} s; "
                                    f"printed: {what_it_printed(run.output, KEY)}")
    assert run.returncode not in (0, None) and run.seconds < FAILS_WITHIN, run.output
    assert reached == []
    assert [(d["status"], d["winner"], d["reason"], d["shadowed"]) for d in decisions] == [
        (401, "Authorization", "mismatch", "x-api-key")], decisions
    assert decisions[0]["sent"] == {"Authorization": f"Bearer {fingerprint(WRONG_KEY)}",
                                    "x-api-key": fingerprint(KEY)}
    line = "401 · strict · Authorization won (x-api-key ignored) · key mismatch · shadowed a correct x-api-key"
    assert through.gate.wait_for(f"{line} — POST /v1/messages"), through.gate.output


def test_claude_keeps_retrying_the_bare_401(tmp_path, capsys):
    """auth_explain=false answers the original's bare 401: no x-should-retry, and Claude Code retries
    with backoff (the issue saw 44 denials in two minutes); with the header it stops at one (above)."""
    watch = 8.0  # seconds: long enough for several retries, short for the suite
    with AgentGate(tmp_path, explain=False) as bare:
        run, decisions, _ = bare.run("claude", key_setup("claude", WRONG_KEY), timeout=watch)
    report(capsys, "agents/claude", f"bare 401 (no x-should-retry): still running at {watch:.0f} s: "
                                    f"{run.timed_out}, {len(decisions)} denials by then")
    assert run.timed_out, f"Claude Code gave up on the bare 401 after {run.seconds:.1f} s: {run.output}"
    assert len(decisions) >= 3 and {d["status"] for d in decisions} == {401}, decisions


def docs_block(section: str, lang: str) -> str:
    """The first ```lang block of docs/agents.md's `## section`."""
    text = DOCS.read_text(encoding="utf-8").split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return text.split(f"```{lang}\n", 1)[1].split("```", 1)[0]


def test_the_docs_show_the_settings_the_agents_run_with(tmp_path):
    gate = "http://127.0.0.1:8045"
    documented = tomllib.loads(docs_block("Codex CLI", "toml"))
    assert documented == tomllib.loads(codex_config(gate, key_setup("codex", KEY).provider))
    assert json.loads(docs_block("Gemini CLI", "json")) == GEMINI_SETTINGS
    exported = dict(re.findall(r"^export (\w+)=(\S+)", docs_block("Claude Code", "bash"), re.M))
    runner_env = RUNNERS["claude"].prepare(tmp_path, gate, Setup())
    assert exported.pop("ANTHROPIC_API_KEY") == '"$KEY"' and exported.pop("ANTHROPIC_BASE_URL") == gate
    assert exported.items() <= runner_env.items(), exported
