"""Issue #22: every allowed answer reaches the client as it arrives, in flat memory, against a live
`mitmdump -s addon/auth.py` (strict, the right key) in front of an upstream that sends its pieces on
a schedule (streaming_probes.PaceUpstream). Each figure is taken three ways: straight to the
upstream, through bare mitmdump in reverse mode with its own `stream_large_bodies=1m` (the
baseline), and through the gate.

* The issue's table: an SSE answer, chunked NDJSON and chunked JSON (Gemini's streamGenerateContent
  without alt=sse), one piece every 200 ms for 3 s: when each piece arrives, against when the
  upstream sent it; and the time to the first byte, on fresh connections, many times over.
* A 300 MiB download and a 90 MiB upload (Content-Length and chunked): the first byte, the time,
  mitmdump's peak RSS over its idle RSS (/proc VmHWM, reset before each run).
* 20 clients streaming SSE at once: every piece in time, the peak RSS.
* The body limit on a streamed upload (auth_max_body_size): a 413 while nothing is answered yet,
  else the connections cut and the log saying why; the gate's JSON 504 and 502 for a streamed upload.

Bounds asserted: the issue's (+50 MiB of RSS, no piece held back), with margins for this shared
2-core machine (a piece within 0.5 s of leaving the upstream where buffering holds the first for
2.8 s; the first byte within 1 s where buffering takes 1.7 s for 300 MiB); the figures are printed
under -q too. Everything listens on 127.0.0.1 (ephemeral ports); every socket call and wait is
bounded; every process and thread started here is stopped when its test ends.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import pytest

from live import Gate, closed_port, config_text, write_config
from live_fixtures import confdir, gate, report  # noqa: F401
from raw_http import IO_TIMEOUT
from streaming_probes import (
    EVERY,
    KINDS,
    PIECES,
    Memory,
    MiB,
    PaceUpstream,
    bare_mitmdump,
    fetch,
    median,
    mib,
    ms,
)

KEY = "sk-stream0123456789abcdef0123456"
AUTH = [("Authorization", f"Bearer {KEY}")]
BIG = 300 * MiB
UPLOAD = 90 * MiB
CLIENTS = 20
RSS_BOUND_KB = 50 * 1024  # the issue's: within +50 MB of idle
LATE = 0.5  # seconds a piece may take from the upstream to the client (buffering: 2.8 s for the first)
REPEATS = 15  # fresh-connection first-byte samples per kind and path


@pytest.fixture(scope="module")
def pace():
    with PaceUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def paths(pace, confdir, tmp_path_factory):
    """The three ways to the upstream: direct, bare mitmdump (stream_large_bodies=1m), the gate."""
    config = tmp_path_factory.mktemp("streaming") / "config.yaml"
    write_config(config, config_text("strict", KEY, pace.url))
    with bare_mitmdump(pace.url, confdir, "--set", "stream_large_bodies=1m") as bare, \
            Gate(config, confdir=confdir) as gate:
        for port in (bare.port, gate.port):  # warm both up (imports, first connection)
            fetch(port, "/sse/warm?n=1", headers=AUTH)
        yield {"direct": (pace.port, None), "bare": (bare.port, bare), "gate": (gate.port, gate)}


def sid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


# ====================================================================== the table

def test_pieces_arrive_as_the_upstream_sends_them(paths, pace, capsys):
    """SSE, chunked NDJSON, chunked JSON: 15 pieces over 3 s, all nine streams at once."""
    runs: dict[tuple[str, str], tuple[str, object]] = {}
    threads = []
    for kind in KINDS:
        for path, (port, _) in paths.items():
            ident = sid(f"{kind}-{path}")

            def run(port=port, kind=kind, ident=ident, key=(kind, path)):
                runs[key] = (ident, fetch(port, f"/{kind}/{ident}", headers=AUTH, keep=0))
            threads.append(threading.Thread(target=run))
    for t in threads:
        t.start()
    for t in threads:
        t.join(PIECES * EVERY + 30)
    lines = []
    for (kind, path), (ident, f) in sorted(runs.items()):
        delays = f.delays(pace.sent[ident])
        lines.append(f"{kind:6} {path:6}: first body byte {ms(f.first_body):>10}, pieces {len(f.marks)}/{PIECES}, "
                     f"upstream -> client median {ms(median(delays) if delays else None)}, "
                     f"max {ms(max(delays) if delays else None)}")
    report(capsys, "streaming", "15 pieces, one every 200 ms (arrival after the upstream sent each):\n  "
           + "\n  ".join(lines))
    for kind in KINDS:
        ident, f = runs[kind, "gate"]
        assert f.status == 200 and f.ended == "complete" and len(f.marks) == PIECES, (kind, f)
        delays = f.delays(pace.sent[ident])
        assert max(delays) < LATE, f"{kind}: a piece was held back {max(delays):.2f} s"
        assert f.first_body < LATE, (kind, f.first_body)


def test_first_byte_on_a_fresh_connection(paths, capsys):
    """The time to the first body byte of a one-piece answer, on a new connection each time,
    interleaved over the three paths: what the gate adds over direct, and over bare mitmdump."""
    firsts: dict[tuple[str, str], list[float]] = {}
    for _ in range(REPEATS):
        for kind in KINDS:
            for path, (port, _) in paths.items():
                f = fetch(port, f"/{kind}/{sid('first')}?n=1", headers=AUTH, keep=0)
                assert f.status == 200 and f.first_body is not None, (kind, path, f)
                firsts.setdefault((kind, path), []).append(f.first_body)
    lines, added = [], {}
    for kind in KINDS:
        med = {path: median(firsts[kind, path]) for path in paths}
        added[kind] = med["gate"] - med["direct"]
        lines.append(f"{kind:6}: direct {ms(med['direct'])}, bare mitmdump {ms(med['bare'])}, gate {ms(med['gate'])} "
                     f"(+{ms(added[kind])} over direct, {ms(med['gate'] - med['bare'])} over bare; "
                     f"gate's fastest {ms(min(firsts[kind, 'gate']))}, slowest {ms(max(firsts[kind, 'gate']))})")
    report(capsys, "streaming", f"first body byte, median of {REPEATS} fresh connections:\n  " + "\n  ".join(lines))
    for kind, extra in added.items():
        assert extra < 0.025, f"{kind}: the gate adds {extra * 1000:.1f} ms to the first byte"
    assert "Streaming re" not in paths["gate"][1].output  # mitmproxy's two lines per streamed flow: dropped


# ====================================================================== big bodies, memory

def _transfer(paths, label: str, **kw) -> dict[str, tuple]:
    """The same exchange on the three paths in turn: path -> (Fetch, idle RSS kB, peak RSS kB)."""
    out = {}
    for path, (port, proc) in paths.items():
        mem = Memory(proc.proc.pid) if proc else None
        idle = mem.reset() if mem else None
        f = fetch(port, label.format(sid=sid(path)), headers=AUTH, markers=False, keep=256, **kw)
        out[path] = (f, idle, mem.peak() if mem else None)
    return out


def _figures(results: dict[str, tuple], what: str) -> str:
    lines = []
    for path, (f, idle, peak) in results.items():
        rss = f", RSS {mib(idle)} idle, peak {mib(peak)} (+{(peak - idle) / 1024:.1f} MiB)" if idle else ""
        lines.append(f"{path:6}: {f.status} {f.ended}, first byte {ms(f.first)}, {f.size / MiB:.0f} MiB back, "
                     f"{f.sent / MiB:.0f} MiB sent, {f.took:.2f} s{rss}")
    return f"{what}:\n  " + "\n  ".join(lines)


def test_a_300_mib_answer_streams_in_flat_memory(paths, capsys):
    results = _transfer(paths, f"/big/{BIG}", timeout=120)
    report(capsys, "streaming", _figures(results, "a 300 MiB answer (Content-Length)"))
    f, idle, peak = results["gate"]
    assert f.status == 200 and f.ended == "complete" and f.size == BIG, f
    assert f.first < 1.0, f"first byte after {f.first:.2f} s: the answer was held"
    assert peak - idle < RSS_BOUND_KB, f"peak RSS +{(peak - idle) / 1024:.0f} MiB"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_90_mib_upload_streams_in_flat_memory(paths, pace, chunked, capsys):
    results = _transfer(paths, "/upload/{sid}", method="POST", body_size=UPLOAD, chunked=chunked, timeout=120)
    ups = {path: pace.uploads[next(k for k in reversed(pace.uploads) if k.startswith(path))] for path in paths}
    text = _figures(results, f"a 90 MiB upload ({'chunked' if chunked else 'Content-Length'})")
    text += "\n  " + "\n  ".join(
        f"{path:6}: the upstream had the first byte {ms(up['first'] - results[path][0].t0)} after the head went "
        f"out; the client finished sending at {ms(results[path][0].sent_done - results[path][0].t0)}"
        for path, up in ups.items())
    report(capsys, "streaming", text)
    f, idle, peak = results["gate"]
    assert f.status == 200 and json.loads(f.body) == {"received": UPLOAD}, f
    assert ups["gate"]["complete"] and ups["gate"]["bytes"] == UPLOAD
    # streamed: the upstream was reading while the client was still sending
    assert ups["gate"]["first"] < f.sent_done - 0.05, (ups["gate"]["first"] - f.t0, f.sent_done - f.t0)
    assert peak - idle < RSS_BOUND_KB, f"peak RSS +{(peak - idle) / 1024:.0f} MiB"


def _many(port: int) -> dict[str, object]:
    """CLIENTS SSE streams at once on `port`: stream id -> Fetch."""
    runs: dict[str, object] = {}

    def run(ident: str) -> None:
        runs[ident] = fetch(port, f"/sse/{ident}", headers=AUTH, keep=0)

    threads = [threading.Thread(target=run, args=(sid("many"),)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(PIECES * EVERY + 30)
    return runs


def test_20_clients_stream_sse_at_once(paths, pace, capsys):
    """20 SSE streams at once on each path. Bare mitmdump holds each whole (it streams an event
    stream only when told to). Through the gate the first bytes come after 50-150 ms here: mitmproxy
    sets the 20 new connections up one after the other, a few ms each (bare mitmdump's one-piece
    answers take as long), while this process runs the 20 clients and the upstream's threads."""
    figures = {}
    for path, (port, proc) in paths.items():
        mem = Memory(proc.proc.pid) if proc else None
        idle = mem.reset() if mem else 0
        runs = _many(port)
        peak = mem.peak() if mem else 0
        firsts = [f.first_body for f in runs.values() if f.first_body is not None]
        delays = [d for ident, f in runs.items() for d in f.delays(pace.sent[ident])]
        figures[path] = runs, firsts, delays, idle, peak
    lines = []
    for path, (runs, firsts, delays, idle, peak) in figures.items():
        rss = f"; RSS {mib(idle)} idle, peak {mib(peak)} (+{(peak - idle) / 1024:.1f} MiB)" if idle else ""
        lines.append(f"{path:6}: {sum(len(f.marks) for f in runs.values())}/{CLIENTS * PIECES} pieces; first body "
                     f"byte median {ms(median(firsts))}, slowest {ms(max(firsts))}; upstream -> client median "
                     f"{ms(median(delays))}, max {ms(max(delays))}{rss}")
    report(capsys, "streaming", f"{CLIENTS} SSE clients at once:\n  " + "\n  ".join(lines))
    runs, firsts, delays, idle, peak = figures["gate"]
    assert len(runs) == CLIENTS and all(len(f.marks) == PIECES and f.status == 200 for f in runs.values())
    assert max(firsts) < 1.0 and max(delays) < LATE, (max(firsts), max(delays))
    assert peak - idle < RSS_BOUND_KB


# ====================================================================== the body limit, the gate's own answers

def _chunk(size: int) -> bytes:
    return b"%x\r\n%s\r\n" % (size, b"y" * size)


def test_a_streamed_body_over_the_limit(gate, pace):
    """auth_max_body_size on a chunked upload that streams: the 413 while nothing is answered (the
    upstream had the start, its request cut); once the upstream has answered, no 413 can follow:
    the client keeps that answer, both connections are cut, and the log says why."""
    m = gate(config_text("strict", KEY, pace.url), "--set", "auth_max_body_size=1m")
    f = fetch(m.port, "/upload/over-early", "POST", headers=AUTH, body_size=4 * MiB, chunked=True, markers=False)
    assert f.status == 413 and json.loads(f.body)["error"]["code"] == "request_too_large", f
    up = pace.uploads["over-early"]
    assert not up["complete"] and 0 < up["bytes"] <= MiB, up  # it streamed, and stopped at the limit

    head = (f"POST /upload/over-late?answer=early HTTP/1.1\r\nHost: gate\r\nAuthorization: Bearer {KEY}\r\n"
            f"Transfer-Encoding: chunked\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", m.port), timeout=IO_TIMEOUT) as sock:
        sock.settimeout(IO_TIMEOUT)
        sock.sendall(head + _chunk(64 * 1024))
        answer = b""
        while b'"before the body"}' not in answer:  # the upstream's answer, before the body is all in
            data = sock.recv(65536)
            assert data, answer
            answer += data
        sent = 64 * 1024
        try:
            while sent < 4 * MiB:  # then past the limit
                sock.sendall(_chunk(256 * 1024))
                sent += 256 * 1024
                time.sleep(0.01)
        except OSError:
            pass
        rest = b""
        try:
            while data := sock.recv(65536):
                rest += data
        except OSError:
            pass
    assert answer.startswith(b"HTTP/1.1 200 ") and rest == b"", (answer[:200], rest[:200])  # no second answer
    assert sent < 4 * MiB, "the gate read the whole body past its limit"
    assert not pace.uploads["over-late"]["complete"]
    assert m.wait_for("went over auth_max_body_size (1.0 MiB) after the upstream had begun to answer", 5.0), m.output
    assert fetch(m.port, "/sse/after-cut?n=1", headers=AUTH).status == 200  # and the gate serves on


def test_a_streamed_upload_still_gets_the_gates_504_and_502(gate, pace):
    m = gate(config_text("strict", KEY, pace.url, upstream_timeout=1))
    f = fetch(m.port, "/upload/hang?hang=1", "POST", headers=AUTH, body_size=8 * MiB, markers=False, timeout=10)
    assert f.status == 504 and json.loads(f.body)["error"]["code"] == "upstream_timeout", f
    assert pace.uploads["hang"]["complete"] and 1.0 <= f.took < 4.0, (pace.uploads["hang"], f.took)
    dead = gate(config_text("strict", KEY, f"http://127.0.0.1:{closed_port()}"))
    f = fetch(dead.port, "/upload/none", "POST", headers=AUTH, body_size=8 * MiB, markers=False, timeout=10)
    assert f.status == 502 and json.loads(f.body)["error"]["code"] == "upstream_unreachable", f
