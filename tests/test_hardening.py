"""Issue #11, case by case, against a live `mitmdump -s addon/auth.py` and an upstream that records
every request and connection exactly as it arrives (live.Recorder, Python's own lenient http.server):

1. header values with control bytes or obs-fold lines: 400 before auth, nothing forwarded
2. `?key=`: stripped when forwarding, fingerprinted in every line the gate logs
3. `Proxy-Authorization`, `X-Forwarded-Authorization`: never forwarded
4. decided at the request headers: denials, preflights, /healthz and refusals before the body
   (a 300 MiB denied POST, `Expect: 100-continue`); the body limit for allowed requests
5. config.yaml swapped for a FIFO, /dev/zero, a huge file, an alias bomb: the gate answers on
6. profile v4: no dot segment gets the /internal/ exemption
7. absolute-form: decided on its path, to upstream.url only (test_security covers the rest)
8. slow clients: each connection has auth_head_timeout to deliver a request head
9. chunked trailers: a clear 400, never mitmproxy's crash

Everything listens on 127.0.0.1 (ephemeral ports); every socket call, wait and loop is bounded;
every process and thread started here is stopped when its test or fixture ends. The figures
(memory, times) are printed under -q too.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import threading
import time
from pathlib import Path

import pytest

from authgate.settings import fingerprint
from authgate.snapshots import READ_WAIT
from live import IO_TIMEOUT, Gates, Recorder, closed_port, config_text, raw_exchange, request, write_config

KEY = "sk-hard0123456789abcdef0123456789ab"
K = KEY.encode()
AUTH = (b"Authorization", b"Bearer " + K)
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def confdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mitmconf")


@pytest.fixture
def recorder():
    with Recorder() as r:
        yield r


@pytest.fixture
def gate(tmp_path, confdir):
    with Gates(tmp_path, confdir) as start:
        yield start


def report(capsys, text: str) -> None:
    with capsys.disabled():
        print(f"\n[hardening] {text}")


def vm_kb(pid: int, field: str = "VmHWM") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def answer_to(port: int, raw: bytes, timeout: float = 3.0) -> tuple[bytes, float]:
    """Send `raw` (a head whose body never comes, say) and read what comes back, without closing
    our side: -> (the bytes up to EOF or `timeout`, seconds to the first byte)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        t0 = time.monotonic()
        sock.sendall(raw)
        out, first = b"", None
        try:
            while chunk := sock.recv(65536):
                first = first if first is not None else time.monotonic() - t0
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return out, first if first is not None else float("inf")


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


def read_response(rfile) -> tuple[int, dict[str, str]]:
    """One response with a Content-Length from a kept-alive connection: (status, headers)."""
    status = int(rfile.readline().split()[1])
    headers = {}
    while (line := rfile.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    rfile.read(int(headers.get("content-length", "0")))
    return status, headers


def status_of(raw: bytes) -> int | None:
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", raw)
    return int(m.group(1)) if m else None


def body_of(raw: bytes) -> dict:
    return json.loads(raw.partition(b"\r\n\r\n")[2])


# ====================================================================== 1. control bytes, obs-fold

BAD_LINES = {
    # name: the header line as it goes on the wire
    "bare CR injecting a key header": b"X-Foo: a\rx-goog-api-key: " + K,
    "bare CR injecting Transfer-Encoding": b"X-Foo: a\rTransfer-Encoding: chunked",
    "DEL after a Bearer key (a right x-api-key beside it)": b"Authorization: Bearer sk-abc\x7f",
    "NUL": b"X-Foo: a\x00b",
    "SOH in x-api-key": b"x-api-key: " + K + b"\x01",
    "VT inside": b"X-Foo: a\x0bb",
    "ESC": b"X-Foo: a\x1b[31m",
    "US": b"X-Foo: a\x1f",
    "obs-fold (space)": b"X-Foo: a\r\n x-api-key: " + K,
    "obs-fold (tab)": b"X-Foo: a\r\n\tb",
}


@pytest.mark.parametrize("mode", ["off", "strict"])
def test_1_header_values_the_original_refuses_get_400_and_nothing_is_forwarded(gate, recorder, mode):
    m = gate(config_text(mode, KEY, recorder.url))
    for what, line in BAD_LINES.items():
        name = line.split(b":")[0].decode()
        for extra in ([], [b"x-api-key: " + K]):
            head = [b"POST /v1/chat/completions HTTP/1.1", b"Host: gate", *extra, line,
                    b"Content-Length: 60", b"Connection: close"]
            # a body that a lenient upstream could take for a second request, carrying the key
            body = b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + K + b"\r\n\r\n"
            raw = b"\r\n".join(head) + b"\r\n\r\n" + body[:60]
            status, headers, payload = raw_exchange(m.port, raw)
            assert status == 400, f"{mode}, {what}: {status} {payload[:200]!r}"
            err = json.loads(payload)
            assert err["auth_gate"]["headers"] == {name: err["auth_gate"]["reason"]}, (what, err["auth_gate"])
            assert err["auth_gate"]["reason"] == ("header_obs_fold" if "obs-fold" in what else "header_control_byte")
            assert name in err["error"]["message"] and "400" in err["error"]["message"]
            assert K not in payload and b"sk-abc" not in payload and b"Transfer-Encoding: chunked" not in payload
            assert headers.get("x-auth-gate", "").startswith("deny; mode=") and "reason=header_" in headers["x-auth-gate"]
    assert recorder.requests == [] and recorder.connections == 0, [r["line"] for r in recorder.requests]
    # 0x80-0xFF fall through as before (the original's to_str(): only a key header would count as absent)
    status, _, _ = raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH, (b"X-Note", "café ☕".encode())]))
    assert status == 200
    (seen,) = recorder.requests
    assert ("X-Note", "café ☕".encode().decode("latin-1")) in seen["headers"]


# ====================================================================== 2 and 3. credentials by any road

QUERY_KEYS = [b"?key=" + K, b"?key=" + K + b"&alt=sse", b"?alt=sse&key=" + K, b"?KEY=" + K, b"?%6Bey=" + K,
              b"?key=" + K + b"&key=sk-other", b"?key=" + K + b"&x=1&key=" + K]


@pytest.mark.parametrize("mode", ["off", "strict", "all_except_health"])
def test_2_3_no_client_credential_is_forwarded(gate, recorder, mode):
    m = gate(config_text(mode, KEY, recorder.url), "--set", "flow_detail=0")
    credentials = [(b"Proxy-Authorization", b"Basic " + K), (b"X-Forwarded-Authorization", b"Bearer " + K),
                   (b"proxy-authorization", b"Bearer " + K)]
    for i, query in enumerate(QUERY_KEYS):
        path = f"/v1beta/models/m{i}:generateContent".encode()
        status, _, _ = raw_exchange(m.port, request(b"POST", path + query, [AUTH, *credentials], b"{}"))
        assert status == 200, (query, status)
        (seen,) = recorder.find(path.decode())
        assert K not in (seen["line"] + json.dumps(seen["headers"])).encode(), seen
        names = {n.lower() for n, _ in seen["headers"]}
        assert not names & {"authorization", "proxy-authorization", "x-forwarded-authorization"}, names
        assert "key=" not in seen["path"].lower() and "%6bey" not in seen["path"].lower()
        assert ("alt=sse" in seen["path"]) == (b"alt=sse" in query) and ("x=1" in seen["path"]) == (b"x=1" in query)
    # Denied with only a query key: the gate's log line shows the fingerprint, never the key
    if mode != "off":
        for query in QUERY_KEYS[:2]:
            status, _, _ = raw_exchange(m.port, request(b"GET", b"/v1beta/models" + query, []))
            assert status == 401
        assert m.wait_for(fingerprint(KEY), timeout=3.0), m.output[-2000:]
    # flow_detail=0: mitmproxy prints no flow, so nothing mitmdump printed may hold the key
    out = m.stop()
    assert KEY not in out, [line for line in out.splitlines() if KEY in line][:3]


def test_2_the_gates_own_lines_never_hold_a_query_key_at_any_flow_detail(gate, recorder):
    """flow_detail 1-4: mitmproxy's own dump of each flow prints the request line as the client sent
    it (README, Security); the gate's lines (the decision, errors) carry only the fingerprint."""
    for detail in ("1", "2", "4"):
        m = gate(config_text("strict", KEY, recorder.url), "--set", f"flow_detail={detail}")
        raw_exchange(m.port, request(b"GET", b"/v1beta/models?key=" + K, []))
        raw_exchange(m.port, request(b"GET", b"/v1beta/models?alt=sse&key=" + K, [(b"x-goog-api-key", b"sk-wrong")]))
        assert m.wait_for("— GET /v1beta/models?alt=sse&key=<", timeout=3.0)
        lines = m.stop().splitlines()
        gate_lines = [line for line in lines if re.match(r"^\[[\d:.]+\] \d{3} · ", line)]  # the gate's log
        assert len(gate_lines) == 2 and all(fingerprint(KEY) in line for line in gate_lines), gate_lines
        assert not [line for line in lines if KEY in line and " · " in line]  # nor its flow view (Auth gate)
    assert recorder.requests == []


# ====================================================================== 4. decided at the request headers

def test_4_a_300_mib_denied_post_is_answered_before_its_body(gate, recorder, capsys):
    m = gate(config_text("strict", KEY, recorder.url))
    base = vm_kb(m.proc.pid)
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gate\r\nContent-Type: application/json\r\n" \
           b"Content-Length: %d\r\n\r\n" % (300 * MiB)
    t0 = time.monotonic()
    r = push(m.port, head, 300 * MiB)
    took = time.monotonic() - t0
    time.sleep(0.3)
    peak, now = vm_kb(m.proc.pid), vm_kb(m.proc.pid, "VmRSS")
    assert status_of(r["answer"]) == 401, r["answer"][:200]
    assert r["first"] < 1.0 and r["sent"] < 64 * MiB, (r["first"], r["sent"])
    assert b"connection: close" in r["answer"].lower()
    assert peak - base < 40 * 1024, f"peak RSS grew by {(peak - base) // 1024} MiB"
    assert recorder.requests == [] and recorder.connections == 0
    report(capsys, f"300 MiB POST without a key: 401 after {r['first'] * 1000:.0f} ms, the client had pushed "
                   f"{r['sent'] / MiB:.1f} MiB, all done in {took:.2f} s; mitmdump peak RSS {base // 1024} -> "
                   f"{peak // 1024} MiB (+{(peak - base) / 1024:.1f}), now {now // 1024} MiB")


def test_4_expect_100_continue_on_a_denial_gets_the_401_not_100(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url))
    head = (b"POST /v1/messages HTTP/1.1\r\nHost: gate\r\nx-api-key: sk-wrong\r\nContent-Length: 1000\r\n"
            b"Expect: 100-continue\r\n\r\n")
    out, first = answer_to(m.port, head)
    assert out.startswith(b"HTTP/1.1 401 "), out[:100]
    assert b"100 Continue" not in out and first < 1.0
    assert body_of(out)["error"]["type"] == "authentication_error"  # x-api-key: Anthropic's shape
    # with the key, the 100 comes, then the upstream's answer
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(head.replace(b"sk-wrong", K).replace(b"1000", b"2"))
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"{}")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    assert len(recorder.requests) == 1 and recorder.requests[0]["body"] == b"{}"


def test_4_after_a_100_continue_an_upstream_failure_still_gets_the_json_502(gate):
    dead = f"http://127.0.0.1:{closed_port()}"
    m = gate(config_text("strict", KEY, dead))
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer " + K +
                     b"\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    assert status_of(out) == 502 and body_of(out)["error"]["code"] == "upstream_unreachable", out[:200]


@pytest.mark.parametrize("mode, head, status", [
    ("strict", b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 10\r\n", 401),
    ("strict", b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 401),
    ("strict", b"OPTIONS /v1/chat/completions HTTP/1.1\r\nContent-Length: 10\r\nOrigin: http://x\r\n", 200),
    ("all_except_health", b"POST /healthz HTTP/1.1\r\nContent-Length: 10\r\n", 405),
    ("all_except_health", b"GET /healthz HTTP/1.1\r\nContent-Length: 10\r\n", 200),
    ("off", b"POST /v1/chat/completions HTTP/1.1\r\nX-Foo: a\x01\r\nContent-Length: 10\r\n", 400),
], ids=["denial", "denial-chunked", "preflight", "healthz-405", "healthz", "refusal"])
def test_4_local_answers_never_wait_for_the_body(gate, recorder, mode, head, status):
    m = gate(config_text(mode, KEY, recorder.url))
    out, first = answer_to(m.port, head + b"Host: gate\r\n\r\n")  # the body never comes
    assert status_of(out) == status and first < 1.0, (out[:120], first)
    assert recorder.requests == [] and recorder.connections == 0


def test_4_a_denial_without_a_body_keeps_the_connection(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url))
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        rfile = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: gate\r\n\r\n")
            status, headers = read_response(rfile)
            assert status == 401 and headers.get("connection") != "close"
        rfile.close()
    assert recorder.connections == 0


def test_4_the_body_limit_for_allowed_requests(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url), "--set", "auth_max_body_size=1m")
    auth = b"Authorization: Bearer " + K + b"\r\n"
    # Content-Length over the limit: 413 at the headers, the body never read
    out, first = answer_to(m.port, b"POST /big HTTP/1.1\r\nHost: gate\r\n" + auth + b"Content-Length: %d\r\n\r\n" % (MiB + 1))
    assert status_of(out) == 413 and first < 1.0 and body_of(out)["error"]["code"] == "request_too_large"
    # exactly the limit passes, whole
    status, _, _ = raw_exchange(m.port, request(b"POST", b"/exact", [AUTH], b"x" * MiB))
    assert status == 200 and len(recorder.find("/exact")[0]["body"]) == MiB
    # chunked: 413 as soon as it grows past the limit
    head = b"POST /chunked-big HTTP/1.1\r\nHost: gate\r\n" + auth + b"Transfer-Encoding: chunked\r\n\r\n"
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(head)
        got = b""
        try:
            for _ in range(8):  # 8 chunks of 256 KiB: past 1 MiB after the fifth
                sock.sendall(b"40000\r\n" + b"y" * 0x40000 + b"\r\n")
                time.sleep(0.05)
        except OSError:
            pass
        try:
            while chunk := sock.recv(65536):
                got += chunk
        except (OSError, socket.timeout):
            pass
    assert status_of(got) == 413, got[:200]
    assert recorder.find("/chunked-big") == [] and recorder.find("/big") == []
    status, _, _ = raw_exchange(m.port, b"POST /chunked-small HTTP/1.1\r\nHost: gate\r\n" + auth
                                + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert status == 200 and recorder.find("/chunked-small")[0]["body"] == b"hello"
    # a denial comes before the limit, as the original's auth middleware comes before its body limit
    out, _ = answer_to(m.port, b"POST /big HTTP/1.1\r\nHost: gate\r\nContent-Length: %d\r\n\r\n" % (MiB + 1))
    assert status_of(out) == 401


# ====================================================================== 5. config.yaml that could hang the gate

ALIAS_BOMB = "".join(f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")) \
    .join(["a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n", "proxy:\n  auth_mode: strict\n  api_key: *i\n"])


def _fifo(path: Path) -> None:
    tmp = path.with_name(".fifo")
    os.mkfifo(tmp)
    os.replace(tmp, path)


def _zero(path: Path) -> None:
    tmp = path.with_name(".zero")
    os.symlink("/dev/zero", tmp)
    os.replace(tmp, path)


CONFIG_SWAPS = {
    "fifo": (_fifo, "is a FIFO"),
    "symlink-to-dev-zero": (_zero, "is a character device"),
    "10-MB-yaml": (lambda p: write_config(p, "proxy:\n  auth_mode: off\n" + "# padding\n" * 1_000_000),
                   "is larger than 256 KiB"),
    "alias-bomb": (lambda p: write_config(p, ALIAS_BOMB), "an anchor (&) or alias (*)"),
}


@pytest.mark.parametrize("swap", list(CONFIG_SWAPS))
def test_5_a_config_that_could_hang_or_exhaust_the_gate_is_refused_at_once(gate, recorder, capsys, swap):
    m = gate(config_text("strict", KEY, recorder.url))
    make, says = CONFIG_SWAPS[swap]
    base = vm_kb(m.proc.pid, "VmRSS")
    make(m.config)
    times = []
    for _ in range(5):
        t0 = time.monotonic()
        no_key = raw_exchange(m.port, request(b"GET", b"/v1/models", []), timeout=5.0)[0]
        good = raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH]), timeout=5.0)[0]
        times.append((time.monotonic() - t0) / 2)
        assert (no_key, good) == (401, 200), f"{swap}: {no_key}, {good}"  # the last good config, still
    time.sleep(1.5)  # the idle watcher's turn
    assert m.proc.poll() is None
    notices = [line for line in m.lines if says in line]
    assert len(notices) == 1 and len(notices[0]) < 600, notices
    grew = vm_kb(m.proc.pid, "VmRSS") - base
    assert grew < 30 * 1024, f"{swap}: RSS grew by {grew // 1024} MiB"
    said = re.search(r"\((?:file|YAML)\): (.*?)\. Fix", notices[0]).group(1)
    report(capsys, f"config.yaml swapped for {swap}: requests answered in {max(times) * 1000:.1f} ms at most "
                   f"(median {sorted(times)[2] * 1000:.1f} ms); RSS {grew / 1024:+.1f} MiB; the gate: \"{said[:90]}\"")
    write_config(m.config, config_text("off", KEY, recorder.url))  # a good file again applies at once
    assert raw_exchange(m.port, request(b"GET", b"/v1/models", []))[0] == 200


def test_5_a_slow_to_parse_config_is_read_off_the_event_loop(gate, recorder, capsys):
    """A 250 KiB YAML list takes a second or more to parse: the gate reads it in a thread, a
    request waits for it at most snapshots.READ_WAIT (then the last good config decides it)."""
    m = gate(config_text("strict", KEY, recorder.url))
    items = ",".join(["1"] * 120_000)
    write_config(m.config, f"proxy:\n  auth_mode: strict\n  api_key: \"{KEY}\"\n  port: [{items}]\n")
    t0 = time.monotonic()
    status = raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH]), timeout=10.0)[0]
    took = time.monotonic() - t0
    assert status == 200 and took < READ_WAIT + 0.5, took
    assert m.wait_for("proxy.port: [1, 1, 1, 1, ...] is not a port number", timeout=10.0)
    report(capsys, f"a 250 KiB config.yaml (a list, slow to parse) while a request came: answered in {took:.2f} s")


# ====================================================================== 6. v4: no dot segment gets the exemption

def test_6_v4_internal_dot_segments_need_the_key(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url, extra="  profile: v4"))
    for path in (b"/internal/../v1/chat/completions", b"/internal/%2e%2e/v1/chat/completions",
                 b"/internal/..%2fv1/chat/completions", b"/internal/%2E%2E%2Fv1/chat/completions",
                 b"/internal/./../v1/models", b"/internal/%252e%252e/v1/models", b"/internal\\..\\v1/models"):
        status, _, payload = raw_exchange(m.port, request(b"POST", path, [], b"{}"))
        assert status == 401, (path, status, payload[:200])
        if path.startswith(b"/internal/"):  # (a backslash is no separator: no /internal/ path at all)
            assert "internal_dot_segments" in json.loads(payload)["auth_gate"]["notes"], path
    assert recorder.requests == [] and recorder.connections == 0
    status, _, _ = raw_exchange(m.port, request(b"POST", b"/internal/warmup", [], b"{}"))
    assert status == 200 and recorder.requests[0]["path"] == "/internal/warmup"  # the exemption itself stays


# ====================================================================== 7. absolute-form

def test_7_absolute_form_healthz_is_the_gates_own_route(gate, recorder):
    m = gate(config_text("all_except_health", KEY, recorder.url))
    status, _, payload = raw_exchange(m.port, request(b"GET", b"http://127.0.0.1:8045/healthz", [],
                                                      host=b"127.0.0.1:8045"))
    assert (status, json.loads(payload)) == (200, {"status": "ok"})
    assert recorder.requests == [] and recorder.connections == 0


# ====================================================================== 8. slow clients

SLOW = 300  # connections trickling their headers
HEAD_TIMEOUT = 2


def test_8_slow_clients_are_closed_after_auth_head_timeout(gate, recorder, capsys):
    m = gate(config_text("strict", KEY, recorder.url), "--set", f"auth_head_timeout={HEAD_TIMEOUT}")
    opened: list[float] = []  # when each connection was accepted (its deadline runs from there)

    def connect() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT)
        opened.append(time.monotonic())
        if len(opened) % 50 == 0:
            time.sleep(0.05)  # let mitmproxy accept them: its listen backlog is 100
        return s

    socks = [connect() for _ in range(SLOW)]
    idle = [connect() for _ in range(20)]
    head = b"GET /v1/models HTTP/1.1\r\nHost: gate\r\nX-Slow: " + b"a" * 100
    closed: dict[int, float] = {}  # connection -> seconds from its start to its end
    t0 = opened[0]
    try:
        for s in socks + idle:
            s.setblocking(False)
        step = 0
        during = None
        while time.monotonic() - t0 < HEAD_TIMEOUT + 4 and len(closed) < len(socks) + len(idle):
            for i, s in enumerate(socks + idle):
                if i in closed:
                    continue
                try:
                    if not s.recv(4096):
                        closed[i] = time.monotonic() - opened[i]
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    closed[i] = time.monotonic() - opened[i]
                    continue
                if i < SLOW and step < len(head):
                    try:
                        s.send(head[step:step + 1])  # one byte a step: never a whole head
                    except OSError:
                        closed[i] = time.monotonic() - opened[i]
            if during is None and time.monotonic() - t0 > 1.0:  # the gate answers others meanwhile
                t1 = time.monotonic()
                during = (raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH]))[0], time.monotonic() - t1)
            step += 1
            time.sleep(0.1)
    finally:
        for s in socks + idle:
            s.close()
    assert len(closed) == len(socks) + len(idle), f"{len(closed)} of {len(socks) + len(idle)} closed"
    assert HEAD_TIMEOUT - 0.2 < min(closed.values()) and max(closed.values()) < HEAD_TIMEOUT + 2.0, \
        (min(closed.values()), max(closed.values()))
    assert during[0] == 200 and during[1] < 1.0, during
    assert len(recorder.requests) == 1
    report(capsys, f"{SLOW} connections trickling headers and 20 idle ones, auth_head_timeout={HEAD_TIMEOUT}: "
                   f"all closed between {min(closed.values()):.1f} and {max(closed.values()):.1f} s; a request "
                   f"meanwhile: {during[0]} in {during[1] * 1000:.0f} ms")


def test_8_a_kept_alive_connection_has_the_same_time_for_its_next_request(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url), "--set", f"auth_head_timeout={HEAD_TIMEOUT}")
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        rfile = sock.makefile("rb")
        for pause in (0, HEAD_TIMEOUT / 2):  # within the time: served
            time.sleep(pause)
            sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer " + K + b"\r\n\r\n")
            assert read_response(rfile)[0] == 200
        t0 = time.monotonic()
        assert rfile.read(1) == b""  # idle past the deadline: closed
        assert time.monotonic() - t0 < HEAD_TIMEOUT + 2.0
        rfile.close()


def test_8_a_head_without_end_is_cut_at_hypers_limit(gate, recorder, capsys):
    """Time is bounded above; bytes too: a head that grows past hyper's buffer (408 KiB) gets 431."""
    m = gate(config_text("strict", KEY, recorder.url))
    base = vm_kb(m.proc.pid)
    r = push(m.port, b"GET /v1/models HTTP/1.1\r\nHost: gate\r\nX-Big: ", 200 * MiB)
    peak = vm_kb(m.proc.pid)
    assert status_of(r["answer"]) == 431 and body_of(r["answer"])["error"]["code"] == "request_header_fields_too_large"
    assert r["sent"] < 32 * MiB and peak - base < 40 * 1024, (r["sent"], peak - base)
    assert recorder.connections == 0
    report(capsys, f"a request head without end: 431 after the client pushed {r['sent'] / MiB:.1f} MiB; "
                   f"peak RSS +{(peak - base) / 1024:.1f} MiB")


# ====================================================================== 9. trailers

def test_9_chunked_trailers_get_a_clear_400_never_a_crash(gate, recorder):
    m = gate(config_text("strict", KEY, recorder.url))
    body = b"5\r\nhello\r\n0\r\nX-Trailer: v\r\n\r\n"
    for headers, expected in (([AUTH], (400,)), ([], (400, 401))):  # denied: whichever comes first
        for split in (False, True):
            raw = request(b"POST", b"/t", [*headers, (b"Transfer-Encoding", b"chunked"), (b"Trailer", b"X-Trailer")])
            raw = raw.replace(b"Content-Length", b"X-None")
            with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
                sock.settimeout(5.0)
                sock.sendall(raw)
                if split:
                    time.sleep(0.3)
                try:
                    sock.sendall(body)
                except OSError:
                    pass
                out = b""
                try:
                    while chunk := sock.recv(65536):
                        out += chunk
                except (OSError, socket.timeout):
                    pass
            assert status_of(out) in expected, (headers, split, out[:200])
            if status_of(out) == 400:
                assert body_of(out)["error"]["code"] == "trailers_not_supported"
    assert recorder.requests == [] and recorder.connections == 0
    assert raw_exchange(m.port, request(b"GET", b"/healthz", [AUTH]))[0] == 200
    assert "has crashed" not in m.output and "Traceback" not in m.output


def test_9_an_upstreams_trailers_give_the_client_a_json_502(gate):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5.0)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: v\r\n\r\n")
            time.sleep(0.5)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        m = gate(config_text("strict", KEY, f"http://127.0.0.1:{port}"))
        status, headers, payload = raw_exchange(m.port, request(b"GET", b"/v1/models", [AUTH]), timeout=5.0)
        assert status == 502 and json.loads(payload)["error"]["code"] == "upstream_error", payload[:200]
        assert "has crashed" not in m.output
    finally:
        server.join(5.0)
        listener.close()
