"""What the streaming tests (tests/live/test_streaming.py, tests/web/test_web_streaming.py) share: an
upstream that sends its answer in timed pieces or in bulk and takes uploads (`PaceUpstream`), a
client that times every piece as it arrives (`fetch`), a process's memory (`Memory`), and bare
mitmdump in reverse mode with its own `stream_large_bodies` (`bare_mitmdump`), the baseline.

Nothing big is held in memory: a 300 MiB answer is one 1 MiB block sent again and again, an upload
the same block read and counted. Everything listens on 127.0.0.1 (ephemeral ports), every socket
call and wait is bounded, and every thread and process ends with its context manager.
"""

from __future__ import annotations

import gzip
import json
import random
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from live import Process
from raw_http import IO_TIMEOUT
from upstreams import JOIN_TIMEOUT

MiB = 1024 * 1024
PIECES = 15  # the upstream: one piece every 200 ms for 3 s
EVERY = 0.2
KINDS = {  # kind -> content type; the pieces each kind sends are in _piece
    "sse": "text/event-stream",
    "ndjson": "application/x-ndjson",
    "json": "application/json",  # Gemini's streamGenerateContent without alt=sse: one JSON array, in pieces
}


def _line(i: int) -> bytes:
    """One line of the big answers: 128 bytes, its number in it, text a view can show."""
    head = b'{"line": %08d, "text": "' % i
    return head + b"x" * (128 - len(head) - 3) + b'"}\n'


BLOCK = b"".join(_line(i) for i in range(MiB // 128))  # 1 MiB of those lines


def _piece(kind: str, i: int, last: bool) -> bytes:
    """The i-th piece of a stream: an event, a line, or an array element (the array closed with the last)."""
    item = json.dumps({"seq": i, "text": f"word{i} "})
    if kind == "sse":
        return f"event: delta\ndata: {item}\n\n".encode()
    if kind == "ndjson":
        return f"{item}\n".encode()
    return (("[" if i == 0 else ",\r\n") + item + ("]" if last else "")).encode()


def marker(i: int) -> bytes:
    return b'"seq": %d,' % i


def sse_text(n: int = PIECES) -> bytes:
    """The whole body of /sse with n pieces, as the client receives it."""
    return b"".join(_piece("sse", i, i == n - 1) for i in range(n))


class PaceUpstream:
    """An HTTP/1.1 upstream in a thread:

    * GET /{sse,ndjson,json}/<id>?n=15&every=0.2: n pieces, one every `every` seconds, chunked; the
      monotonic time each piece went out is in sent[id].
    * GET /big/<bytes>: that many bytes of 128-byte JSON lines (Content-Length), as fast as taken.
    * GET /gzip/<bytes>: that many bytes of hex text, gzip'd (Content-Encoding: gzip, Content-Length).
    * POST /upload/<id>[?answer=early][&hang=1]: reads the body (Content-Length or chunked) and
      answers its size; early: answers before reading it; hang: reads it, never answers. What came
      is in uploads[id]: bytes, complete, first (when the first body byte came), end.
    """

    def __init__(self) -> None:
        self.sent: dict[str, list[float]] = {}
        self.uploads: dict[str, dict] = {}
        self.gzip_bodies: dict[int, tuple[bytes, bytes]] = {}  # size -> (text, gzip'd)
        self._stop = threading.Event()
        up = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                kind, _, arg = parts.path.strip("/").partition("/")
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if kind in KINDS:
                    up._pace(self, kind, arg, int(query.get("n", PIECES)), float(query.get("every", EVERY)))
                elif kind == "big":
                    up._big(self, int(arg))
                elif kind == "gzip":
                    up._gzip(self, int(arg))
                else:
                    self._send(404, b'{"error": "no such route"}')

            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                kind, _, arg = parts.path.strip("/").partition("/")
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if kind != "upload":
                    self._send(404, b'{"error": "no such route"}')
                    return
                up._upload(self, arg, early=query.get("answer") == "early", hang=bool(query.get("hang")))

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    # ------------------------------------------------------------ the routes

    def _pace(self, h, kind: str, sid: str, n: int, every: float) -> None:
        h.send_response(200)
        h.send_header("content-type", KINDS[kind])
        h.send_header("transfer-encoding", "chunked")
        h.send_header("cache-control", "no-cache")
        h.end_headers()
        h.wfile.flush()
        times = self.sent.setdefault(sid, [])
        start = time.monotonic()
        for i in range(n):
            wait = start + i * every - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            data = _piece(kind, i, i == n - 1)
            times.append(time.monotonic())
            try:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                h.wfile.flush()
            except OSError:
                return
        h.wfile.write(b"0\r\n\r\n")

    def _big(self, h, size: int) -> None:
        h.send_response(200)
        h.send_header("content-type", "application/x-ndjson")
        h.send_header("content-length", str(size))
        h.end_headers()
        left = size
        try:
            while left > 0:
                h.wfile.write(BLOCK[:left] if left < MiB else BLOCK)
                left -= MiB
        except OSError:
            pass

    def _gzip(self, h, size: int) -> None:
        if size not in self.gzip_bodies:
            rnd = random.Random(size)
            text = b"".join(b"%08d %s\n" % (i, rnd.randbytes(27).hex().encode()) for i in range(size // 64 + 1))[:size]
            self.gzip_bodies[size] = (text, gzip.compress(text, 6))
        body = self.gzip_bodies[size][1]
        h.send_response(200)
        h.send_header("content-type", "text/plain; charset=utf-8")
        h.send_header("content-encoding", "gzip")
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _upload(self, h, sid: str, early: bool, hang: bool) -> None:
        rec = self.uploads[sid] = {"bytes": 0, "complete": False, "first": None, "end": None}
        if early:
            h._send(200, b'{"answered": "before the body"}')
        rfile = h.rfile
        try:
            if "chunked" in h.headers.get("transfer-encoding", "").lower():
                while True:
                    size_line = rfile.readline(1024)
                    if not size_line:
                        return
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        rfile.readline(1024)
                        break
                    self._count(rec, rfile, size)
                    rfile.readline(1024)
            else:
                self._count(rec, rfile, int(h.headers.get("content-length") or 0))
        except (OSError, ValueError):
            return
        rec["complete"] = rec["bytes"] is not None
        rec["end"] = time.monotonic()
        if hang:
            self._stop.wait(60)
            return
        if not early:
            h._send(200, json.dumps({"received": rec["bytes"]}).encode())

    @staticmethod
    def _count(rec: dict, rfile, size: int) -> None:
        while size > 0:
            data = rfile.read1(min(size, MiB))
            if not data:
                raise OSError("the body ended early")
            if rec["first"] is None:
                rec["first"] = time.monotonic()
            rec["bytes"] += len(data)
            size -= len(data)

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(JOIN_TIMEOUT)

    def __enter__(self) -> PaceUpstream:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# ====================================================================== the client: every piece timed

@dataclass
class Fetch:
    """One exchange on a fresh connection, timed from the moment the request went out (t0, monotonic)."""

    t0: float = 0.0
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names, first value
    first: float | None = None  # seconds to the first byte of the answer
    first_body: float | None = None  # seconds to the first byte of its body
    marks: list[float] = field(default_factory=list)  # monotonic time each marker(i) arrived, in order
    size: int = 0  # body bytes (de-chunked)
    body: bytes = b""  # the body, up to `keep` bytes
    sent: int = 0  # request body bytes sent
    sent_done: float | None = None  # monotonic time the last request body byte went out
    ended: str = ""  # "complete", "closed", "reset", "timeout"
    took: float = 0.0

    def delays(self, sent: list[float]) -> list[float]:
        """Seconds from each piece leaving the upstream to its arrival here."""
        return [got - out for got, out in zip(self.marks, sent)]


class _Body:
    """De-chunks (or counts) a response body as it arrives; times each marker."""

    def __init__(self, f: Fetch, keep: int, markers: bool) -> None:
        self.f, self.keep, self.markers = f, keep, markers
        self.tail = b""  # the last bytes, for a marker split between reads
        self.mode = None  # "length", "chunked", "close"
        self.left = 0  # length: bytes to go; chunked: bytes of the current chunk to go
        self.pending = b""  # chunked framing not yet parsed
        self.done = False

    def start(self, headers: dict[str, str], method: str) -> None:
        if method == "HEAD" or self.f.status in (204, 304):
            self.done = True
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self.mode = "chunked"
        elif "content-length" in headers:
            self.mode, self.left = "length", int(headers["content-length"])
            self.done = self.left == 0
        else:
            self.mode = "close"

    def feed(self, data: bytes, now: float) -> None:
        if self.mode == "chunked":
            self._chunked(data, now)
        elif self.mode == "length":
            data = data[:self.left]
            self.left -= len(data)
            self._payload(data, now)
            self.done = self.left == 0
        else:
            self._payload(data, now)

    def _chunked(self, data: bytes, now: float) -> None:
        buf = self.pending + data
        pos = 0
        while not self.done:
            if self.left:
                take = buf[pos:pos + self.left]
                self._payload(take, now)
                self.left -= len(take)
                pos += len(take)
                if self.left:
                    break
                self.left = -2  # the CRLF after the chunk
            if self.left == -2:
                if len(buf) - pos < 2:
                    break
                pos, self.left = pos + 2, 0
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            size = int(buf[pos:end].split(b";")[0] or b"0", 16)
            pos = end + 2
            if size == 0:
                self.done = True  # (trailers and the last CRLF are not read)
            self.left = size
        self.pending = buf[pos:]

    def _payload(self, data: bytes, now: float) -> None:
        if not data:
            return
        f = self.f
        if f.first_body is None:
            f.first_body = now - f.t0
        f.size += len(data)
        if len(f.body) < self.keep:
            f.body += data[:self.keep - len(f.body)]
        if self.markers:
            seen = self.tail + data
            while (m := marker(len(f.marks))) in seen:
                f.marks.append(now)
                seen = seen[seen.index(m) + len(m):]
            self.tail = seen[-32:]


def _pieces(size: int, chunked: bool):
    """A request body of `size` bytes, the 1 MiB BLOCK again and again (chunked: framed, then the end)."""
    left = size
    while left > 0:
        n = min(MiB, left)
        yield (b"%x\r\n%s\r\n" % (n, BLOCK[:n])) if chunked else BLOCK[:n]
        left -= n
    if chunked:
        yield b"0\r\n\r\n"


def fetch(port: int, target: str, method: str = "GET", headers: list[tuple[str, str]] = (),
          body_size: int = 0, chunked: bool = False, keep: int = 64 * 1024, markers: bool = True,
          timeout: float = 60.0) -> Fetch:
    """One request on a fresh connection (Connection: close): a body of body_size bytes (the 1 MiB
    BLOCK again and again; chunked, or with Content-Length) sent as fast as it is taken while the
    answer is read as it comes; sending stops when the gate closes. Everything is timed from the
    moment the request head goes out."""
    f = Fetch()
    head = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", *[f"{n}: {v}" for n, v in headers]]
    if chunked:
        head.append("Transfer-Encoding: chunked")
    elif body_size:
        head.append(f"Content-Length: {body_size}")
    head.append("Connection: close")
    pending = ("\r\n".join(head) + "\r\n\r\n").encode()
    pieces = _pieces(body_size, chunked) if (body_size or chunked) else iter(())
    reader = _Body(f, keep, markers)
    buf = b""
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        sock.setblocking(False)
        f.t0 = time.monotonic()
        deadline = f.t0 + timeout
        writing = True
        while True:
            if writing and not pending:
                pending = next(pieces, b"")
                if not pending:
                    writing, f.sent_done = False, time.monotonic()
            r, w, _ = select.select([sock], [sock] if writing else [], [], 0.5)
            now = time.monotonic()
            if now > deadline:
                f.ended = "timeout"
                break
            if w:
                try:
                    n = sock.send(pending)
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError:  # the gate closed: what it said is read below
                    writing, pending, n = False, b"", 0
                f.sent += n
                pending = pending[n:]
            if not r:
                continue
            try:
                data = sock.recv(256 * 1024)
            except (BlockingIOError, InterruptedError):
                continue
            except ConnectionResetError:
                f.ended = "reset"
                break
            if not data:
                f.ended = "complete" if reader.done else "closed"
                break
            if f.first is None:
                f.first = now - f.t0
            if f.status is None:
                buf += data
                if b"\r\n\r\n" not in buf:
                    continue
                raw_head, _, data = buf.partition(b"\r\n\r\n")
                lines = raw_head.split(b"\r\n")
                status = int(lines[0].split()[1])
                if status == 100:  # a 100 Continue: the real answer follows
                    buf = data
                    if b"\r\n\r\n" not in buf:
                        continue
                    raw_head, _, data = buf.partition(b"\r\n\r\n")
                    lines = raw_head.split(b"\r\n")
                    status = int(lines[0].split()[1])
                f.status = status
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    f.headers.setdefault(name.strip().lower().decode("latin-1"), value.strip().decode("latin-1"))
                reader.start(f.headers, method)
            if data:
                reader.feed(data, now)
            if reader.done and not writing:
                f.ended = "complete"
                break
    f.sent -= len(("\r\n".join(head) + "\r\n\r\n").encode())
    f.took = time.monotonic() - f.t0
    return f


# ====================================================================== a process's memory, bare mitmdump

class Memory:
    """A process's resident memory from /proc (kB): now, and the peak since the last reset."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _field(self, name: str) -> int:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
        raise AssertionError(f"no {name} for pid {self.pid}")

    def rss(self) -> int:
        return self._field("VmRSS")

    def peak(self) -> int:
        return self._field("VmHWM")

    def reset(self) -> int:
        """The peak set back to the current RSS (Linux: clear_refs 5); -> the RSS now."""
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        return self.rss()


def bare_mitmdump(upstream_url: str, confdir: Path, *extra: str) -> Process:
    """mitmdump in reverse mode to the upstream, no script, mitmproxy's own streaming for bodies
    over 1 MiB (stream_large_bodies=1m), on an ephemeral loopback port; listening when returned."""
    return Process("mitmdump", "--mode", f"reverse:{upstream_url}@127.0.0.1:0", "--set", f"confdir={confdir}",
                   "--set", "connection_strategy=lazy", *extra).wait_listening()


def mib(kb: int) -> str:
    return f"{kb / 1024:.0f} MiB"


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def median(values: list[float]) -> float:
    s = sorted(values)
    return s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) / 2
