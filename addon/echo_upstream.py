"""A tiny local upstream that answers every request with JSON describing it.

    python3 addon/echo_upstream.py [--port 8046] [--host 127.0.0.1]
    python3 addon/echo_upstream.py --config config.yaml   # listen where upstream.url points

It shows exactly what reached the upstream: method, path, headers and body
size, so a person sees that the proxy key headers were stripped.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real upstreams do
    server_version = "echo-upstream"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        payload = json.dumps({
            "upstream": "echo",
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_bytes": len(body),
        }, indent=2).encode() + b"\n"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args) -> None:  # quiet: the proxy logs requests
        pass


def serve(host: str = "127.0.0.1", port: int = 8046) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), EchoHandler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8046)
    parser.add_argument("--config", help="take host and port from this config.yaml's upstream.url")
    args = parser.parse_args()
    if args.config:
        from authgate.settings import ConfigError, read_config

        try:
            up = read_config(args.config).upstream
        except ConfigError as e:
            raise SystemExit(str(e))
        if up.scheme != "http" or up.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"upstream.url is {up.url}: not a local http address, so no echo upstream is started")
            return
        args.host, args.port = up.host, up.port
    try:
        server = serve(args.host, args.port)
    except OSError as e:
        raise SystemExit(f"echo upstream: cannot listen on {args.host}:{args.port}: {e}")
    print(f"echo upstream listening on http://{args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
