"""DemoHandler: the demo upstream's HTTP plumbing. It reads a request (chunked bodies too), waits
x-demo-delay, hands it to the routing table (routes.py) and answers the rest with the echo JSON;
the per-API answers (openai_api.py, anthropic_api.py, gemini_api.py) write through its send_json,
start_stream, send_event and end_stream."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from authgate.rules.credentials import fingerprint  # the gate's format

from . import routes
from .shared import CREDENTIAL_NAME, STREAM_DELAY, clip, delay, describe_headers


class DemoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real upstreams do
    server_version = "demo-upstream"

    # ------------------------------------------------------------ plumbing

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            pass  # the proxy closed a kept-alive connection: normal, not worth a traceback

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, payload, **headers: str) -> None:
        data = json.dumps(payload, indent=2).encode() + b"\n"
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def start_stream(self, **headers: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")  # keeps the connection alive
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self._stream_started = time.monotonic()
        self._stream_first = None

    def send_event(self, data: str, event: str | None = None) -> None:
        """One server-sent event, flushed at once; a pause before every event but the first."""
        if self._stream_first is not None:
            time.sleep(STREAM_DELAY)
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        raw = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()
        if self._stream_first is None:
            self._stream_first = time.monotonic()

    def end_stream(self, stream_id: str) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        # When the upstream finished: a test compares it with when its first event arrived.
        self.server.streams.append({"id": stream_id, "path": self.path, "started": self._stream_started,
                                    "first_sent": self._stream_first, "finished": time.monotonic()})

    def report(self, prompt: str) -> str:
        """The answer's text: what reached the upstream, and the prompt."""
        text = f"demo upstream received {self.command} {urlsplit(self.path).path}; {describe_headers(self.headers)}."
        if prompt.strip():
            text += f" You said: {clip(prompt)}"
        return text

    # ------------------------------------------------------------ every request

    def _answer(self) -> None:
        self.server.received.append((self.command, self.path))
        body = self._read_body()
        path = urlsplit(self.path).path
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            data = None
        if seconds := self.headers.get("x-demo-delay"):
            time.sleep(delay(seconds))
        if self.server.echo_only:
            return self._echo(len(body))
        try:
            if routes.answer(self, path, data):
                return
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        self._echo(len(body))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def _echo(self, body_bytes: int) -> None:
        """Any other request: exactly what arrived (credential values as fingerprints)."""
        self.send_json(200, {
            "upstream": "echo",
            "method": self.command,
            "path": self.path,
            # Credential-looking values (the upstream's own, from upstream.headers) as fingerprints:
            # the echo must not hand a secret back to whoever holds the proxy key.
            "headers": [[k, fingerprint(v) if CREDENTIAL_NAME.search(k) else v] for k, v in self.headers.items()],
            "body_bytes": body_bytes,
        })

    def log_message(self, format: str, *args) -> None:  # quiet: the proxy logs requests
        pass
