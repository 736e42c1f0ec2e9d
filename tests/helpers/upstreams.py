"""The upstreams the live tests put behind the gate, each in a thread on an ephemeral loopback port;
each stop() ends it and its threads.

- `Upstream`: the demo upstream (addon/demo_upstream.py): echo, or the OpenAI/Anthropic/Gemini fakes.
- `Recorder`: records every request exactly as it arrived, and every connection; answers 200 JSON.
- `FaultyUpstream`: raw TCP that misbehaves on purpose: resets, closes, garbage, cut bodies, hangs.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import demo_upstream

JOIN_TIMEOUT = 5.0  # seconds for a reader or server thread to end


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
    body, whether it came whole: a request cut short is recorded too) and every accepted
    connection, and answers 200 JSON."""

    def __init__(self) -> None:
        recorder = self
        self.requests: list[dict] = []
        self.connections = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                complete = len(body) == length
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    while size_line := self.rfile.readline(1024):
                        if not (size := int(size_line.split(b";")[0].strip() or b"0", 16)):
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline(1024)
                    # the last chunk, trailers (if any), then the blank line; EOF before it: unfinished
                    complete = bool(size_line)
                    while (line := self.rfile.readline(65537)) not in (b"\r\n", b"\n", b""):
                        pass
                    complete = complete and line != b""
                recorder.requests.append({"line": self.requestline, "method": self.command, "path": self.path,
                                          "headers": list(self.headers.items()), "body": body,
                                          "complete": complete})
                if not complete:  # the connection is gone: nothing to answer on
                    self.close_connection = True
                    return
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



CANNED = {  # what the upstream sends before it closes, by mode
    "garbage": b"NOT HTTP AT ALL\r\n\r\n",
    "cut-body": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"partial\":",
    "cut-stream": (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"d\r\ndata: first\n\n\r\n"),
}


class FaultyUpstream:
    """A raw TCP upstream that misbehaves on purpose, in a thread; stop() ends it and its connections.

    modes:  rst-on-accept        accept, then close with SO_LINGER 0 (a TCP reset) at once
            close-after-request  read the request head, then close (FIN) without answering
            rst-after-request    read the request head, then reset
            garbage              read the request head, answer with a line that is not HTTP, close
            cut-body             read the request head, promise 100 bytes of body, send 10, close
            cut-stream           read the request head, start an event stream, send one event, close
            slow                 hold /slow* requests forever (until stop); answer others at once
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.stopping = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self.held: list[bytes] = []  # request lines being held (slow)
        self.peer_closed: list[bytes] = []  # held request lines whose connection the gate closed
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True)
        self._accepter.start()

    def _accept_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    @staticmethod
    def _reset(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _read_head(self, conn: socket.socket, buf: bytes) -> tuple[bytes | None, bytes]:
        """-> (request head or None when the peer closed / we stop, rest of the buffer)."""
        while b"\r\n\r\n" not in buf:
            if self.stopping.is_set():
                return None, buf
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return None, buf
            if not data:
                return None, buf
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        try:
            if self.mode == "rst-on-accept":
                self._reset(conn)
                return
            buf = b""
            while not self.stopping.is_set():
                head, buf = self._read_head(conn, buf)
                if head is None:
                    return
                line = head.split(b"\r\n", 1)[0]
                if self.mode == "close-after-request":
                    return
                if self.mode == "rst-after-request":
                    self._reset(conn)
                    return
                if self.mode in CANNED:
                    conn.sendall(CANNED[self.mode])
                    return
                if b" /slow" in line:
                    self.held.append(line)
                    while not self.stopping.is_set():  # never answer; notice when the gate hangs up
                        try:
                            if not conn.recv(65536):
                                self.peer_closed.append(line)
                                return
                        except socket.timeout:
                            continue
                        except OSError:
                            self.peer_closed.append(line)
                            return
                    return
                body = json.dumps({"upstream": "faulty", "line": line.decode("latin-1")}).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self._accepter.join(5)
        for t in self._threads:
            t.join(5)
        self.listener.close()
