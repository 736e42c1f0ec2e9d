"""What the agents' live tests share (tests/live/test_agents.py, test_agent_demo.py).

- `agent(name)`: the installed agent (addon/agent_run.py), or the test skipped with the install
  command as its reason; failed instead when AUTHGATE_REQUIRE_AGENTS=1 (CI: .ci/run installs them).
- `AgentGate`: the gate the agents run through: real mitmdump on an ephemeral loopback port,
  strict, KEY, the demo upstream (addon/demo_upstream.py) behind it, each decision logged as JSON
  (addon/decisions_log.py); `run` gives the run with the decisions the gate made on its requests and
  what reached the upstream meanwhile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import pytest

import agent_run
import decisions_log
from live import ADDON, Gate, config_text
from upstreams import Upstream

KEY = "sk-agents0123456789abcdef01234567"
WRONG_KEY = "sk-agentsWRONG9876543210fedcba98"
REQUIRE = "AUTHGATE_REQUIRE_AGENTS"
DECISIONS_LOG = ADDON.with_name("decisions_log.py")


def agent(name: str) -> agent_run.Agent:
    """The agent, if installed here; otherwise skip (or fail under AUTHGATE_REQUIRE_AGENTS=1)."""
    found = agent_run.AGENTS[name]
    if why := found.missing():
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{why}; {REQUIRE}=1 says the agents must be here")
        pytest.skip(why)
    return found


class Outcome(NamedTuple):
    run: agent_run.Run
    decisions: list[dict]  # the gate's, one per request the agent sent during the run
    reached: list[tuple[str, str]]  # (method, path) of what reached the upstream during the run


class AgentGate:
    """A strict gate on KEY with the demo upstream behind it; `explain=False` gives the bare mode
    (the original's empty 401, no x-should-retry). stop() ends both; a context manager too."""

    def __init__(self, root: Path, explain: bool = True) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.log = root / "decisions.jsonl"
        self.upstream = Upstream(echo_only=False)
        config = root / "config.yaml"
        config.write_text(config_text("strict", KEY, self.upstream.url), encoding="utf-8")
        args = ["-s", str(DECISIONS_LOG), "--set", f"decisions_log={self.log}"]
        if not explain:
            args += ["--set", "auth_explain=false"]
        try:
            self.gate = Gate(config, *args)
        except BaseException:
            self.upstream.stop()
            raise
        self.url = self.gate.url

    def decisions(self, skip: int = 0) -> list[dict]:
        return decisions_log.read(self.log, skip)

    def run(self, name: str, setup: agent_run.Setup, timeout: float = agent_run.TIMEOUT) -> Outcome:
        before, reached = len(self.decisions()), len(self.upstream.received)
        result = agent_run.run(agent(name), self.url, setup, timeout=timeout)
        return Outcome(result, decisions_log.settled(self.log, before), list(self.upstream.received)[reached:])

    def stop(self) -> str:
        try:
            return self.gate.stop()
        finally:
            self.upstream.stop()

    def __enter__(self) -> AgentGate:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

