"""Real processes for the tests: the gate under mitmdump/mitmweb, the demo upstream.

Everything listens on 127.0.0.1 with ephemeral ports, waits for readiness,
bounds every wait, and cleans up (use them as context managers or fixtures).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import demo_upstream

REPO = Path(__file__).resolve().parent.parent
ADDON = REPO / "addon" / "auth.py"
START_TIMEOUT = 20.0  # seconds for mitmproxy to say "listening at"
STOP_TIMEOUT = 10.0
LISTENING = re.compile(r"listening at 127\.0\.0\.1:(\d+)\.?\s*$")


def tool(name: str) -> str:
    """mitmdump/mitmweb next to this Python, else on PATH."""
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_last_mtime = 0


def write_config(path: Path, text: str) -> None:
    """Replace the file atomically (new inode, strictly newer mtime): the gate sees every edit."""
    global _last_mtime
    fd, tmp = tempfile.mkstemp(prefix=".cfg-", suffix=".yaml", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    _last_mtime = max(time.time_ns(), _last_mtime + 50_000_000)
    os.utime(tmp, ns=(_last_mtime, _last_mtime))
    os.replace(tmp, path)


def config_text(mode: str = "strict", key: str | None = None, upstream: str | None = None,
                lan: bool = False, port: int = 0, extra: str = "") -> str:
    lines = ["proxy:", f"  port: {port}", f"  allow_lan_access: {'true' if lan else 'false'}",
             f"  auth_mode: {mode}"]
    if key is not None:
        lines.append(f'  api_key: "{key}"')
    lines += [line for line in extra.splitlines() if line]
    if upstream is not None:
        lines += ["upstream:", f"  url: {upstream}"]
    return "\n".join(lines) + "\n"


class Upstream:
    """The demo upstream in a thread (echo_only: every request answered with the echo JSON)."""

    def __init__(self, echo_only: bool = True) -> None:
        self.server = demo_upstream.serve("127.0.0.1", 0, echo_only=echo_only)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.received = self.server.received  # (method, path) of each request that reached it
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(STOP_TIMEOUT)

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Gate:
    """`mitmdump -s addon/auth.py` (or mitmweb) on an ephemeral port, its output collected."""

    def __init__(self, config: Path, *args: str, tool_name: str = "mitmdump", env: dict | None = None,
                 wait: bool = True) -> None:
        self.config = config
        self.lines: list[str] = []
        self._ports: queue.Queue[int] = queue.Queue()
        cmd = [tool(tool_name), "-s", str(ADDON), "--set", f"confdir={config.parent}",
               "--set", f"auth_config={config}", "--set", "auth_port=0", *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=config.parent,
                                     env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1",
                                          "PYTHONIOENCODING": "utf-8"})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0
        if wait:
            try:
                self.port = self._ports.get(timeout=START_TIMEOUT)
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"{tool_name} did not listen within {START_TIMEOUT:.0f}s:\n{self.output}")
        self.url = f"http://127.0.0.1:{self.port}"

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            if m := LISTENING.search(line):
                self._ports.put(int(m.group(1)))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return True
            time.sleep(0.02)
        return text in self.output

    def exit_code(self, timeout: float = START_TIMEOUT) -> int:
        """For a start that must fail: its exit code, waited for (bounded)."""
        try:
            return self.proc.wait(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        self._reader.join(STOP_TIMEOUT)

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
