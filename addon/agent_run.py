"""The coding agents people point at the proxy, each run once as a user runs it: Claude Code
(`claude -p`), Codex CLI (`codex exec`) and Gemini CLI (`gemini -p`), the versions package.json
pins, installed at the repository root by `npm ci` (node_modules/.bin).

One run = one prompt, non-interactive, against a base URL (the gate), with what the user set
(a `Setup`: environment variables, and for Codex the lines of its provider table). Each run gets:

- a HOME of its own (XDG dirs and TMPDIR under it), where its config files are written, so the
  user's own settings, logins and sessions are neither read nor touched;
- an environment built from nothing but PATH, that HOME and the setup: no proxy variable, no key
  or base URL of the user's, so it reaches only the loopback address it is given;
- telemetry, auto-update and other non-essential traffic off, each by the agent's own setting
  (seen with strace: no DNS lookup, no connection but to 127.0.0.1);
- nothing to answer: stdin closed, print/exec mode (no trust dialog, login screen or onboarding);
- a time limit, then its whole process group killed (Gemini CLI relaunches itself, Codex runs
  helpers); the group is also killed after a normal exit, so nothing outlives the run.

Used by `just demo --agents` (agent_demo.py) and tests/live/test_agents.py. docs/agents.md says
the same settings for a person.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from authgate.config.paths import REPO

NODE_BIN = REPO / "node_modules" / ".bin"
INSTALL = "npm ci (at the repository root: package.json and package-lock.json pin the agents)"
PROMPT = "Say hi through the gate"
TIMEOUT = 60.0  # seconds before a run is killed (a right key answers in a few)
KILL_GRACE = 3.0  # seconds between SIGTERM and SIGKILL to the process group
# Codex CLI's provider for the gate, and the variable its env_key names (docs/agents.md).
CODEX_PROVIDER = "antigravity"
CODEX_KEY_VARIABLE = "ANTIGRAVITY_API_KEY"


@dataclass(frozen=True)
class Setup:
    """What the user set for a run: environment variables, and (Codex) keys of its provider
    table as TOML (`env_key = "ANTIGRAVITY_API_KEY"`). "$KEY" in a value stands for the proxy key
    until `filled` puts it in."""

    env: tuple[tuple[str, str], ...] = ()
    provider: tuple[tuple[str, str], ...] = ()

    def filled(self, key: str) -> Setup:
        return Setup(tuple((n, v.replace("$KEY", key)) for n, v in self.env),
                     tuple((n, v.replace("$KEY", key)) for n, v in self.provider))

    def shown(self) -> str:
        """In one line: `ANTHROPIC_API_KEY=$KEY`, `ANTIGRAVITY_API_KEY=$KEY, env_key="ANTIGRAVITY_API_KEY"`."""
        return ", ".join(f"{name}={value}" for name, value in (*self.env, *self.provider)) or "-"


@dataclass
class Run:
    """How one run ended: its exit code (None when it was killed at the time limit), how long it
    took, and everything it printed (stdout and stderr, in order)."""

    agent: str
    returncode: int | None
    seconds: float
    output: str

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


@dataclass(frozen=True)
class Agent(ABC):
    name: str  # claude | codex | gemini
    title: str  # as its makers write it
    package: str  # its npm package
    binary: str  # its command in node_modules/.bin

    def path(self) -> Path:
        return NODE_BIN / self.binary

    def missing(self) -> str | None:
        """Why it cannot run here (not installed, no node), or None."""
        if not self.path().exists():
            return f"{self.title} ({self.package}) is not installed: run {INSTALL}"
        if self.name != "claude" and not shutil.which("node"):  # claude is a native binary
            return f"{self.title} needs node on PATH (node 20 or newer)"
        return None

    @abstractmethod
    def argv(self, prompt: str) -> list[str]:
        """The command line of one non-interactive run."""

    @abstractmethod
    def prepare(self, home: Path, base_url: str, setup: Setup) -> dict[str, str]:
        """Write its config files under `home`; the environment variables it needs."""


class ClaudeCode(Agent):
    def argv(self, prompt: str) -> list[str]:
        return [str(self.path()), "-p", prompt]  # print mode: one answer, no trust dialog, no onboarding

    def prepare(self, home: Path, base_url: str, setup: Setup) -> dict[str, str]:
        return {
            "ANTHROPIC_BASE_URL": base_url,
            # One switch for auto-update, telemetry (Statsig), error reporting (Sentry), /bug, and
            # the rest of what is not the API; the three it covers also set for who greps for them.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
        }


class CodexCLI(Agent):
    def argv(self, prompt: str) -> list[str]:
        # exec: one turn, approvals never asked; outside a git repository it needs the flag;
        # --ephemeral keeps no session files.
        return [str(self.path()), "exec", "--skip-git-repo-check", "--ephemeral", "--color", "never", prompt]

    def prepare(self, home: Path, base_url: str, setup: Setup) -> dict[str, str]:
        codex_home = home / ".codex"
        codex_home.mkdir(parents=True, exist_ok=True)
        (codex_home / "config.toml").write_text(codex_config(base_url, setup.provider), encoding="utf-8")
        return {"CODEX_HOME": str(codex_home)}


def codex_config(base_url: str, provider: tuple[tuple[str, str], ...]) -> str:
    """Codex's config.toml: the gate as a Responses API provider; no update check, analytics,
    feedback upload, history file, web search, or plugin and app sync (the git ls-remote to github.com
    and the calls to chatgpt.com that Codex 0.171 makes at start)."""
    lines = [
        'model = "demo-gpt"',
        f'model_provider = "{CODEX_PROVIDER}"',
        "check_for_update_on_startup = false",
        'web_search = "disabled"',
        "", "[analytics]", "enabled = false",
        "", "[feedback]", "enabled = false",
        "", "[history]", 'persistence = "none"',
        "", "[features]", "plugins = false", "remote_plugin = false", "apps = false",
        "", f"[model_providers.{CODEX_PROVIDER}]",
        'name = "Antigravity proxy (auth gate)"',
        f"base_url = {json.dumps(base_url + '/v1')}",
        'wire_api = "responses"',
        *(f"{name} = {value}" for name, value in provider),
    ]
    return "\n".join(lines) + "\n"


class GeminiCLI(Agent):
    def argv(self, prompt: str) -> list[str]:
        return [str(self.path()), "-p", prompt]  # non-interactive: one answer

    def prepare(self, home: Path, base_url: str, setup: Setup) -> dict[str, str]:
        settings = home / ".gemini" / "settings.json"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(json.dumps(GEMINI_SETTINGS, indent=2) + "\n", encoding="utf-8")
        return {"GOOGLE_GEMINI_BASE_URL": base_url}


# Gemini CLI's ~/.gemini/settings.json: the API-key sign-in chosen (without it, a base URL makes
# 0.61 pick its "gateway" sign-in, which -p refuses: "Invalid auth method selected"); no usage
# statistics, telemetry or update check; no folder-trust prompt.
GEMINI_SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
}

AGENTS = {
    "claude": ClaudeCode("claude", "Claude Code", "@anthropic-ai/claude-code", "claude"),
    "codex": CodexCLI("codex", "Codex CLI", "@openai/codex", "codex"),
    "gemini": GeminiCLI("gemini", "Gemini CLI", "@google/gemini-cli", "gemini"),
}


def base_env(home: Path) -> dict[str, str]:
    """What every run starts from: PATH (the installed agents first), its own HOME, XDG dirs and
    TMPDIR (Gemini CLI writes error reports there), plain output, and no proxy for loopback."""
    dirs = {"XDG_CONFIG_HOME": ".config", "XDG_CACHE_HOME": ".cache", "XDG_DATA_HOME": ".local/share",
            "XDG_STATE_HOME": ".local/state", "TMPDIR": "tmp"}
    env = {name: str(home / sub) for name, sub in dirs.items()}
    for path in env.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    return {**env, "HOME": str(home), "PATH": os.pathsep.join([str(NODE_BIN), os.environ.get("PATH", os.defpath)]),
            "LANG": "C.UTF-8", "TERM": "dumb", "NO_COLOR": "1", "NO_PROXY": "127.0.0.1,localhost,::1",
            "no_proxy": "127.0.0.1,localhost,::1"}


def run(agent: Agent, base_url: str, setup: Setup, prompt: str = PROMPT, timeout: float = TIMEOUT) -> Run:
    """One run of `agent` against `base_url` with `setup` (filled: real values), in a HOME of its own."""
    with tempfile.TemporaryDirectory(prefix=f"agent-{agent.name}-", ignore_cleanup_errors=True) as tmp:
        home = Path(tmp)
        (home / "work").mkdir()
        env = {**base_env(home), **agent.prepare(home, base_url, setup), **dict(setup.env)}
        started = time.monotonic()
        proc = subprocess.Popen(agent.argv(prompt), cwd=home / "work", env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = proc.poll()  # None: still running at the limit (not a child holding the output open)
            kill_group(proc)
            out, _ = proc.communicate()
        finally:
            kill_group(proc)
        seconds = time.monotonic() - started
    return Run(agent.name, code, seconds, out.decode("utf-8", "replace"))


def kill_group(proc: subprocess.Popen) -> None:
    """End the run's process group: SIGTERM, then SIGKILL for what is left after KILL_GRACE."""
    for sig, grace in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return  # the group is empty
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            proc.poll()  # reap the leader, or the group never looks empty
            time.sleep(0.05)
