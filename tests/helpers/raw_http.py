"""Raw HTTP/1.1 on a socket, for the live tests: requests written byte for byte, answers read as
they come (a response, or how the connection ended instead). Everything on 127.0.0.1, every socket
call bounded by a timeout.

- `send` and `Reply`: one request on a fresh connection through http.client's reader.
- `request`, `request_bytes`: a request's bytes (Host first, or as given).
- `talk`: bytes in, every byte back until the gate closes, and the time to the first one;
  `raw_exchange`: the same, read as (status, headers, body).
- `exchange` and `Answer`: one response read off a fresh connection, or how it ended;
  `read_response`: one response off a buffered reader (a kept-alive connection).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from dataclasses import dataclass, field

IO_TIMEOUT = 10.0  # seconds, every socket call


def _b(x: str | bytes) -> bytes:
    return x if isinstance(x, bytes) else x.encode("latin-1")


# ====================================================================== send: one request, http.client's reader

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


# ====================================================================== a request's bytes

def request(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes | None = None,
            host: bytes = b"gate.test") -> bytes:
    """Host first, the headers, Content-Length for a body, Connection: close."""
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host]
    lines += [n + b": " + v for n, v in headers]
    if body is not None:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def request_bytes(method: str, target: str, headers: list[tuple[bytes, bytes]], body: bytes | None = None,
                  close: bool = True) -> bytes:
    """The headers exactly as given (Host among them, or not), Content-Length for a body unless given."""
    head = [f"{method} {target} HTTP/1.1".encode()] + [n + b": " + v for n, v in headers]
    if body is not None and not any(n.lower() == b"content-length" for n, _ in headers):
        head.append(b"Content-Length: " + str(len(body)).encode())
    if close:
        head.append(b"Connection: close")
    return b"\r\n".join(head) + b"\r\n\r\n" + (body or b"")


# ====================================================================== talk: every byte until the gate closes

def talk(port: int, data: bytes, timeout: float = IO_TIMEOUT, then: bytes = b"",
         pause: float = 0.0) -> tuple[bytes, float]:
    """Send `data` on a fresh connection, then (after `pause` seconds) `then` if the gate still takes
    it; read until the gate closes the connection or `timeout` passes, our side left open.
    -> (every byte that came back, seconds from sending to the first one: inf when none came)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        t0 = time.monotonic()
        sock.sendall(data)
        if then:
            time.sleep(pause)
            try:
                sock.sendall(then)
            except OSError:
                pass  # the gate answered and closed first: what it said is read below
        out, first = b"", None
        try:
            while chunk := sock.recv(65536):
                first = first if first is not None else time.monotonic() - t0
                out += chunk
        except OSError:  # a reset, or the timeout
            pass
    return out, first if first is not None else float("inf")


def raw_exchange(port: int, data: bytes, timeout: float = IO_TIMEOUT, then: bytes = b"",
                 pause: float = 0.0) -> tuple[int | None, dict[str, str], bytes]:
    """talk(), the answer read (requests say Connection: close).
    -> (status or None when nothing came back, lower-cased headers, body)."""
    out, _ = talk(port, data, timeout, then, pause)
    if not out.startswith(b"HTTP/"):
        return None, {}, out
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower().decode("latin-1"), value.strip().decode("latin-1"))
    return int(lines[0].split()[1]), headers, body


# ====================================================================== exchange: one response, or how it ended

@dataclass
class Answer:
    """What came back on one connection: a response, or how the connection ended instead."""

    status: int | None = None  # None: no response at all
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names, first value
    body: bytes = b""
    ended: str = ""  # "closed", "reset", "timeout" when there was no response
    elapsed: float = 0.0

    def describe(self) -> str:
        if self.status is None:
            return f"no response ({self.ended} after {self.elapsed:.2f}s)"
        ctype = self.headers.get("content-type", "-")
        return f"{self.status} {ctype} {self.body[:160]!r}"

    def json(self):
        return json.loads(self.body)


def read_response(rfile, method: str) -> Answer:
    """One HTTP/1.1 response from a buffered reader (Content-Length, chunked, or until close)."""
    line = rfile.readline(65537)
    if not line:
        raise ConnectionError("connection closed before a status line")
    parts = line.split(b" ", 2)
    status = int(parts[1])
    headers: dict[str, str] = {}
    while True:
        h = rfile.readline(65537)
        if h in (b"\r\n", b"\n", b""):
            break
        name, _, value = h.partition(b":")
        headers.setdefault(name.strip().lower().decode("latin-1"), value.strip().decode("latin-1"))
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "content-length" in headers:
        body = rfile.read(int(headers["content-length"]))
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        chunks = []
        while True:
            size = int(rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                break
            chunks.append(rfile.read(size))
            rfile.readline(1024)
        body = b"".join(chunks)
    else:
        body = rfile.read()
    return Answer(status, headers, body)


def exchange(port: int, raw: bytes, method: str = "GET", timeout: float = IO_TIMEOUT,
             half_close: bool = False) -> Answer:
    """Send raw bytes on a fresh connection, read one response or note how the connection ended."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendall(raw)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the gate may close early on garbage: reading says what happened
        rfile = sock.makefile("rb")
        try:
            a = read_response(rfile, method)
        except socket.timeout:
            a = Answer(ended="timeout")
        except ConnectionResetError:
            a = Answer(ended="reset")
        except (ConnectionError, ValueError, IndexError):
            a = Answer(ended="closed")
        finally:
            rfile.close()
    a.elapsed = time.monotonic() - t0
    return a
