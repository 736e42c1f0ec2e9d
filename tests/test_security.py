"""Security: what the gate promises, each against a live `mitmdump -s addon/auth.py` (or mitmweb).

- No configured key (nor an upstream credential, nor a presented key) in full in the gate's own log
  lines, at any level, through key generation, reload, bad edits and denials.
- Keys are compared in constant time (hmac.compare_digest decides).
- The client's key headers never reach the upstream, in any mode, whatever their case or count.
- Absolute-form and CONNECT requests are refused: not an open proxy; nothing reaches the upstream.
- mitmweb's UI stays on loopback unless forced.

Everything listens on 127.0.0.1 (ephemeral ports, mitmweb's forced case on 0.0.0.0 briefly); every
socket call and wait is bounded; every process and thread started here is stopped.
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import authgate.key_headers as key_headers
from authgate.decision import RequestView, decide
from authgate.settings import fingerprint
from live import (ADDON, IO_TIMEOUT, WEB_HAS_AUTH, Gates, Process, Recorder, closed_port, config_text, raw_exchange,
                  request, write_config)

KEY = "sk-sec0123456789abcdef0123456789ab"
K = KEY.encode()
WRONG = b"sk-presentedWRONG0123456789abcdef0"  # a long wrong key a client presents
SMART = b"Bearer \xe2\x80\x9c" + K + b"\xe2\x80\x9d"
KEY_HEADER_NAMES = {"authorization", "x-api-key", "x-goog-api-key"}
START_TIMEOUT = 25.0
EXIT_TIMEOUT = 20.0
EMPTY_KEY_LOG = "Proxy auth is enabled but api_key is empty; denying request"
# A line of mitmproxy's own flow dump (flow_detail >= 2) showing one of the client's key headers.
CLIENT_KEY_HEADER_DUMP = re.compile(r"^ {4}(authorization|x-api-key|x-goog-api-key): ", re.I)
# More of that dump: a request line (flow_detail >= 1), the URL as the client sent it, a `?key=`
# included; the proxy credential headers (>= 2); the query parameters (>= 3), `key` among them.
CLIENT_REQUEST_DUMP = re.compile(r"^[0-9a-f.:\[\]]+: [A-Z]+ https?://\S+$|^ {4}(proxy-authorization|key): ", re.I)
# Every credential header a client may send: none is ever forwarded (but in shadow mode).
CREDENTIAL_HEADER_NAMES = KEY_HEADER_NAMES | {"proxy-authorization", "x-forwarded-authorization"}


# ====================================================================== processes and servers

@pytest.fixture(scope="module")
def confdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mitmconf")


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.stop()


@pytest.fixture
def gate(tmp_path, confdir):
    with Gates(tmp_path, confdir) as start:
        yield start


# ====================================================================== no key in the logs

CAPTURE_SCRIPT = '''
"""Test helper: every record of the gate's loggers ("authgate" and below), at every level, to a file."""
import json, logging

PATH = {path!r}


class Capture(logging.Handler):
    def emit(self, record):
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\\n" + logging.Formatter().formatException(record.exc_info)
            with open(PATH, "a", encoding="utf-8", errors="backslashreplace") as f:
                f.write(json.dumps({{"logger": record.name, "level": record.levelname, "message": text}}) + "\\n")
        except Exception:
            pass


logger = logging.getLogger("authgate")
logger.addHandler(Capture(logging.DEBUG))
logger.setLevel(logging.DEBUG)
'''

UPSTREAM_SECRET = "upstreamSECRET-0123456789abcdef0123"


def _cfg(key_line: str, upstream: str, mode: str = "strict") -> str:
    return (f"proxy:\n  port: 0\n  auth_mode: {mode}\n{key_line}"
            f"upstream:\n  url: {upstream}\n  headers:\n    x-upstream-token: \"${{AUTHGATE_TEST_UPSTREAM}}\"\n")


def _exercise(port: int, right: bytes, others: list[bytes]) -> None:
    """Every way a client presents a key, right or wrong; the statuses are checked elsewhere."""
    tries: list[list[tuple[bytes, bytes]]] = [
        [(b"Authorization", b"Bearer " + right)], [(b"x-api-key", right)], [(b"x-goog-api-key", right)],
        [(b"Authorization", right)], [(b"Authorization", b"Bearer" + right)],
        [(b"Authorization", b"bearer " + right)],
        [(b"Authorization", b"Bearer  " + right)], [(b"Authorization", b"Bearer " + right + b"x")],
        [(b"Authorization", b"Bearer \xe2\x80\x9c" + right + b"\xe2\x80\x9d")],
        [(b"Authorization", b"Bearer " + WRONG), (b"x-api-key", right)],  # right but shadowed
        [(b"x-api-key", WRONG), (b"x-goog-api-key", right)],  # right but shadowed
        [(b"x-api-key", WRONG)], [], *[[(b"Authorization", b"Bearer " + o)] for o in others],
    ]
    for headers in tries:
        for method, path in ((b"GET", b"/v1/models"), (b"GET", b"/healthz"), (b"OPTIONS", b"/v1/models")):
            raw_exchange(port, request(method, path, headers))
    # the key in the query, as Gemini clients put it, and in the proxy credential headers
    for key in (right, WRONG, *others):
        key = urllib.parse.quote_from_bytes(key).encode()  # (a key with a space travels as %20)
        for target in (b"/v1beta/models?key=" + key, b"/v1beta/models?alt=sse&KEY=" + key):
            for headers in ([], [(b"x-goog-api-key", right)], [(b"Proxy-Authorization", b"Bearer " + key)]):
                raw_exchange(port, request(b"GET", target, headers))


def test_gate_never_logs_a_key_at_any_level(tmp_path, confdir, recorder, capsys):
    capture = tmp_path / "authgate-log.jsonl"
    script = tmp_path / "capture_authgate_log.py"
    script.write_text(CAPTURE_SCRIPT.format(path=str(capture)), encoding="utf-8")
    config = tmp_path / "cfg" / "config.yaml"
    config.parent.mkdir()
    write_config(config, _cfg("", recorder.url))  # api_key missing: the gate generates one
    env = {"AUTHGATE_TEST_UPSTREAM": UPSTREAM_SECRET}
    common = ["--set", f"confdir={confdir}", "--set", f"auth_config={config}", "--set", "auth_port=0",
              "--set", "termlog_verbosity=debug", "--set", "flow_detail=4"]
    # The capture script goes first, so it sees the key generation that happens when auth.py loads.
    p = Process("mitmdump", "-s", str(script), "-s", str(ADDON), *common, env=env)
    p.wait_listening(timeout=START_TIMEOUT)
    secrets: dict[str, str] = {"upstream credential": UPSTREAM_SECRET, "presented wrong key": WRONG.decode()}
    try:
        generated = yaml.safe_load(config.read_text())["proxy"]["api_key"]
        assert re.fullmatch(r"sk-[0-9a-f]{32}", generated)
        secrets["generated key"] = generated
        _exercise(p.port, generated.encode(), [])

        # Reload with a new key: the old one is now a wrong key, presented in every way.
        second = "sk-secSECOND0123456789abcdef012345"
        secrets["reloaded key"] = second
        write_config(config, _cfg(f'  api_key: "{second}"\n', recorder.url))
        _exercise(p.port, second.encode(), [generated.encode()])

        # Bad edits, each holding a new key that must not be printed while it is refused.
        bad_edits = {
            "key in a file with a YAML error": "sk-secBADYAML0123456789abcdef01234",
            "key with a space": "sk-secSPACE0123456789 abcdef012345",
            "key as a list": "sk-secLIST0123456789abcdef0123456",
            "key under a misspelt field": "sk-secTYPO0123456789abcdef01234567",
        }
        texts = {
            "key in a file with a YAML error": lambda k: f'proxy:\n  api_key: "{k}"\n  auth_mode: [strict\n',
            "key with a space": lambda k: _cfg(f'  api_key: "{k}"\n', recorder.url),
            "key as a list": lambda k: _cfg(f'  api_key: ["{k}"]\n', recorder.url),
            "key under a misspelt field": lambda k: _cfg(f'  apikey: "{k}"\n', recorder.url),
        }
        for what, key in bad_edits.items():
            secrets[what] = key
            write_config(config, texts[what](key))
            _exercise(p.port, key.encode(), [])
            write_config(config, _cfg(f'  api_key: "{second}"\n', recorder.url))  # good again
            raw_exchange(p.port, request(b"GET", b"/v1/models", [(b"x-api-key", second.encode())]))
        secrets["key with a space (first half)"] = bad_edits["key with a space"].split()[0]

        # An empty key denies everything, and says so.
        write_config(config, _cfg('  api_key: ""\n', recorder.url))
        _exercise(p.port, second.encode(), [])
        assert p.wait_for(EMPTY_KEY_LOG)
        time.sleep(1.2)  # the idle watcher runs once more
    finally:
        out = p.stop()

    # A key given as an option instead of in the file.
    option_key = "sk-secOPTION0123456789abcdef012345"
    secrets["option key"] = option_key
    write_config(config, _cfg(f'  api_key: "{second}"\n', recorder.url))
    q = Process("mitmdump", "-s", str(script), "-s", str(ADDON), *common, "--set", f"auth_api_key={option_key}",
                env=env)
    q.wait_listening(timeout=START_TIMEOUT)
    try:
        _exercise(q.port, option_key.encode(), [second.encode()])
    finally:
        out += "\n" + q.stop()

    records = [json.loads(line) for line in capture.read_text(encoding="utf-8").splitlines()]
    messages = [r["message"] for r in records]
    joined = "\n".join(messages)
    # The capture saw the gate at work: generation, reload, bad edits, denials, the empty key.
    assert fingerprint(generated) in joined and "generated" in joined
    assert fingerprint(second) in joined and fingerprint(option_key) in joined
    assert sum("keeping the last good config" in m for m in messages) >= len(bad_edits)
    assert sum(m.startswith("401 · ") for m in messages) >= 20
    assert EMPTY_KEY_LOG in messages
    assert {r["level"] for r in records} >= {"INFO", "WARNING", "ERROR"}

    # 1. The gate's own log records: no secret, whole, at any level.
    for what, secret in secrets.items():
        leaking = [f"{r['level']} {r['logger']}: {r['message'][:300]}" for r in records if secret in r["message"]]
        assert not leaking, f"the {what} is in the gate's log:\n" + "\n".join(leaking)

    # 2. Everything mitmdump printed (termlog at debug, flow dump at flow_detail=4): the only lines
    #    that may hold a key are mitmproxy's own dump of a client's key headers or request line
    #    (a ?key= in it), i.e. what that client sent, shown because flow_detail asks for them.
    #    Never a log line, and never what no client sent (the upstream credential).
    client_echo = []
    for what, secret in secrets.items():
        for line in out.splitlines():
            if secret in line:
                if ((CLIENT_KEY_HEADER_DUMP.match(line) or CLIENT_REQUEST_DUMP.match(line))
                        and what not in ("upstream credential",)):
                    client_echo.append(line)
                    continue
                pytest.fail(f"the {what} appears in mitmdump's output outside the dump of a client's key "
                            f"header:\n{line[:300]}")
    with capsys.disabled():
        print(f"\n[security] gate log records checked: {len(records)} (levels "
              f"{sorted({r['level'] for r in records})}); flow_detail=4 dump lines showing a client's own key "
              f"header: {len(client_echo)} (mitmproxy's dump, not the gate's log)")


# ====================================================================== constant-time comparison

POLICY = SimpleNamespace(auth_mode="strict", allow_lan_access=False, api_key=KEY, profile="faq")


def _view(*headers: tuple[bytes, bytes]) -> RequestView:
    return RequestView("GET", "/v1/models", ((b"Host", b"gate"), *headers))


def test_key_comparison_is_hmac_compare_digest(monkeypatch):
    calls: list[tuple] = []
    real = key_headers.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(key_headers.hmac, "compare_digest", spy)

    d = decide(_view((b"Authorization", b"Bearer " + K)), POLICY)
    assert d.allowed and d.reason == "key_ok"
    assert calls == [(K, K)]  # the presented key against the configured one, as bytes

    calls.clear()
    d = decide(_view((b"x-api-key", WRONG)), POLICY)
    assert not d.allowed and d.reason == "mismatch"
    assert calls == [(WRONG, K)]

    calls.clear()
    d = decide(_view((b"Authorization", b"Bearer " + WRONG), (b"x-api-key", K)), POLICY)
    assert not d.allowed and d.shadowed == "x-api-key"
    assert (WRONG, K) in calls and (K, K) in calls  # the shadow check compares in constant time too

    # The comparison alone decides: no other equality test stands beside it.
    monkeypatch.setattr(key_headers.hmac, "compare_digest", lambda a, b: True)
    assert decide(_view((b"x-api-key", WRONG)), POLICY).allowed
    monkeypatch.setattr(key_headers.hmac, "compare_digest", lambda a, b: False)
    assert not decide(_view((b"Authorization", b"Bearer " + K)), POLICY).allowed


# ====================================================================== the client's key headers stay home

FORWARD_TRIES: list[list[tuple[bytes, bytes]]] = [
    [(b"AUTHORIZATION", b"Bearer " + K), (b"authorization", b"Bearer " + WRONG), (b"X-API-KEY", K),
     (b"x-Api-Key", WRONG), (b"X-GOOG-API-KEY", K), (b"x-goog-api-key", WRONG)],
    [(b"x-api-key", K), (b"x-api-key", K), (b"X-Api-Key", K)],
    [(b"Authorization", SMART), (b"x-goog-api-key", K), (b"X-Goog-Api-Key", K)],
    [(b"aUtHoRiZaTiOn", b"Bearer " + K)],
    [(b"x-api-key", K + b"\xa0"), (b"Authorization", b"Bearer " + K)],
    [(b"Authorization", b"Basic dXNlcjpwYXNzd29yZA==")],
    [(b"X-Goog-Api-Key", WRONG)],
    [],
    [(b"Proxy-Authorization", b"Bearer " + K), (b"x-api-key", K), (b"X-Forwarded-Authorization", b"Bearer " + K)],
    [(b"proxy-authorization", b"Basic " + K), (b"x-forwarded-authorization", K)],
]


@pytest.mark.parametrize("mode, lan", [
    ("off", False), ("strict", False), ("all_except_health", False), ("auto", False), ("auto", True),
], ids=["off", "strict", "all_except_health", "auto-lan_false", "auto-lan_true"])
def test_client_key_headers_are_never_forwarded(gate, recorder, mode, lan):
    extra = ("--set", "listen_host=127.0.0.1") if lan else ()
    m = gate(config_text(mode, KEY, recorder.url, lan=lan), *extra)
    policy = SimpleNamespace(auth_mode=mode, allow_lan_access=lan, api_key=KEY, profile="faq")
    forwarded = 0
    for i, headers in enumerate(FORWARD_TRIES):
        for method, body in ((b"GET", None), (b"POST", b'{"x": 1}')):
            marker = f"/fwd/{mode}/{i}/{method.decode()}"
            target = f"{marker}?key={KEY}&n={i}" if i % 2 else marker  # and the key in the query, as Gemini's
            wire_headers = [(b"Host", b"gate.test"), *headers]
            if body is not None:
                wire_headers.append((b"Content-Length", str(len(body)).encode()))
            d = decide(RequestView(method.decode(), target, tuple(wire_headers)), policy)
            status, _, _ = raw_exchange(m.port, request(method, target.encode(), headers, body))
            got = recorder.find(marker)
            if d.allowed:
                forwarded += 1
                assert status == 200, f"{marker}: {status}"
                assert len(got) == 1, f"{marker}: the upstream saw it {len(got)} times"
                names = {n.lower() for n, _ in got[0]["headers"]}
                assert not names & KEY_HEADER_NAMES, f"{marker}: forwarded {sorted(names & KEY_HEADER_NAMES)}"
                assert not names & CREDENTIAL_HEADER_NAMES, f"{marker}: forwarded {sorted(names)}"
                values = " ".join(v for _, v in got[0]["headers"])
                assert KEY not in values and WRONG.decode() not in values
                assert KEY not in got[0]["line"] and got[0]["path"] == target.replace(f"key={KEY}&", "")
                assert got[0]["body"] == (body or b"")
            else:
                assert status == 401, f"{marker}: {status}"
                assert got == [], f"{marker}: a denied request reached the upstream"
    assert forwarded >= 10  # every mode lets the right-key tries through (off: all of them)


def test_undecodable_request_target_does_not_bypass_auth(gate, recorder):
    """Bytes in the request target that are not UTF-8 (say a Latin-1 é) must be decided like any other
    request: without the key, 401, and nothing (least of all the client's key header) forwarded."""
    m = gate(config_text("strict", KEY, recorder.url))
    results = {}
    for target in (b"/v1/models?q=caf\xe9", b"/\xff\xfe/secret"):
        for headers in ([], [(b"Authorization", b"Bearer " + WRONG)]):
            status, _, _ = raw_exchange(m.port, request(b"GET", target, headers))
            results[(target, bool(headers))] = status
    leaked = [(r["line"], [n for n, _ in r["headers"]]) for r in recorder.requests]
    assert not leaked, (f"requests without the key reached the upstream (statuses {results}): {leaked}\n"
                        + "\n".join(line for line in m.lines if "Error" in line or "error" in line)[:2000])
    assert all(s in (400, 401) for s in results.values()), results
    # and the right key still passes
    right = [(b"Authorization", b"Bearer " + K)]
    status, _, _ = raw_exchange(m.port, request(b"GET", b"/v1/models?q=caf\xe9", right))
    assert status == 200 and len(recorder.requests) == 1


# ====================================================================== not an open proxy

@pytest.fixture
def decoy():
    """A second recording server: the authority absolute-form requests name. Nothing may reach it."""
    r = Recorder()
    yield r
    r.stop()


@pytest.mark.parametrize("mode", ["off", "strict"])
def test_absolute_form_goes_to_the_upstream_only_and_connect_is_refused(gate, recorder, decoy, mode):
    """Absolute-form is decided on its path, as the original routes by the URI's path, and goes
    to upstream.url in origin-form, never to the authority it names (until issue #11: a 400).
    CONNECT and authority-form stay refused: not an open proxy."""
    m = gate(config_text(mode, KEY, recorder.url))
    up = f"127.0.0.1:{recorder.port}".encode()
    elsewhere = f"127.0.0.1:{decoy.port}".encode()
    policy = SimpleNamespace(auth_mode=mode, allow_lan_access=False, api_key=KEY, profile="faq")
    auth = [(b"Authorization", b"Bearer " + K)]
    absolute = [
        (b"GET", b"http://" + up + b"/abs/1", up, None),
        (b"GET", b"http://" + elsewhere + b"/abs/2?x=1", elsewhere, None),
        (b"GET", b"https://" + elsewhere + b"/abs/3", elsewhere, None),
        (b"POST", b"http://" + elsewhere + b"/abs/4", elsewhere, b"{}"),
        (b"OPTIONS", b"http://" + elsewhere + b"/abs/5", elsewhere, None),
        (b"GET", b"http://example.com/abs/6", b"example.com", None),
        (b"GET", f"http://127.0.0.1:{m.port}/healthz".encode(), f"127.0.0.1:{m.port}".encode(), None),
    ]
    for method, target, host, body in absolute:
        path = b"/" + target.split(b"/", 3)[3]
        for headers in ([], auth):
            status, hdrs, payload = raw_exchange(m.port, request(method, target, headers, body, host=host))
            d = decide(RequestView(method.decode(), path.decode(), ((b"Host", host), *headers)), policy)
            what = f"{mode}: {method.decode()} {target.decode()} {'with' if headers else 'without'} the key"
            assert status == (200 if d.allowed and d.route == "upstream" else d.status), f"{what}: {payload[:200]!r}"
            seen = [r for r in recorder.requests if r["path"] == path.decode()]
            if d.allowed and d.route == "upstream":
                assert seen[-1]["line"] == f"{method.decode()} {path.decode()} HTTP/1.1", what  # origin-form
                assert dict((n.lower(), v) for n, v in seen[-1]["headers"])["host"] == up.decode()
            else:
                assert not seen, f"{what}: reached the upstream"
    for authority in (up, elsewhere, b"example.com:443", f"127.0.0.1:{m.port}".encode()):
        for headers in ([], auth):
            tunnelled = b"GET /through-the-tunnel HTTP/1.1\r\nHost: x\r\n\r\n"
            connect = request(b"CONNECT", authority, headers, host=authority)
            status, _, payload = raw_exchange(m.port, connect + tunnelled)
            assert status is None or 400 <= status < 500, \
                f"{mode}: CONNECT {authority.decode()}: {status} {payload[:200]!r}"
        # authority-form without CONNECT: mitmproxy refuses the request line
        status, _, _ = raw_exchange(m.port, request(b"GET", authority, auth, host=authority))
        assert status is None or 400 <= status < 500
    assert not recorder.find("/through-the-tunnel")
    assert decoy.requests == [] and decoy.connections == 0  # the named authority never saw a thing
    # origin-form still works, and goes to the configured upstream whatever Host says
    status, _, _ = raw_exchange(m.port, request(b"GET", b"/origin-form", auth, host=b"example.com"))
    assert status == 200
    (seen,) = recorder.find("/origin-form")
    assert dict((n.lower(), v) for n, v in seen["headers"])["host"] == f"127.0.0.1:{recorder.port}"


# ====================================================================== mitmweb on loopback only

def _mitmweb_args(tmp_path: Path, confdir: Path, upstream: str, web_host: str, web_port: int,
                  *extra: str) -> list[str]:
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    return ["-s", str(ADDON), "--set", f"confdir={confdir}", "--set", f"auth_config={config}",
            "--set", "auth_port=0", "--set", f"web_host={web_host}", "--set", f"web_port={web_port}",
            "--set", "web_open_browser=false", *extra]


@pytest.mark.skipif(WEB_HAS_AUTH, reason="mitmweb 11.1.2+ asks for a token: test_web covers it there")
@pytest.mark.parametrize("web_host", ["0.0.0.0", "::"])
def test_mitmweb_refuses_a_non_loopback_web_host(tmp_path, confdir, recorder, web_host):
    p = Process("mitmweb", *_mitmweb_args(tmp_path, confdir, recorder.url, web_host, closed_port()))
    try:
        rc = p.wait_exit(EXIT_TIMEOUT)
    finally:
        out = p.stop()
    assert rc is not None, f"mitmweb with web_host={web_host} still runs after {EXIT_TIMEOUT}s:\n{out}"
    assert rc != 0, out
    assert "loopback" in out and "auth_web_remote=true" in out, out
    assert "listening at" not in out, out  # neither the UI nor the proxy ever listened


def test_mitmweb_non_loopback_web_host_starts_when_forced(tmp_path, confdir, recorder):
    web_port = closed_port()
    p = Process("mitmweb", *_mitmweb_args(tmp_path, confdir, recorder.url, "0.0.0.0", web_port,
                                          "--set", "auth_web_remote=true"))
    try:
        p.wait_listening(timeout=START_TIMEOUT, web=True)
        with socket.create_connection(("127.0.0.1", web_port), timeout=IO_TIMEOUT) as sock:
            sock.settimeout(IO_TIMEOUT)
            token = f"?token={p.web_token}" if p.web_token else ""
            sock.sendall(f"GET /{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        p.stop()
