"""Huge and malformed requests against a live `mitmdump -s addon/auth.py` (one gate for them all):
an error or a closed connection, never a success, a hang or a logged exception; answers to HEAD
carry no body. After each one the gate still answers.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call and wait is bounded; the
gate and its upstream are stopped when the module ends.
"""

from __future__ import annotations

import random
import socket
import time

import pytest

from live import Gate, config_text, write_config
from live_fixtures import confdir  # noqa: F401
from raw_http import exchange
from robustness_checks import KEY, K, healthy
from upstreams import Upstream


@pytest.fixture(scope="module")
def bad_input_gate(tmp_path_factory, confdir):
    with Upstream() as e:
        path = tmp_path_factory.mktemp("bad-input") / "config.yaml"
        write_config(path, config_text("strict", KEY, e.url))
        with Gate(path, confdir=confdir) as m:
            yield m, e


def _req(target: bytes, *headers: bytes, body: bytes = b"", method: bytes = b"GET") -> bytes:
    head = [method + b" " + target + b" HTTP/1.1", b"Host: gate", *headers]
    return b"".join(line + b"\r\n" for line in head) + b"\r\n" + body


AUTH = b"Authorization: Bearer " + K
MANY = tuple(b"X-H%d: v%d" % (i, i) for i in range(5000))
BAD_INPUT = {
    # name: (raw bytes, half-close after sending); an answer, when there is one, must be an error (>= 400)
    "64KiB-header-value-no-key": (_req(b"/v1/models", b"X-Big: " + b"a" * 65536), False),
    "64KiB-header-value-with-key": (_req(b"/v1/models", AUTH, b"X-Big: " + b"a" * 65536), False),
    "64KiB-authorization-value": (_req(b"/v1/models", b"Authorization: Bearer " + b"k" * 65536), False),
    "5000-headers-no-key": (_req(b"/v1/models", *MANY), False),
    "5000-headers-with-key": (_req(b"/v1/models", AUTH, *MANY), False),
    "5000-x-api-key-headers": (_req(b"/v1/models", *(b"x-api-key: w%d" % i for i in range(5000))), False),
    "200KB-request-target": (_req(b"/" + b"a" * 200_000), False),
    "garbage-bytes": (bytes(random.Random(1).randrange(256) for _ in range(4096)), True),
    "nul-and-control-bytes": (b"\x00\x01\x02\x03garbage\r\n\r\n", False),
    "bad-request-line": (b"GARBAGE\r\n\r\n", False),
    "request-line-too-many-parts": (b"GET / / / HTTP/1.1\r\nHost: gate\r\n\r\n", False),
    "header-without-colon": (_req(b"/v1/models", b"NoColonHere"), False),
    "space-in-header-name": (_req(b"/v1/models", b"Bad Name: v"), False),
    "content-length-not-a-number": (_req(b"/v1/models", b"Content-Length: abc", method=b"POST"), False),
    "content-length-negative": (_req(b"/v1/models", b"Content-Length: -5", method=b"POST"), False),
    "content-length-conflicting": (_req(b"/v1/models", b"Content-Length: 3", b"Content-Length: 5",
                                        body=b"abc", method=b"POST"), False),
    "content-length-and-chunked": (_req(b"/v1/models", AUTH, b"Content-Length: 3", b"Transfer-Encoding: chunked",
                                        body=b"0\r\n\r\n", method=b"POST"), False),
    "bad-chunk-size": (_req(b"/v1/models", AUTH, b"Transfer-Encoding: chunked", body=b"zz\r\nabc\r\n0\r\n\r\n",
                            method=b"POST"), True),
    "body-shorter-than-content-length": (_req(b"/v1/models", AUTH, b"Content-Length: 100", body=b"abc",
                                              method=b"POST"), True),
    "http-0.9-line": (b"GET /\r\n", True),
    "http-0.9-line-blank": (b"GET /\r\n\r\n", False),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_huge_and_malformed_requests_never_crash_the_gate(bad_input_gate, case):
    m, _ = bad_input_gate
    raw, half_close = BAD_INPUT[case]
    errors_before = sum("Addon error" in line or "Traceback" in line for line in m.lines)
    a = exchange(m.port, raw, half_close=half_close, timeout=5.0)
    # An error response or a closed connection; never a success, never a hang.
    assert a.status is not None or a.ended in ("closed", "reset"), f"{case}: {a.describe()}"
    if a.status is not None:
        assert a.status >= 400, f"{case}: {a.describe()}"
        assert K not in a.body
    healthy(m, case)
    time.sleep(0.05)
    errors_after = sum("Addon error" in line or "Traceback" in line for line in m.lines)
    assert errors_after == errors_before, f"{case}: an exception was logged:\n" + "\n".join(m.lines[-30:])


def test_head_answers_carry_no_body(bad_input_gate):
    """A response to HEAD has no content (RFC 9110, 9.3.2): with one, a client on a kept-alive
    connection reads the next response from the middle of that body. The gate's own answers too."""
    m, _ = bad_input_gate
    cases = {
        "200 /healthz": _req(b"/healthz", AUTH, method=b"HEAD"),
        "401 no key": _req(b"/v1/models", method=b"HEAD"),
        "401 absolute-form": b"HEAD http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n",  # (400 before #11)
        "400 control byte": _req(b"/v1/models", AUTH, b"X-Foo: a\x01b", method=b"HEAD"),
    }
    extras = {}
    for name, raw in cases.items():
        with socket.create_connection(("127.0.0.1", m.port), timeout=5.0) as sock:
            sock.sendall(raw)
            sock.settimeout(5.0)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                assert chunk, f"HEAD {name}: closed before the response head"
                data += chunk
            head, _, extra = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 " + name[:3].encode()), f"HEAD {name}: {head[:80]!r}"
            sock.settimeout(0.3)  # anything more that arrives now is a body
            try:
                while chunk := sock.recv(65536):
                    extra += chunk
            except socket.timeout:
                pass
        extras[name] = extra
    with_body = {name: f"{len(extra)} bytes: {extra[:60]!r}" for name, extra in extras.items() if extra}
    assert not with_body, f"HEAD answers that carry a body: {with_body}"
    healthy(m, "HEAD requests")
