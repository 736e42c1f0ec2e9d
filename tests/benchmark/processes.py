"""The bench's child processes (the upstream, bare mitmdump, mitmdump with the
gate): started, waited for, measured from /proc, stopped."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .common import API_KEY, HOST, REPO, STARTUP_TIMEOUT, BenchError


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if this script dies without cleaning up (SIGKILL)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Proc:
    """A child process with its output in a file; stopped by its own PID."""

    def __init__(self, name: str, argv: list[str], logdir: Path, cwd: Path | None = None,
                 stdout_pipe: bool = False, env: dict | None = None):
        self.name = name
        self.argv = argv
        self.log = logdir / f"{name}.log"
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.PIPE, preexec_fn=_die_with_parent,
            stdout=subprocess.PIPE if stdout_pipe else self._logf, stderr=self._logf)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join("    " + line for line in text[-lines:]) or "    (empty log)"

    def stop(self) -> None:
        p = self.proc
        if p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        for f in (p.stdin, p.stdout):
            if f:
                f.close()
        self._logf.close()


def wait_listening(p: Proc, upstream_url: str, timeout: float = STARTUP_TIMEOUT) -> int:
    """The port from mitmdump's "reverse proxy to URL listening at HOST:PORT." line."""
    pattern = re.compile(rb"reverse proxy to " + re.escape(upstream_url.encode())
                         + rb"/? listening at \[?[0-9a-fA-F.:]+?\]?:(\d+)\.", re.I)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ports = [int(m.group(1)) for m in pattern.finditer(p.log.read_bytes())]
        if ports:
            return ports[-1]
        if p.proc.poll() is not None:
            raise BenchError(f"{p.name} exited with status {p.proc.returncode} before listening:\n{p.tail()}")
        time.sleep(0.05)
    raise BenchError(f"{p.name} did not say 'listening at' within {timeout:.0f} s:\n{p.tail()}")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used (Linux /proc), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def log_errors(p: Proc) -> int:
    """Addon errors and tracebacks in a mitmdump's output: each one spoils the figures."""
    try:
        text = p.log.read_text(errors="replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if "Addon error" in line or line.startswith("Traceback"))


def find_mitmdump() -> str:
    # The one installed beside this Python (skips a pyenv shim's extra exec).
    beside = Path(sys.executable).parent / "mitmdump"
    found = str(beside) if beside.exists() else shutil.which("mitmdump")
    if not found:
        raise BenchError("mitmdump not found: install the requirements (just install)")
    return found


MITMDUMP_COMMON = ("--set", "flow_detail=0", "--set", "termlog_verbosity=info")


def bare_args(upstream_url: str) -> list[str]:
    """Bare mitmdump in reverse mode to the upstream."""
    return ["--mode", f"reverse:{upstream_url}@{HOST}:0", "--set", "connection_strategy=lazy", *MITMDUMP_COMMON]


def gate_args(addon: Path, upstream_url: str, logdir: Path) -> list[str]:
    """mitmdump with the gate (strict mode, the bench's key) to the same upstream; its own config file."""
    config = logdir / f"config-{abs(hash(str(addon)))}.yaml"
    config.write_text("proxy:\n  port: 0\n  allow_lan_access: false\n  auth_mode: strict\n"
                      f"  api_key: {API_KEY}\nupstream:\n  url: {upstream_url}\n")
    return ["-s", str(addon), "--set", f"auth_config={config}", "--set", "auth_port=0", *MITMDUMP_COMMON]


def start_mitmdump(name: str, prefix: list[str], args: list[str], logdir: Path, procs: list[Proc],
                   env: dict | None = None) -> Proc:
    """Start `prefix + args` (prefix: mitmdump, or mitmdump under valgrind) and keep it in `procs`."""
    p = Proc(name, [*prefix, *args], logdir, cwd=REPO, env=env)
    procs.append(p)
    return p
