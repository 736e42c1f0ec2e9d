"""What the load and fault tests (test_robustness_*.py) share: their keys, the headers of a request
that carries the right one, and the check after each fault that the gate still answers."""

from __future__ import annotations

from live import Gate
from raw_http import exchange, request_bytes

KEY = "sk-e2e0123456789abcdef0123456789ab"
OTHER_KEY = "sk-e2eOTHERfedcba9876543210fedcba9"
K = KEY.encode()


def with_key(*more: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    """Host and the right key, then any other headers."""
    return [(b"Host", b"gate"), (b"Authorization", b"Bearer " + K), *more]


def healthy(m: Gate, what: str) -> None:
    """The gate process is alive and answers its own route."""
    assert m.proc.poll() is None, f"mitmdump exited after {what}:\n{m.output[-3000:]}"
    a = exchange(m.port, request_bytes("GET", "/healthz", with_key()))
    assert a.status == 200 and a.json() == {"status": "ok"}, f"/healthz after {what}: {a.describe()}"
