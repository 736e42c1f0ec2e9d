"""The FAQ's scenarios with the coding agents people point at the proxy: `just demo --agents`.

    python3 addon/faq_lesson.py --agents [--lang fr]

Starts the gate (strict, a throwaway key) and the demo upstream on free loopback ports, then runs
each installed agent (Claude Code, Codex CLI, Gemini CLI: agent_run.py) once per scenario: the right
key, a wrong one, none, `Bearer<key>` without its space where the agent lets you write the header
yourself, and Claude Code with both of its variables set. A table: the agent, what was set, the key
headers the gate saw (decisions_log.py), the one it read, and the result (status, reason, the
agent's exit, how long it took), with what the agent printed below each row. An agent that is not
installed is skipped, with the command that installs it. Exits 1 if a scenario behaves otherwise
than expected. --lang: one of the FAQ's five languages.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import agent_run
import decisions_log
import lesson_run
from agent_run import CODEX_KEY_VARIABLE, Setup
from authgate.config.settings import generate_key
from authgate.rules.credentials import fingerprint
from authgate.rules.key_headers import KEY_HEADERS
from authgate.words import explain
from faq_lesson import pad  # CJK-aware

HERE = Path(__file__).resolve().parent
OLD_KEY = "sk-old"  # a stale key: the one before a Regenerate
ANSWERED = "key headers: none (Authorization, x-api-key, x-goog-api-key absent)"  # the demo's answer says so
GATE_WORDS = "Proxy auth ("  # how the gate's explained denial begins (English: the agents send no Accept-Language)
INSTALL = "npm ci"


@dataclass(frozen=True)
class Scenario:
    agent: str
    title: str
    setup: Setup  # "$KEY": the proxy key
    reason: str | None  # the gate's reason on each request the agent sends; None: it sends none
    shadowed: str | None = None


def _codex(key_var: bool, *provider: tuple[str, str], env: tuple[tuple[str, str], ...] = ()) -> Setup:
    """Codex's provider table (env_key naming the variable that holds the key, when key_var)."""
    lines = ((("env_key", json.dumps(CODEX_KEY_VARIABLE)),) if key_var else ()) + provider
    return Setup(env, lines)


SCENARIOS = (
    Scenario("claude", "right key in ANTHROPIC_API_KEY", Setup((("ANTHROPIC_API_KEY", "$KEY"),)), "key_ok"),
    Scenario("claude", "right key in ANTHROPIC_AUTH_TOKEN", Setup((("ANTHROPIC_AUTH_TOKEN", "$KEY"),)), "key_ok"),
    Scenario("claude", "wrong key", Setup((("ANTHROPIC_API_KEY", OLD_KEY),)), "mismatch"),
    Scenario("claude", "no key", Setup(), None),
    Scenario("claude", "Bearer<key> without a space, in ANTHROPIC_CUSTOM_HEADERS",
             Setup((("ANTHROPIC_CUSTOM_HEADERS", "Authorization: Bearer$KEY"),)), "bearer_no_space"),
    Scenario("claude", "both variables: ANTHROPIC_AUTH_TOKEN stale, ANTHROPIC_API_KEY right",
             Setup((("ANTHROPIC_AUTH_TOKEN", OLD_KEY), ("ANTHROPIC_API_KEY", "$KEY"))), "mismatch", "x-api-key"),
    Scenario("codex", "right key", _codex(True, env=((CODEX_KEY_VARIABLE, "$KEY"),)), "key_ok"),
    Scenario("codex", "wrong key", _codex(True, env=((CODEX_KEY_VARIABLE, OLD_KEY),)), "mismatch"),
    Scenario("codex", "no key (no env_key in the provider)", _codex(False), "missing"),
    Scenario("codex", "Bearer<key> without a space, in http_headers",
             _codex(False, ("http_headers", '{ Authorization = "Bearer$KEY" }')), "bearer_no_space"),
    Scenario("gemini", "right key", Setup((("GEMINI_API_KEY", "$KEY"),)), "key_ok"),
    Scenario("gemini", "wrong key", Setup((("GEMINI_API_KEY", OLD_KEY),)), "mismatch"),
    Scenario("gemini", "no key", Setup(), None),
    Scenario("gemini", "Bearer<key> without a space, in GEMINI_CLI_CUSTOM_HEADERS",
             Setup((("GEMINI_API_KEY", "$KEY"), ("GEMINI_CLI_CUSTOM_HEADERS", "Authorization: Bearer$KEY"))),
             "bearer_no_space", "x-goog-api-key"),
)

PRINTED = 200  # characters of what the agent printed, under its row


def words(lang: str) -> dict:
    """The demo's own words (the "agent_demo" part of locales/<lang>.json), English where missing."""
    return explain.tool_words("agent_demo", lang)


class Gate(lesson_run.Gate):
    """The gate in strict mode on the throwaway key, its decisions logged beside its config."""

    @property
    def log(self) -> Path:
        return self.config.with_name("decisions.jsonl")

    def write(self) -> None:
        self.config.write_text(f'proxy:\n  auth_mode: strict\n  api_key: "{self.key}"\n'
                               f"upstream:\n  url: http://127.0.0.1:{self.upstream_port}\n", encoding="utf-8")


def make_gate(tmp: Path, upstream_port: int) -> Gate:
    config = tmp / "config.yaml"
    extra = ("--set", f"confdir={tmp / 'mitmproxy'}", "-s", str(HERE / "decisions_log.py"),
             "--set", f"decisions_log={config.with_name('decisions.jsonl')}")
    gate = Gate(config, upstream_port, generate_key(), extra=extra)
    gate.write()
    return gate


def shown(text: str, key: str) -> str:
    """Keys as a reader of the table knows them: $KEY, sk-old (their fingerprints in the log)."""
    for value, name in ((key, "$KEY"), (OLD_KEY, OLD_KEY)):
        text = text.replace(fingerprint(value), name).replace(value, name)
    return text


def headers_sent(decisions: list[dict], key: str, w: dict) -> str:
    sent = {}
    for d in decisions:
        sent.update(d["sent"])
    if not decisions:
        return w["no_request"]
    return ", ".join(f"{name}: {shown(sent[name], key)}" for name in KEY_HEADERS if name in sent) or w["none_sent"]


def what_it_printed(output: str, key: str) -> str:
    """The line that matters to the user: the one with the gate's explanation when the agent printed
    it (from a little before it: Gemini CLI puts a file path first), else its last line."""
    lines = [line.strip().replace(key, "$KEY") for line in output.splitlines() if line.strip()]  # as printed
    line = next((x for x in lines if GATE_WORDS in x), lines[-1] if lines else "")
    if (start := line.find(GATE_WORDS)) > 60:
        line = "…" + line[start - 40:]
    return line if len(line) <= PRINTED else line[:PRINTED - 1] + "…"


def result(s: Scenario, run: agent_run.Run, decisions: list[dict], lang: str, w: dict) -> str:
    """`401 ×6 · key mismatch · exit 1, 6.9 s`, `no request · exit 1, 0.7 s`, ..."""
    cat = explain.CATALOGS[lang]
    parts = []
    if decisions:
        statuses = sorted({str(d["status"]) for d in decisions})
        parts.append("/".join(statuses) + (f" ×{len(decisions)}" if len(decisions) > 1 else ""))
        reason = decisions[-1]["reason"]
        parts.append(cat.reasons[reason].label if reason in cat.reasons else str(reason))
        if shadowed := decisions[-1].get("shadowed"):
            parts.append(cat.phrases["shadowed_label"].format(name=shadowed))
    else:
        parts.append(w["no_request"])
    ended = (w["killed"].format(seconds=run.seconds) if run.timed_out
             else w["exit"].format(code=run.returncode, seconds=run.seconds))
    return " · ".join([*parts, ended])


def check(s: Scenario, run: agent_run.Run, decisions: list[dict], w: dict) -> list[str]:
    wrong = []
    reasons = sorted({d["reason"] for d in decisions})
    if s.reason is None and decisions:
        wrong.append(w["wrong_sent"].format(n=len(decisions)))
    if s.reason is not None and reasons != [s.reason]:
        wrong.append(w["wrong_reason"].format(got=", ".join(reasons) or "-", want=s.reason))
    if s.shadowed and any(d.get("shadowed") != s.shadowed for d in decisions):
        wrong.append(w["wrong_shadowed"].format(name=s.shadowed))
    if run.timed_out:
        wrong.append(w["wrong_timeout"].format(seconds=run.seconds))
    elif s.reason == "key_ok" and (run.returncode != 0 or ANSWERED not in run.output):
        wrong.append(w["wrong_no_answer"].format(code=run.returncode))
    elif s.reason != "key_ok" and run.returncode == 0:
        wrong.append(w["wrong_exit_0"])
    return wrong


def skip_line(agent: agent_run.Agent, w: dict) -> str:
    """Why the agent's rows are not there: not installed (and how to install it), or no node."""
    if not agent.path().exists():
        return w["skipped"].format(agent=agent.title, package=agent.package, install=INSTALL)
    return w["no_node"].format(agent=agent.title)


def widths(scenarios, w: dict) -> tuple[int, ...]:
    """Agent, what was set (the widest setup), headers sent (the widest the scenarios send), header read."""
    set_width = max(len(s.setup.shown()) for s in scenarios) if scenarios else 0
    return 13, max(set_width, len(w["col_set"])) + 2, 49, 16


def table_row(cells: list[str], sizes: tuple[int, ...]) -> str:
    return "".join(pad(cell, width) for cell, width in zip(cells, sizes)) + cells[-1]


def run(lang: str = "en", out=sys.stdout, scenarios=SCENARIOS) -> int:
    w = words(lang)
    missing = {name: agent.missing() for name, agent in agent_run.AGENTS.items()}
    todo = [s for s in scenarios if not missing[s.agent]]
    sizes = widths(todo, w)

    def scenario(s: Scenario) -> tuple[list[str], str, list[str]]:
        agent = agent_run.AGENTS[s.agent]
        skip = len(decisions_log.read(gate.log))
        done = agent_run.run(agent, gate_url, s.setup.filled(gate.key))
        decisions = decisions_log.settled(gate.log, skip)
        wrong = check(s, done, decisions, w)
        winner = decisions[-1]["winner"] if decisions and decisions[-1]["winner"] else "-"
        row = table_row([agent.title, s.setup.shown(), headers_sent(decisions, gate.key, w), winner,
                         result(s, done, decisions, lang, w)], sizes)
        lines = [w["scenario"].format(title=w["titles"].get(s.title, s.title)),
                 w["printed"].format(line=what_it_printed(done.output, gate.key))]
        return wrong, row, lines

    with lesson_run.upstream_and_gate("agent-demo-", make_gate) as gate:
        gate_url = f"http://127.0.0.1:{gate.port}"
        print(w["intro"].format(port=gate.port, upstream=gate.upstream_port, fingerprint=fingerprint(gate.key),
                                old=OLD_KEY) + "\n", file=out)
        for name, why in missing.items():
            if why:
                print(skip_line(agent_run.AGENTS[name], w), file=out)
        if todo:
            print("   " + table_row([w["col_agent"], w["col_set"], w["col_sent"], w["col_read"], w["col_result"]],
                                    sizes), file=out)
        failures = lesson_run.walk(todo, scenario, 3, out)
    if not todo:
        print("\n" + w["summary_none"].format(install=INSTALL), file=out)
        return 0  # nothing behaved otherwise than expected; the lines above say what to install
    skipped = len(scenarios) - len(todo)
    ok, bad = w["summary_ok"], w["summary_bad"]
    if skipped:
        ok, bad = (text + " " + w["summary_skipped"].format(skipped=skipped, install=INSTALL) for text in (ok, bad))
    return lesson_run.summary(len(todo), failures, ok, bad, out)
