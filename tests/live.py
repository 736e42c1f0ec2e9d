"""Real processes for the tests: the gate under mitmdump/mitmweb, the demo upstream, raw HTTP.

The one place the tests start real processes and servers. Everything listens on 127.0.0.1 with
ephemeral ports, waits for readiness (the "listening at 127.0.0.1:PORT" line), bounds every wait,
and cleans up (use them as context managers or from fixtures).

- `Process`: mitmdump/mitmweb with the arguments given exactly; output collected line by line.
- `Gate`: `mitmdump -s addon/auth.py` (or mitmweb) on a config file, on an ephemeral port.
- `Gates`: starts gates on config texts for a fixture and stops them all at its end.
- `Upstream`: the demo upstream (addon/demo_upstream.py) in a thread.
- `Recorder`: an upstream that records every request exactly as it arrived, and every connection.
- `write_config`, `config_text`, `closed_port`, `tool`; `send` and `Reply`, `request` and
  `raw_exchange` for raw HTTP/1.1.
"""

from __future__ import annotations

import http.client
import itertools
import json
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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mitmproxy import version as mitmproxy_version

import demo_upstream

REPO = Path(__file__).resolve().parent.parent
ADDON = REPO / "addon" / "auth.py"
START_TIMEOUT = 20.0  # seconds for mitmproxy to say "listening at"
EXIT_TIMEOUT = 20.0  # seconds for a bad start to exit
STOP_TIMEOUT = 10.0  # seconds for terminate, then again for kill
JOIN_TIMEOUT = 5.0  # seconds for a reader or server thread to end
IO_TIMEOUT = 10.0  # seconds, every socket call
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


# ====================================================================== processes

class Process:
    """mitmdump/mitmweb with the arguments given exactly (script order included); stdout and
    stderr collected line by line by a reader thread. stop() always ends it (terminate, then kill)."""

    def __init__(self, tool_name: str, *args: str, cwd: Path = REPO, env: dict[str, str] | None = None) -> None:
        self.tool_name = tool_name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self.host: str | None = None
        self.port: int | None = None  # the proxy's port, once wait_listening() saw it
        self.web_port: int | None = None  # mitmweb's UI port, for who set it
        self.proc = subprocess.Popen([tool(tool_name), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, cwd=cwd,
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
    (default: the config's folder), on an ephemeral port (auth_port=0) unless port_option=False.
    With wait (the default) it returns once listening: host and port are set."""

    def __init__(self, config: Path, *args: str, confdir: Path | None = None, tool_name: str = "mitmdump",
                 env: dict[str, str] | None = None, wait: bool = True, port_option: bool = True,
                 start_timeout: float = START_TIMEOUT) -> None:
        self.config = config
        cmd = ["-s", str(ADDON), "--set", f"confdir={confdir or config.parent}", "--set", f"auth_config={config}",
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


# ====================================================================== the demo upstream

class Upstream:
    """The demo upstream in a thread on an ephemeral loopback port (echo_only: every request
    answered with the echo JSON). stop() may be called more than once."""

    def __init__(self, echo_only: bool = True) -> None:
        self.server = demo_upstream.serve("127.0.0.1", 0, echo_only=echo_only)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.received = self.server.received  # (method, path) of each request that reached it
        self.stopped = False
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def stream_record(self, stream_id: str, timeout: float = 5.0) -> dict:
        """When the upstream finished the stream with this id (it records after the last byte)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in list(self.server.streams):
                if rec["id"] == stream_id:
                    return rec
            time.sleep(0.01)
        pytest.fail(f"the demo upstream has no finished stream {stream_id}: {self.server.streams}")

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(JOIN_TIMEOUT)

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Recorder:
    """An upstream that records every request exactly as received (request line, all header pairs,
    body) and every accepted connection, and answers 200 JSON."""

    def __init__(self) -> None:
        recorder = self
        self.requests: list[dict] = []
        self.connections = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    while size := int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16):
                        body += self.rfile.read(size)
                        self.rfile.readline(1024)
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers, then the end
                recorder.requests.append({"line": self.requestline, "method": self.command, "path": self.path,
                                          "headers": list(self.headers.items()), "body": body})
                data = json.dumps({"upstream": "recorder", "path": self.path}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_CONNECT = _answer

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address) -> bool:
                recorder.connections += 1
                return True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def find(self, marker: str) -> list[dict]:
        return [r for r in self.requests if marker in r["path"]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ====================================================================== raw HTTP/1.1

def _b(x: str | bytes) -> bytes:
    return x if isinstance(x, bytes) else x.encode("latin-1")


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    @property
    def message(self) -> str:
        return self.json()["error"]["message"]

    @property
    def gate(self) -> dict:
        return self.json()["auth_gate"]

    @property
    def from_echo(self) -> bool:
        try:
            return self.status == 200 and self.json().get("upstream") == "echo"
        except ValueError:
            return False

    def echo_headers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in self.json()["headers"]:
            out.setdefault(k.lower(), []).append(v)
        return out


def send(port: int, method: str = "GET", target: str = "/v1/models",
         headers: list[tuple[str | bytes, str | bytes]] = (), body: bytes | None = None,
         host: str | None = None) -> Reply:
    """One request on a fresh connection, written byte for byte as given."""
    hdrs = list(headers)
    if host is not None or not any(_b(n).lower() == b"host" for n, _ in hdrs):
        hdrs.insert(0, ("Host", host or f"127.0.0.1:{port}"))
    if body is not None:
        hdrs.append(("Content-Length", str(len(body))))
    hdrs.append(("Connection", "close"))
    raw = _b(f"{method} {target} HTTP/1.1") + b"\r\n"
    raw += b"".join(_b(n) + b": " + _b(v) + b"\r\n" for n, v in hdrs) + b"\r\n" + (body or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(raw)
        resp = http.client.HTTPResponse(sock, method=method)
        try:
            resp.begin()
            data = resp.read()
        finally:
            resp.close()
    return Reply(resp.status, list(resp.getheaders()), data)


def raw_exchange(port: int, data: bytes, timeout: float = IO_TIMEOUT) -> tuple[int | None, dict[str, str], bytes]:
    """Send bytes on a fresh connection; read until the gate closes it (requests say Connection: close).
    -> (status or None when nothing came back, lower-cased headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    if not out.startswith(b"HTTP/"):
        return None, {}, out
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower().decode("latin-1"), value.strip().decode("latin-1"))
    return int(lines[0].split()[1]), headers, body


def request(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes | None = None,
            host: bytes = b"gate.test") -> bytes:
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host]
    lines += [n + b": " + v for n, v in headers]
    if body is not None:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
