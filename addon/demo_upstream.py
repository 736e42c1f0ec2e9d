"""A small local upstream that speaks enough OpenAI, Anthropic and Gemini for their SDKs.

    python3 addon/demo_upstream.py [--port 8046] [--host 127.0.0.1]
    python3 addon/demo_upstream.py --config config.yaml   # listen where upstream.url points

Point an SDK's base URL at the gate (http://127.0.0.1:8045) and it gets a real,
well-formed answer whose text says what reached the upstream: which of
Authorization, x-api-key and x-goog-api-key arrived (a short fingerprint, never
the value), so a person sees that the gate stripped the proxy key.

    OpenAI     GET  /v1/models[/{id}]      POST /v1/chat/completions (stream: true as SSE)
               (the SDK's base URL ends in /v1: http://127.0.0.1:8045/v1)
    Anthropic  GET  /v1/models[/{id}]      POST /v1/messages (stream too), /v1/messages/count_tokens
               (told apart from OpenAI's /v1/models by the anthropic-version header)
    Gemini     GET  /v1beta/models[/{id}]  POST /v1beta/models/{model}:generateContent,
               :streamGenerateContent?alt=sse, :countTokens
               (on /v1/ too, as the real API: google-genai 3.x calls /v1/; its /v1/models[/{id}]
               told apart from OpenAI's by the x-goog-api-client header Google's SDKs send)

Streams send one event every STREAM_DELAY seconds, each flushed at once, so a
client sees the first event long before the upstream has finished. Every other
request gets the echo upstream's JSON (method, path, headers, body size).
A request with `x-demo-delay: SECONDS` (up to MAX_DELAY) is answered that much
later: a slow upstream, to see the gate's 504 after upstream.timeout.
Standard library only; loopback only by default.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import math
import re
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from authgate.config_read import read_config
from authgate.settings import ConfigError, fingerprint  # fingerprint: the gate's format

KEY_HEADERS = ("Authorization", "x-api-key", "x-goog-api-key")
# Other headers that look like credentials (added by upstream.headers, say): named, fingerprinted.
_CREDENTIAL_NAME = re.compile(r"key|token|secret|auth|cookie", re.I)
STREAM_DELAY = 0.06  # seconds between streamed events
MAX_DELAY = 120.0  # seconds: the longest x-demo-delay honoured
RECORDED = 10_000  # requests and streams kept in memory for tests to inspect
STREAM_PIECES = 6  # how many pieces a streamed answer is cut into
OPENAI_MODELS = ("demo-gpt", "demo-gpt-mini")
ANTHROPIC_MODELS = ("demo-claude", "demo-claude-haiku")
GEMINI_MODELS = ("demo-gemini", "demo-gemini-flash")
_GEMINI_CALL = re.compile(r"^/v1(?:beta|alpha)?/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)$")
_GEMINI_MODEL = re.compile(r"^/v1(?:beta|alpha)?/models/([^/:]+)$")
_MODEL = re.compile(r"^/v1/models/([^/:]+)$")
_ids = itertools.count(1)


def describe_headers(headers) -> str:
    """`key headers: none (Authorization, x-api-key, x-goog-api-key absent)` and the like."""
    present, absent = [], []
    for name in KEY_HEADERS:
        value = headers.get(name)
        if value is None:
            absent.append(name)
        else:
            if name == "Authorization" and value.startswith("Bearer "):
                shown = "Bearer " + fingerprint(value[len("Bearer "):])
            else:
                shown = fingerprint(value)
            present.append(f"{name} present: {shown}")
    if present:
        out = "key headers: " + ", ".join(present) + (f"; absent: {', '.join(absent)}" if absent else "")
    else:
        out = f"key headers: none ({', '.join(absent)} absent)"
    lowered = {n.lower() for n in KEY_HEADERS}
    others = [f"{name} ({fingerprint(value)})" for name, value in headers.items()
              if name.lower() not in lowered and _CREDENTIAL_NAME.search(name)]
    if others:
        out += "; other credential headers: " + ", ".join(others)
    return out


def _pieces(text: str, n: int = STREAM_PIECES) -> list[str]:
    """Cut text into about n pieces at spaces; joined they give the text back."""
    words = re.findall(r"\S+\s*", text) or [text]
    size = max(1, -(-len(words) // n))
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)]


def _delay(value: str) -> float:
    """x-demo-delay's seconds, within 0..MAX_DELAY (anything unreadable: none)."""
    try:
        seconds = float(value)
    except ValueError:
        return 0.0
    return 0.0 if math.isnan(seconds) else min(max(seconds, 0.0), MAX_DELAY)


def _clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _messages_prompt(body: dict) -> str:
    """The last user message of an OpenAI or Anthropic request (both use `messages`)."""
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _gemini_prompt(body: dict) -> str:
    for content in reversed(body.get("contents") or []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            return " ".join(p.get("text", "") for p in content.get("parts") or [] if isinstance(p, dict))
    return ""


def _tokens(text: str) -> int:
    return max(1, len(text.split()))


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

    def _json(self, status: int, payload, **headers: str) -> None:
        data = json.dumps(payload, indent=2).encode() + b"\n"
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _start_stream(self, **headers: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")  # keeps the connection alive
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self._stream_started = time.monotonic()
        self._stream_first = None

    def _send_event(self, data: str, event: str | None = None) -> None:
        """One server-sent event, flushed at once; a pause before every event but the first."""
        if self._stream_first is not None:
            time.sleep(STREAM_DELAY)
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        raw = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
        self.wfile.flush()
        if self._stream_first is None:
            self._stream_first = time.monotonic()

    def _end_stream(self, stream_id: str) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        # When the upstream finished: a test compares it with when its first event arrived.
        self.server.streams.append({"id": stream_id, "path": self.path, "started": self._stream_started,
                                    "first_sent": self._stream_first, "finished": time.monotonic()})

    def _report(self, prompt: str) -> str:
        text = f"demo upstream received {self.command} {urlsplit(self.path).path}; {describe_headers(self.headers)}."
        if prompt.strip():
            text += f" You said: {_clip(prompt)}"
        return text

    # ------------------------------------------------------------ routing

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
        method = self.command
        if delay := self.headers.get("x-demo-delay"):
            time.sleep(_delay(delay))
        if self.server.echo_only:
            return self._echo(len(body))
        try:
            # /v1/models[/{id}] is OpenAI's, Anthropic's and Gemini's: the client's own header tells.
            gemini = "x-goog-api-client" in self.headers
            if method == "GET" and path == "/v1/models" and not gemini:
                return self._anthropic_models() if "anthropic-version" in self.headers else self._openai_models()
            if method == "POST" and path == "/v1/chat/completions" and data is not None:
                return self._openai_chat(data)
            if method == "POST" and path == "/v1/messages" and data is not None:
                return self._anthropic_messages(data)
            if method == "POST" and path == "/v1/messages/count_tokens" and data is not None:
                return self._json(200, {"input_tokens": _tokens(_messages_prompt(data))})
            m = _MODEL.match(path)
            if method == "GET" and m and not gemini:
                return self._model(m.group(1))
            if method == "GET" and path in ("/v1/models", "/v1beta/models", "/v1alpha/models"):
                return self._json(200, {"models": [_gemini_model(m) for m in GEMINI_MODELS]})
            m = _GEMINI_MODEL.match(path)
            if method == "GET" and m:
                return self._json(200, _gemini_model(m.group(1)))
            m = _GEMINI_CALL.match(path)
            if method == "POST" and m and data is not None:
                return self._gemini(m.group(1), m.group(2), data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        self._echo(len(body))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def _echo(self, body_bytes: int) -> None:
        """Any other request: exactly what arrived (credential values as fingerprints)."""
        self._json(200, {
            "upstream": "echo",
            "method": self.command,
            "path": self.path,
            # Credential-looking values (the upstream's own, from upstream.headers) as fingerprints:
            # the echo must not hand a secret back to whoever holds the proxy key.
            "headers": [[k, fingerprint(v) if _CREDENTIAL_NAME.search(k) else v] for k, v in self.headers.items()],
            "body_bytes": body_bytes,
        })

    # ------------------------------------------------------------ OpenAI

    def _openai_models(self) -> None:
        self._json(200, {"object": "list", "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "demo-upstream"}
            for m in OPENAI_MODELS]})

    def _model(self, model: str) -> None:
        if "anthropic-version" in self.headers:
            return self._json(200, {"type": "model", "id": model, "display_name": model.replace("-", " ").title(),
                                    "created_at": "2025-01-01T00:00:00Z"})
        self._json(200, {"id": model, "object": "model", "created": 1700000000, "owned_by": "demo-upstream"})

    def _openai_chat(self, body: dict) -> None:
        rid = f"chatcmpl-demo{next(_ids)}"
        created = int(time.time())
        model = str(body.get("model") or OPENAI_MODELS[0])
        prompt = _messages_prompt(body)
        text = self._report(prompt)
        usage = {"prompt_tokens": _tokens(prompt), "completion_tokens": _tokens(text),
                 "total_tokens": _tokens(prompt) + _tokens(text)}
        if not body.get("stream"):
            return self._json(200, {
                "id": rid, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": "demo",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                             "logprobs": None, "finish_reason": "stop"}],
                "usage": usage}, x_request_id=rid)

        def chunk(delta: dict, finish=None, choices=True, **extra) -> str:
            out = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                   "system_fingerprint": "demo",
                   "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                   if choices else [], **extra}
            return json.dumps(out)

        self._start_stream(x_request_id=rid)
        self._send_event(chunk({"role": "assistant", "content": ""}))
        for piece in _pieces(text):
            self._send_event(chunk({"content": piece}))
        self._send_event(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._send_event(chunk({}, choices=False, usage=usage))
        self._send_event("[DONE]")
        self._end_stream(rid)

    # ------------------------------------------------------------ Anthropic

    def _anthropic_models(self) -> None:
        data = [{"type": "model", "id": m, "display_name": m.replace("-", " ").title(),
                 "created_at": "2025-01-01T00:00:00Z"} for m in ANTHROPIC_MODELS]
        self._json(200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})

    def _anthropic_messages(self, body: dict) -> None:
        rid = f"msg_demo{next(_ids)}"
        model = str(body.get("model") or ANTHROPIC_MODELS[0])
        prompt = _messages_prompt(body)
        text = self._report(prompt)
        usage_in = _tokens(prompt)
        if not body.get("stream"):
            return self._json(200, {
                "id": rid, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": usage_in, "output_tokens": _tokens(text)}}, request_id=rid)
        self._start_stream(request_id=rid)
        ev = self._send_event
        ev(json.dumps({"type": "message_start", "message": {
            "id": rid, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": usage_in, "output_tokens": 1}}}), "message_start")
        ev(json.dumps({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}}), "content_block_start")
        ev(json.dumps({"type": "ping"}), "ping")
        for piece in _pieces(text):
            ev(json.dumps({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": piece}}), "content_block_delta")
        ev(json.dumps({"type": "content_block_stop", "index": 0}), "content_block_stop")
        ev(json.dumps({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                       "usage": {"output_tokens": _tokens(text)}}), "message_delta")
        ev(json.dumps({"type": "message_stop"}), "message_stop")
        self._end_stream(rid)

    # ------------------------------------------------------------ Gemini

    def _gemini(self, model: str, call: str, body: dict) -> None:
        prompt = _gemini_prompt(body)
        if call == "countTokens":
            return self._json(200, {"totalTokens": _tokens(prompt)})
        rid = f"demo-gemini-{next(_ids)}"
        text = self._report(prompt)
        usage = {"promptTokenCount": _tokens(prompt), "candidatesTokenCount": _tokens(text),
                 "totalTokenCount": _tokens(prompt) + _tokens(text)}

        def response(part: str, last: bool) -> dict:
            candidate = {"content": {"role": "model", "parts": [{"text": part}]}, "index": 0}
            if last:
                candidate["finishReason"] = "STOP"
            out = {"candidates": [candidate], "modelVersion": model, "responseId": rid}
            if last:
                out["usageMetadata"] = usage
            return out

        if call == "generateContent":
            return self._json(200, response(text, True))
        pieces = _pieces(text)
        if parse_qs(urlsplit(self.path).query).get("alt") != ["sse"]:
            # Without alt=sse Gemini streams one JSON array; sent whole here.
            return self._json(200, [response(p, i == len(pieces) - 1) for i, p in enumerate(pieces)])
        self._start_stream()
        for i, piece in enumerate(pieces):
            self._send_event(json.dumps(response(piece, i == len(pieces) - 1)))
        self._end_stream(rid)

    def log_message(self, format: str, *args) -> None:  # quiet: the proxy logs requests
        pass


def _gemini_model(name: str) -> dict:
    name = name.removeprefix("models/")
    return {"name": f"models/{name}", "version": "001", "displayName": name.replace("-", " ").title(),
            "description": "A model of the demo upstream: it reports what reached it.",
            "inputTokenLimit": 32768, "outputTokenLimit": 8192,
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def serve(host: str = "127.0.0.1", port: int = 8046, echo_only: bool = False) -> ThreadingHTTPServer:
    """The server, bound and not yet serving: call serve_forever() (in a thread, say).

    echo_only: answer every request with the echo JSON, API paths included.

    server.received holds (method, path) of the latest requests, server.streams
    one record per finished stream (id, path, and the monotonic times it
    started, sent its first event and finished); both bounded, for long sessions.
    """
    cls = _IPv6Server if ":" in host else ThreadingHTTPServer
    server = cls((host, port), DemoHandler)
    server.daemon_threads = True
    server.echo_only = echo_only
    server.received = collections.deque(maxlen=RECORDED)
    server.streams = collections.deque(maxlen=RECORDED)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8046)
    parser.add_argument("--config", help="take host and port from this config.yaml's upstream.url")
    parser.add_argument("--echo", action="store_true", help="answer every request with the echo JSON, API paths too")
    args = parser.parse_args()
    if args.config:
        try:
            up = read_config(args.config).upstream
        except ConfigError as e:
            raise SystemExit(str(e)) from None
        if up.scheme != "http" or up.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"upstream.url is {up.url}: not a local http address, so no demo upstream is started")
            return
        args.host, args.port = up.host, up.port
    try:
        server = serve(args.host, args.port, echo_only=args.echo)
    except OSError as e:
        raise SystemExit(f"demo upstream: cannot listen on {args.host}:{args.port}: {e}") from None
    print(f"demo upstream (OpenAI, Anthropic, Gemini) listening on http://{args.host}:{server.server_address[1]}",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
