"""What `just demo`'s lessons share (faq_lesson.py, v4_lesson.py): the gate as a process, the demo
upstream beside it, the walk through a lesson's scenarios and the summary. Each lesson brings its
scenarios, the files it writes, how it reads an answer and its own words."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import demo_upstream

HERE = Path(__file__).resolve().parent


@dataclass
class Gate:
    """mitmdump with the addon, on a free loopback port, its output collected.

    A lesson's subclass writes a scenario's settings (`write`) and sends its request (`send`)."""

    config: Path
    upstream_port: int
    key: str
    port: int = 0
    output: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    extra: tuple[str, ...] = ()  # more mitmdump arguments, after the gate's (a script that watches it, say)

    def start(self) -> None:
        mitmdump = Path(sys.executable).with_name("mitmdump")
        # An explicit --mode pins the listener to loopback on a free port even when a
        # scenario sets allow_lan_access: true (explicit flags win over the file). Not
        # --listen-host: on Python 3.12+ that makes mitmproxy bind its default listener
        # (127.0.0.1:8080) before the gate loads (docs/versions-and-v4.md, "Python and mitmproxy").
        self.proc = subprocess.Popen(
            [str(mitmdump if mitmdump.exists() else "mitmdump"), "-s", str(HERE / "auth.py"),
             "--set", f"auth_config={self.config}",
             "--mode", f"reverse:http://127.0.0.1:{self.upstream_port}@127.0.0.1:0",
             "--set", "flow_detail=0", *self.extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 20
        while not self.port:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("the gate did not start:\n" + "".join(self.output))
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            if m := re.search(r"listening at 127\.0\.0\.1:(\d+)", line):
                self.port = int(m.group(1))

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def get(self, path: str, headers: dict, lang: str) -> tuple[int, dict, bytes]:
        """GET path with these headers (and Accept-Language: lang): status, x-auth-gate read, body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers["Accept-Language"] = lang
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, parse_gate_header(resp.getheader("x-auth-gate", "")), body
        finally:
            conn.close()

    def exchange(self, s, lang: str) -> tuple[tuple, bool]:
        """Scenario s: its settings written, its request sent; the answer and whether s.log was logged."""
        self.write(s)
        seen_lines = len(self.output)
        answer = self.send(s, lang)
        logged = s.log is None or wait_for(lambda: any(s.log in line for line in self.output[seen_lines:]))
        return answer, logged


def parse_gate_header(value: str) -> dict:
    outcome, *pairs = [p.strip() for p in value.split(";")]
    return {"outcome": outcome, **dict(p.split("=", 1) for p in pairs if "=" in p)}


def curl_line(gate: Gate, s) -> str:
    """The curl command of scenario s's request ("$KEY" and the like left for the reader)."""
    return " ".join([f"curl -i http://127.0.0.1:{gate.port}{s.path}"] +
                    [f'-H "{name}: {value}"' for name, value in s.headers])


def wait_for(predicate, timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@contextmanager
def upstream_and_gate(prefix: str, make_gate):
    """The demo upstream on a free port, a temporary folder, and the gate make_gate(folder,
    upstream port) builds, started; all of it stopped and removed after."""
    upstream = demo_upstream.serve("127.0.0.1", 0)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        gate = make_gate(Path(tmp), upstream.server_address[1])
        try:
            gate.start()
            yield gate
        finally:
            gate.stop()
            upstream.shutdown()
            upstream.server_close()


def walk(lesson, scenario, indent: int, out) -> int:
    """Each scenario's row and its lines below; scenario(s) -> (what is wrong, row, lines).
    Returns how many scenarios went wrong."""
    failures = 0
    for s in lesson:
        wrong, row, lines = scenario(s)
        failures += bool(wrong)
        print(f"{'✗' if wrong else '✓'}  " + row, file=out)
        for line in [*lines, *(f"!! {w}" for w in wrong)]:
            print(" " * indent + line, file=out)
    return failures


def summary(total: int, failures: int, ok: str, bad: str, out) -> int:
    """The last line (ok or bad, formatted with ok, total and bad); the exit status."""
    print("\n" + (bad if failures else ok).format(ok=total - failures, total=total, bad=failures), file=out)
    return 1 if failures else 0
