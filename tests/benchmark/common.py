"""What every part of the benchmark shares: the key, the request it sends, the
upstream's answer, the targets, and the HTTP/1.1 head reading of the bench's
own upstream and load generator."""

from __future__ import annotations

import asyncio
import re
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
ADDON_DIR = REPO / "addon"
ADDON = ADDON_DIR / "auth.py"

API_KEY = "sk-bench0123456789abcdef0123456789a"  # 35 chars, as long as a generated key
WRONG_KEY = "sk-bench0123456789abcdef0123456789b"
HOST = "127.0.0.1"

UPSTREAM_BODY = b'{"id":"bench","object":"chat.completion","choices":[],"ok":true}'
REQUEST_BODY = b'{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"stream":false}'
REQUEST_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
COUNT_PATH = "/__bench/count"  # the upstream answers how many requests it served

TARGET_RATIO = 0.95  # throughput (secondary: it swings with the machine's load)
TARGET_INSTRUCTIONS = 0.97  # the allowed path, instructions per request against bare mitmdump
TARGET_DECISION_NS = 5000.0
STARTUP_TIMEOUT = 30.0  # seconds for a mitmdump to say "listening at"
IO_TIMEOUT = 10.0  # seconds for one response before the connection counts as failed


class BenchError(RuntimeError):
    """Something failed to run; the message says what."""


def typical_headers(key: str | None, port: int | str = 8045) -> list[tuple[str, str]]:
    """About eight headers an OpenAI-style SDK sends, Authorization among them."""
    headers = [
        ("Host", f"{HOST}:{port}"),
        ("User-Agent", "OpenAI/Python 1.54.0"),
        ("Accept", "application/json"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Content-Type", "application/json"),
    ]
    if key is not None:
        headers.append(("Authorization", f"Bearer {key}"))
    headers += [
        ("X-Stainless-Lang", "python"),
        ("X-Stainless-Retry-Count", "0"),
        ("anthropic-version", "2023-06-01"),
    ]
    return headers


def request_bytes(port: int, key: str | None, method: str = "POST") -> bytes:
    """A chat completion (POST with its JSON body), or a model list (GET, no body)."""
    body = REQUEST_BODY if method == "POST" else b""
    lines = [f"{method} {REQUEST_PATH if body else MODELS_PATH} HTTP/1.1"]
    lines += [f"{n}: {v}" for n, v in typical_headers(key, port)]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def parse_head(head: bytes) -> tuple[int | None, bool, bool]:
    """(content-length, chunked, connection: close) from a message head."""
    length, chunked, close = None, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value.strip())
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    return length, chunked, close


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec: str) -> str:
    if value is None:
        return "n/a".rjust(int(re.match(r"\d*", spec).group() or 0))
    return format(value, spec)
