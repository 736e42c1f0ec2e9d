"""The bench's upstream: a fixed-answer HTTP/1.1 keep-alive server in its own
process (bench.py --_upstream), which counts what it served."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

from .common import COUNT_PATH, HOST, REPO, UPSTREAM_BODY, BenchError, parse_head, read_chunked
from .processes import Proc


async def serve() -> None:
    served = connections = accepted = 0
    ok = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
          + str(len(UPSTREAM_BODY)).encode() + b"\r\n\r\n" + UPSTREAM_BODY)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served, connections, accepted
        accepted += 1
        counted = False  # a connection counts once it carries a request to serve
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, chunked, close = parse_head(head)
                if chunked:
                    await read_chunked(reader)
                elif length:
                    await reader.readexactly(length)
                if head.startswith(b"GET " + COUNT_PATH.encode() + b" "):
                    body = json.dumps({"served": served, "connections": connections,
                                       "accepted": accepted}).encode()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
                else:
                    served += 1
                    if not counted:
                        counted = True
                        connections += 1
                    writer.write(ok)
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, HOST, 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    async with server:
        # Stop when the parent goes away (stdin closes), never linger.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def upstream_count(port: int) -> tuple[int, int, int]:
    """(requests served, connections that carried them, connections accepted) so far.

    Accepted counts every connection, this count request's included; the
    difference shows connections that never carried a request (probes)."""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(f"GET {COUNT_PATH} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    counts = json.loads(data.partition(b"\r\n\r\n")[2])
    return counts["served"], counts["connections"], counts["accepted"]


def start_upstream(logdir: Path, procs: list[Proc]) -> int:
    """The bench's upstream in its own process (bench.py --_upstream): its port."""
    up = Proc("upstream", [sys.executable, str(REPO / "tests" / "bench.py"), "--_upstream"], logdir, stdout_pipe=True)
    procs.append(up)
    line = up.proc.stdout.readline().strip()
    if not line.isdigit():
        raise BenchError(f"the bench upstream did not start:\n{up.tail()}")
    return int(line)
