"""Security: no secret in full in the gate's own log lines, at any level (a capture script records
every record of the "authgate" loggers), nor anywhere in mitmdump's output but mitmproxy's own dump
of what a client sent: the generated key, a reloaded key, keys in bad edits, an option's key, a
presented wrong key, an upstream credential; through key generation, reload, bad edits and denials,
every way a client presents a key (headers, `?key=`, Proxy-Authorization).

Everything listens on 127.0.0.1 (ephemeral ports); every socket call and wait is bounded; every
process and thread started here is stopped.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse

import pytest
import yaml

from authgate.rules.credentials import fingerprint
from live import ADDON, Process, write_config
from live_fixtures import confdir, recorder  # noqa: F401
from raw_http import raw_exchange, request

KEY = "sk-sec0123456789abcdef0123456789ab"
WRONG = b"sk-presentedWRONG0123456789abcdef0"  # a long wrong key a client presents
START_TIMEOUT = 25.0
EMPTY_KEY_LOG = "Proxy auth is enabled but api_key is empty; denying request"
# A line of mitmproxy's own flow dump (flow_detail >= 2) showing one of the client's key headers.
CLIENT_KEY_HEADER_DUMP = re.compile(r"^ {4}(authorization|x-api-key|x-goog-api-key): ", re.I)
# More of that dump: a request line (flow_detail >= 1), the URL as the client sent it, a `?key=`
# included; the proxy credential headers (>= 2); the query parameters (>= 3), `key` among them.
CLIENT_REQUEST_DUMP = re.compile(r"^[0-9a-f.:\[\]]+: [A-Z]+ https?://\S+$|^ {4}(proxy-authorization|key): ", re.I)


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
