"""Real processes for the tests: the gate under mitmdump/mitmweb.

The one place the tests start mitmdump and mitmweb. Everything listens on 127.0.0.1 with ephemeral
ports, waits for readiness (the "listening at 127.0.0.1:PORT" line), bounds every wait, and cleans up
(use them as context managers or from fixtures).

- `Process`: mitmdump/mitmweb with the arguments given exactly; output collected line by line.
- `Gate`: `mitmdump -s addon/auth.py` (or mitmweb) on a config file, on an ephemeral port.
- `Gates`: starts gates on config texts for a fixture and stops them all at its end.
- `write_config`, `config_text`, `closed_port`, `tool`.

The upstreams behind the gate are in upstreams.py, raw HTTP/1.1 in raw_http.py.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
from mitmproxy import version as mitmproxy_version

from authgate.config.paths import REPO
from raw_http import Reply, send
from upstreams import JOIN_TIMEOUT

ADDON = REPO / "addon" / "auth.py"
START_TIMEOUT = 20.0  # seconds for mitmproxy to say "listening at"
EXIT_TIMEOUT = 20.0  # seconds for a bad start to exit
STOP_TIMEOUT = 10.0  # seconds for terminate, then again for kill
LISTENING = re.compile(r"listening at (\S+):(\d+)\.?\s*$")
WEB_LISTENING = "Web server listening at"
WEB_URL = re.compile(r"Web server listening at (\S+)")
# mitmweb asks for a token (printed in its URL) or web_password since 11.1.2 (CVE-2025-23217).
WEB_HAS_AUTH = tuple(int(x) for x in re.findall(r"\d+", mitmproxy_version.VERSION)[:3]) >= (11, 1, 2)


def tool(name: str) -> str:
    """mitmdump/mitmweb next to this Python, else on PATH."""
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found next to the Python interpreter nor on PATH")
    return found


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_last_mtime = 0


def write_config(path: Path, text: str) -> None:
    """Replace the file atomically (new inode) with a strictly newer mtime, so the addon's
    (mtime_ns, size, inode) stamp changes whatever the filesystem's timestamp granularity."""
    global _last_mtime
    fd, tmp = tempfile.mkstemp(prefix=".cfg-", suffix=".yaml", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    _last_mtime = max(time.time_ns(), _last_mtime + 50_000_000)
    os.utime(tmp, ns=(_last_mtime, _last_mtime))
    os.replace(tmp, path)


def config_text(mode: str = "strict", key: str | None = None, upstream: str | None = None,
                lan: bool = False, port: int = 0, extra: str = "",
                upstream_headers: dict[str, str] | None = None, upstream_timeout: float | None = None) -> str:
    """A config.yaml: proxy (port, allow_lan_access, auth_mode, api_key unless None, `extra` lines),
    then upstream (url, headers, timeout) when an upstream is given."""
    lines = ["proxy:", f"  port: {port}", f"  allow_lan_access: {'true' if lan else 'false'}",
             f"  auth_mode: {mode}"]
    if key is not None:
        lines.append(f'  api_key: "{key}"')
    lines += [line for line in extra.splitlines() if line]
    if upstream is not None:
        lines += ["upstream:", f"  url: {upstream}"]
        if upstream_headers:
            lines.append("  headers:")
            lines += [f'    {name}: "{value}"' for name, value in upstream_headers.items()]
        if upstream_timeout is not None:
            lines.append(f"  timeout: {upstream_timeout}")
    return "\n".join(lines) + "\n"


class Process:
    """mitmdump/mitmweb with the arguments given exactly (script order included); stdout and
    stderr collected line by line by a reader thread. stop() always ends it (terminate, then kill).
    new_session: in a process group of its own, as a terminal's foreground job is (os.killpg)."""

    def __init__(self, tool_name: str, *args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
                 new_session: bool = False) -> None:
        self.tool_name = tool_name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self.host: str | None = None
        self.port: int | None = None  # the proxy's port, once wait_listening() saw it
        self.web_port: int | None = None  # mitmweb's UI port, for who set it
        self.proc = subprocess.Popen([tool(tool_name), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=cwd, start_new_session=new_session,
                                     env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1",
                                          "PYTHONIOENCODING": "utf-8"})
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait(self, ready: Callable[[], object], timeout: float) -> bool:
        """Until ready() holds, the output has ended (the process closed it), or the time is up."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if ready():
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    return bool(ready())
                self._changed.wait(min(left, 0.2))

    def wait_for(self, needle: str | Callable[[str], object], timeout: float = 5.0) -> bool:
        """Until the output holds `needle` (or needle(output) is true); False when it never did."""
        if callable(needle):
            return self._wait(lambda: needle(self.output), timeout)
        return self._wait(lambda: needle in self.output, timeout)

    def _listening(self, skip: int) -> re.Match | None:
        for line in self.lines[skip:]:
            if m := LISTENING.search(line):
                return m
        return None

    def wait_listening(self, skip: int = 0, timeout: float = START_TIMEOUT, web: bool = False) -> Process:
        """Until a "listening at HOST:PORT" line after the first `skip` lines (and with web, mitmweb's
        "Web server listening at" too); sets host and port. Stops the process and fails otherwise."""
        def ready() -> bool:
            return self._listening(skip) is not None and (not web or WEB_LISTENING in self.output)

        if not self._wait(ready, timeout):
            out = self.stop()
            pytest.fail(f"{self.tool_name} did not start listening within {timeout:.0f}s "
                        f"(rc={self.proc.returncode}):\n{out}")
        m = self._listening(skip)
        self.host, self.port = m.group(1), int(m.group(2))
        if web:
            self.web_url = WEB_URL.search(self.output).group(1)
            # mitmweb 11.1.2+ prints its UI's token in the URL; 11.0 has none.
            self.web_token = urllib.parse.parse_qs(urllib.parse.urlsplit(self.web_url).query).get("token", [None])[0]
        return self

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int | None:
        """For a start that must fail: its exit code, or None when it still runs after `timeout`."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.reader.join(JOIN_TIMEOUT)
        return rc

    def stop(self) -> str:
        """Terminate (kill if it hangs), collect the rest of the output; the whole output."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT)
        self.reader.join(JOIN_TIMEOUT)
        self.proc.stdout.close()
        return self.output

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Gate(Process):
    """`mitmdump -s addon/auth.py` (or mitmweb) on `config`, mitmproxy's confdir isolated
    (default: a folder of its own beside the config, so mitmproxy never reads the gate's
    config.yaml as its own options file), on an ephemeral port (auth_port=0) unless port_option=False.
    With wait (the default) it returns once listening: host and port are set."""

    def __init__(self, config: Path, *args: str, confdir: Path | None = None, tool_name: str = "mitmdump",
                 env: dict[str, str] | None = None, wait: bool = True, port_option: bool = True,
                 start_timeout: float = START_TIMEOUT) -> None:
        self.config = config
        cmd = ["-s", str(ADDON), "--set", f"confdir={confdir or config.parent / 'mitmproxy'}", "--set", f"auth_config={config}",
               *args]
        if port_option:  # ephemeral port whatever the file says
            cmd += ["--set", "auth_port=0"]
        super().__init__(tool_name, *cmd, cwd=config.parent, env=env)
        if wait:
            self.wait_listening(timeout=start_timeout)

    def send(self, *args, **kwargs) -> Reply:
        return send(self.port, *args, **kwargs)


class Gates:
    """Starts gates for a fixture, each on its own config file under `root` (or `path`), all in
    one mitmproxy confdir; stops every one of them when the fixture ends (close, or `with`)."""

    def __init__(self, root: Path, confdir: Path) -> None:
        self.root = root
        self.confdir = confdir
        self.started: list[Gate] = []
        self._names = itertools.count()

    def __call__(self, text: str | None, *extra: str, path: Path | None = None, wait: bool = True,
                 port_option: bool = True) -> Gate:
        """A gate on `text` (None: the file at `path` as it is, or missing)."""
        if path is None:
            path = self.root / f"g{next(self._names)}" / "config.yaml"
            path.parent.mkdir()
        if text is not None:
            write_config(path, text)
        gate = Gate(path, *extra, confdir=self.confdir, wait=wait, port_option=port_option)
        self.started.append(gate)
        return gate

    def close(self) -> None:
        for gate in self.started:
            gate.stop()

    def __enter__(self) -> Gates:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
