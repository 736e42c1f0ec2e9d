"""What the hardening tests (test_hardening_*.py, issue #11 case by case) share: their key, and two
raw-socket probes: `push` a body as fast as the gate takes it while reading its answer, and
`status_of`/`body_of` for the bytes of a raw answer."""

from __future__ import annotations

import json
import re
import select
import socket
import time

from raw_http import IO_TIMEOUT

KEY = "sk-hard0123456789abcdef0123456789ab"
K = KEY.encode()
AUTH = (b"Authorization", b"Bearer " + K)
MiB = 1024 * 1024


def push(port: int, head: bytes, total: int, deadline: float = 30.0) -> dict:
    """Send `head`, then up to `total` body bytes as fast as they are taken, reading whatever comes
    back meanwhile; stop sending once an answer has come. -> sent, answer, seconds to the answer."""
    chunk = b"x" * MiB
    sent, answer, first = 0, b"", None
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        t0 = time.monotonic()
        while time.monotonic() - t0 < deadline:
            readable, writable, _ = select.select([sock], [sock] if sent < total and not answer else [], [], 0.2)
            if readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                first = first if first is not None else time.monotonic() - t0
                answer += data
            if writable:
                try:
                    sent += sock.send(chunk[:min(MiB, total - sent)])
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    break
            if sent >= total and not readable and answer:
                break
    return {"sent": sent, "answer": answer, "first": first}


def status_of(raw: bytes) -> int | None:
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", raw)
    return int(m.group(1)) if m else None


def body_of(raw: bytes) -> dict:
    return json.loads(raw.partition(b"\r\n\r\n")[2])
