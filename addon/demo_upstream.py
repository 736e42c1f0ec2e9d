"""A small local upstream that speaks enough OpenAI, Anthropic and Gemini for their SDKs.

    python3 addon/demo_upstream.py [--port 8046] [--host 127.0.0.1]
    python3 addon/demo_upstream.py --config config.yaml   # listen where upstream.url points

Point an SDK's base URL at the gate (http://127.0.0.1:8045) and it gets a real,
well-formed answer whose text says what reached the upstream: which of
Authorization, x-api-key and x-goog-api-key arrived (a short fingerprint, never
the value), so a person sees that the gate stripped the proxy key.

    OpenAI     GET  /v1/models[/{id}]      POST /v1/chat/completions (stream: true as SSE),
                                           /v1/responses (stream: its event stream, as Codex CLI reads it)
               (the SDK's base URL ends in /v1: http://127.0.0.1:8045/v1)
    Anthropic  GET  /v1/models[/{id}]      POST /v1/messages (stream too; thinking, tools offered,
               ?beta=true as Claude Code sends them), /v1/messages/count_tokens
               (told apart from OpenAI's /v1/models by the anthropic-version header)
    Gemini     GET  /v1beta/models[/{id}]  POST /v1beta/models/{model}:generateContent,
               :streamGenerateContent?alt=sse, :countTokens (JSON when the request asks for it,
               shaped by its response schema: Gemini CLI's model router)
               (on /v1/ too, as the real API: google-genai 3.x calls /v1/; its /v1/models[/{id}]
               told apart from OpenAI's by the x-goog-api-client header Google's SDKs send)

Streams send one event every STREAM_DELAY seconds, each flushed at once, so a
client sees the first event long before the upstream has finished. Every other
request gets the echo upstream's JSON (method, path, headers, body size).
A request with `x-demo-delay: SECONDS` (up to MAX_DELAY) is answered that much
later: a slow upstream, to see the gate's 504 after upstream.timeout.
Standard library only; loopback only by default. The answers and the handler are in
demo_api/ (shared.py, handler.py, routes.py, openai_api.py, responses_api.py, anthropic_api.py,
gemini_api.py, json_answer.py).
"""

from __future__ import annotations

import argparse
import collections
import socket
from http.server import ThreadingHTTPServer

from authgate.config.read import read_config
from authgate.config.settings import ConfigError
from demo_api.handler import DemoHandler
from demo_api.shared import RECORDED


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
