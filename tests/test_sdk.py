"""The official SDKs (openai, anthropic, google-genai) through a live gate.

A real `mitmdump -s addon/auth.py` on an ephemeral loopback port (strict mode, a known key),
the demo upstream (addon/demo_upstream.py) in a thread behind it. For each SDK:
- the right key gives a real answer, streamed too, and the first streamed event reaches the
  client before the upstream has finished sending;
- the answer's text (written by the upstream) shows the proxy key did not reach the upstream;
- a missing or wrong key raises the SDK's own auth error whose message is the gate's explanation;
- the header the SDK sends by default is the one the gate reads (auth_gate.winner). Which one that
  is, and the API path, are read off the request the installed SDK really sends (anthropic 0.x
  sends x-api-key, 2.x Authorization: Bearer; google-genai 2.x calls /v1beta/, 3.x /v1/).
And upstream.headers with ${ENV} reaches the upstream while the client's key does not.
Everything stays on 127.0.0.1; every client has a timeout and no retries.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")
genai = pytest.importorskip("google.genai")
from google.genai import errors as genai_errors  # noqa: E402
from google.genai import types as genai_types  # noqa: E402

import demo_upstream  # noqa: E402
from live import Gate, Upstream, closed_port, config_text  # noqa: E402

KEY = "sk-sdk0123456789abcdef0123456789ab"
WRONG_KEY = "sk-sdkWRONGfedcba9876543210fedcba"
UPSTREAM_SECRET = "gk-upstream-secret-0123456789abcdef"  # only in the gate's environment
SECRET_ENV = "DEMO_UPSTREAM_SECRET"
TIMEOUT = 10.0  # seconds, every SDK call
# Variables that would send an SDK elsewhere, give it a key of its own or change what it sends.
_ENV_NOISE = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
              "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS",
              "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE",
              "GOOGLE_GENAI_API_VERSION", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION")

SDKS = ("openai", "anthropic", "google-genai")
KEY_HEADERS = demo_upstream.KEY_HEADERS  # Authorization, x-api-key, x-goog-api-key: the gate's spelling
# The key header each SDK may send by default; which one, the request it sends says (default_key_header).
# anthropic 0.x sends X-Api-Key; 2.x sends its api_key as Authorization: Bearer (Anthropic._api_key_auth).
SDK_KEY_HEADERS = {"openai": ("Authorization",), "anthropic": ("x-api-key", "Authorization"),
                   "google-genai": ("x-goog-api-key",)}
# The path each SDK calls (a regex): google-genai 2.x calls /v1beta/, 3.x /v1/ (both are Gemini's API).
PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages",
        "google-genai": r"/v1(?:beta)?/models/demo-gemini:generateContent"}
STREAM_PATH = {**PATH, "google-genai": r"/v1(?:beta)?/models/demo-gemini:streamGenerateContent"}


# ====================================================================== the gate and the upstream

def start_gate(workdir: Path, upstream_url: str, headers: dict[str, str] | None = None,
               env: dict[str, str] | None = None) -> Gate:
    """The gate on its own config.yaml in `workdir`: strict, KEY, the upstream (with its headers)."""
    config = workdir / "config.yaml"
    config.write_text(config_text("strict", KEY, upstream_url, port=8045, upstream_headers=headers),
                      encoding="utf-8")
    return Gate(config, env=env)


@pytest.fixture(scope="module", autouse=True)
def clean_env():
    with pytest.MonkeyPatch.context() as mp:
        for name in _ENV_NOISE:
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="module")
def demo(clean_env):
    with Upstream(echo_only=False) as d:
        yield d


@pytest.fixture(scope="module")
def gate(demo, tmp_path_factory):
    g = start_gate(tmp_path_factory.mktemp("sdk-gate"), demo.url)
    yield g
    g.stop()
    assert KEY not in g.output and WRONG_KEY not in g.output, "a key appeared in full in mitmdump's output"


@pytest.fixture(scope="module")
def gate_with_upstream_key(demo, tmp_path_factory):
    # The secret is only in mitmdump's environment: config.yaml holds the ${...} reference.
    g = start_gate(tmp_path_factory.mktemp("sdk-gate-upstream-key"), demo.url,
                   headers={"x-goog-api-key": "${%s}" % SECRET_ENV}, env={SECRET_ENV: UPSTREAM_SECRET})
    yield g
    g.stop()
    assert UPSTREAM_SECRET not in g.output, "upstream.headers' secret appeared in mitmdump's output"
    assert KEY not in g.output


# ====================================================================== the three SDKs, one shape

class Sent(NamedTuple):
    """A request as the SDK put it on the wire (seen by a request hook of its own HTTP client)."""

    path: str  # without the query string
    keys: dict[str, str]  # the key headers it carried: the gate's spelling -> value
    spelled: dict[str, str]  # the same headers: the gate's spelling -> the SDK's spelling


class Client:
    """One SDK's client pointed at `url`: ask() and ask_stream() make the same call with each SDK.
    `sent` records every request the SDK sends, as it sends it."""

    def __init__(self, sdk: str, url: str, key: str = KEY, no_key: bool = False) -> None:
        self.sdk = sdk
        self.key = key
        self.sent: list[Sent] = []
        self.call: dict = {}  # per-call options
        hooks = [self._record]
        if sdk == "openai":
            if no_key:  # the SDKs refuse an empty key; an explicitly omitted header is allowed
                self.call = {"extra_headers": {default_key_header(sdk)[1]: openai.Omit()}}
            self.c = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=TIMEOUT,
                                   http_client=openai.DefaultHttpxClient(event_hooks={"request": hooks}))
        elif sdk == "anthropic":
            if no_key:  # X-Api-Key (0.x) or Authorization (2.x): whichever it sends, as it spells it
                self.call = {"extra_headers": {default_key_header(sdk)[1]: anthropic.Omit()}}
            self.c = anthropic.Anthropic(base_url=url, api_key=key, max_retries=0, timeout=TIMEOUT,
                                         http_client=anthropic.DefaultHttpxClient(event_hooks={"request": hooks}))
        else:
            if no_key:  # google-genai always sends its key: a request hook takes it off, before _record
                def drop(request):
                    for name in KEY_HEADERS:
                        request.headers.pop(name, None)

                hooks.insert(0, drop)
            self.c = genai.Client(api_key=key, http_options=genai_types.HttpOptions(
                base_url=url, timeout=int(TIMEOUT * 1000), retry_options=genai_types.HttpRetryOptions(attempts=1),
                client_args={"event_hooks": {"request": hooks}}))

    def _record(self, request) -> None:
        keys, spelled = {}, {}
        for raw_name, raw_value in request.headers.raw:
            as_sent = raw_name.decode("latin-1")
            name = next((h for h in KEY_HEADERS if h.lower() == as_sent.lower()), None)
            if name and name not in keys:
                keys[name], spelled[name] = raw_value.decode("latin-1"), as_sent
        self.sent.append(Sent(request.url.path, keys, spelled))

    def key_header(self) -> str:
        """The key header of the SDK's last request, in the gate's spelling. The SDK sends exactly
        one, one it is known to send, carrying the client's key."""
        assert self.sent, f"{self.sdk} sent no request"
        keys = self.sent[-1].keys
        assert len(keys) == 1, f"{self.sdk} sent key headers {sorted(keys)}"
        (header, value), = keys.items()
        assert header in SDK_KEY_HEADERS[self.sdk], f"{self.sdk} sent its key in {header}"
        assert value == (f"Bearer {self.key}" if header == "Authorization" else self.key), \
            f"{self.sdk} sent {header} in an unexpected form"
        return header

    def ask(self, prompt: str = "Hello through the gate") -> str:
        """One non-streaming call; the answer's text."""
        if self.sdk == "openai":
            r = self.c.chat.completions.create(model="demo-gpt", messages=[{"role": "user", "content": prompt}],
                                               **self.call)
            assert r.object == "chat.completion" and r.choices[0].finish_reason == "stop"
            return r.choices[0].message.content
        if self.sdk == "anthropic":
            r = self.c.messages.create(model="demo-claude", max_tokens=256,
                                       messages=[{"role": "user", "content": prompt}], **self.call)
            assert r.type == "message" and r.stop_reason == "end_turn"
            return "".join(b.text for b in r.content if b.type == "text")
        r = self.c.models.generate_content(model="demo-gemini", contents=prompt)
        assert r.candidates[0].finish_reason == genai_types.FinishReason.STOP
        return r.text

    def ask_stream(self, prompt: str = "Stream through the gate") -> tuple[str, str, float, list]:
        """One streaming call: (text, the upstream's id for it, monotonic time of the first event, events)."""
        events, parts, first, sid = [], [], None, None
        if self.sdk == "openai":
            stream = self.c.chat.completions.create(
                model="demo-gpt", messages=[{"role": "user", "content": prompt}], stream=True, **self.call)
            for chunk in stream:
                first = first or time.monotonic()
                sid = sid or chunk.id
                events.append(chunk)
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
        elif self.sdk == "anthropic":
            stream = self.c.messages.create(model="demo-claude", max_tokens=256, stream=True,
                                            messages=[{"role": "user", "content": prompt}], **self.call)
            for event in stream:
                first = first or time.monotonic()
                if event.type == "message_start":
                    sid = event.message.id
                events.append(event)
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    parts.append(event.delta.text)
        else:
            for chunk in self.c.models.generate_content_stream(model="demo-gemini", contents=prompt):
                first = first or time.monotonic()
                sid = sid or chunk.response_id
                events.append(chunk)
                parts.append(chunk.text or "")
        assert first is not None and sid, f"{self.sdk}: the stream gave no event"
        return "".join(parts), sid, first, events

    def models(self) -> list[str]:
        if self.sdk == "google-genai":
            return [m.name for m in self.c.models.list()]
        return [m.id for m in self.c.models.list()]


@functools.cache
def default_key_header(sdk: str) -> tuple[str, str]:
    """The key header the installed SDK sends by default: (the gate's spelling, the SDK's own).
    Read off a real request of it, sent to a closed port so that nothing answers."""
    client = Client(sdk, f"http://127.0.0.1:{closed_port()}")
    try:
        client.ask()
    except Exception:  # the SDK's connection error: the request was built and sent all the same
        pass
    header = client.key_header()
    return header, client.sent[-1].spelled[header]


AUTH_ERROR = {"openai": openai.AuthenticationError, "anthropic": anthropic.AuthenticationError,
              "google-genai": genai_errors.ClientError}


def gate_body(sdk: str, exc) -> dict:
    """The 401's JSON body, as the SDK's exception carries it."""
    if sdk == "google-genai":
        return exc.details
    return exc.response.json()


def expect_auth_error(sdk: str, call):
    with pytest.raises(AUTH_ERROR[sdk]) as info:
        call()
    exc = info.value
    if sdk == "google-genai":
        assert exc.code == 401 and exc.status == "UNAUTHENTICATED"
        message = exc.message
    else:
        assert exc.status_code == 401
        message = gate_body(sdk, exc)["error"]["message"]
    assert message in str(exc), f"{sdk}: the exception's text lacks the gate's explanation: {exc}"
    return exc, message


def fp(key: str) -> str:
    return demo_upstream.fingerprint(key)


# ====================================================================== tests

@pytest.mark.parametrize("sdk", SDKS)
def test_right_key_gets_a_real_answer_and_the_key_stays_at_the_gate(sdk, gate):
    client = Client(sdk, gate.url)
    text = client.ask("Hello through the gate")
    sent = client.sent[-1]
    assert re.fullmatch(PATH[sdk], sent.path), sent.path
    assert text.startswith(f"demo upstream received POST {sent.path};"), text
    # The SDK sent its key header; the gate took it off before forwarding.
    client.key_header()
    assert "key headers: none (Authorization, x-api-key, x-goog-api-key absent)" in text, text
    assert KEY not in text and fp(KEY) not in text
    assert "You said: Hello through the gate" in text


@pytest.mark.parametrize("sdk", SDKS)
def test_right_key_streams_unbuffered(sdk, gate, demo):
    client = Client(sdk, gate.url)
    text, sid, first, events = client.ask_stream()
    sent = client.sent[-1]
    assert re.fullmatch(STREAM_PATH[sdk], sent.path), sent.path
    assert text.startswith(f"demo upstream received POST {sent.path};"), text
    client.key_header()
    assert "key headers: none (Authorization, x-api-key, x-goog-api-key absent)" in text, text
    assert "You said: Stream through the gate" in text
    rec = demo.stream_record(sid)
    # Buffered, the first event could only arrive after the upstream's last byte. Unbuffered it
    # arrives while the upstream is still pausing between events (STREAM_DELAY apart).
    assert first < rec["finished"] - 2 * demo_upstream.STREAM_DELAY, (
        f"{sdk}: first event reached the client {first - rec['first_sent']:.3f}s after the upstream sent it, "
        f"{first - rec['finished']:+.3f}s relative to the upstream finishing: the gate buffered the stream")
    if sdk == "anthropic":
        kinds = [e.type for e in events]
        deltas = kinds.count("content_block_delta")
        assert deltas >= 2
        assert kinds == ["message_start", "content_block_start", *["content_block_delta"] * deltas,
                         "content_block_stop", "message_delta", "message_stop"], kinds
    elif sdk == "openai":
        assert events[-1].choices[0].finish_reason == "stop"
        assert len(events) >= 4
    else:
        assert events[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
        assert len(events) >= 3


def test_model_lists_through_the_gate(gate):
    assert "demo-gpt" in Client("openai", gate.url).models()
    assert "demo-claude" in Client("anthropic", gate.url).models()
    assert "models/demo-gemini" in Client("google-genai", gate.url).models()


@pytest.mark.parametrize("sdk", SDKS)
def test_sdk_default_key_header_straight_to_the_upstream(sdk, demo):
    """Without the gate, the upstream sees exactly which key header the SDK sends by default."""
    client = Client(sdk, demo.url)
    text = client.ask()
    header = client.key_header()  # what the SDK put on the wire: one key header, the key in it
    assert header == default_key_header(sdk)[0]
    shown = f"Bearer {fp(KEY)}" if header == "Authorization" else fp(KEY)
    others = ", ".join(h for h in KEY_HEADERS if h != header)
    assert f"key headers: {header} present: {shown}; absent: {others}." in text, text
    assert KEY not in text


@pytest.mark.parametrize("sdk", SDKS)
def test_wrong_key_raises_the_sdks_auth_error_naming_the_header(sdk, gate):
    client = Client(sdk, gate.url, key=WRONG_KEY)
    exc, message = expect_auth_error(sdk, client.ask)
    header = client.key_header()  # the one the SDK sent by default, the wrong key in it
    body = gate_body(sdk, exc)
    # The header the SDK sends by default is the one the gate read, and the only one sent.
    assert body["auth_gate"]["winner"] == header
    assert body["auth_gate"]["reason"] == "mismatch"
    assert {h: s for h, s in body["auth_gate"]["headers"].items() if s != "absent"} == {header: "won"}
    assert f"Key header read: {header} won" in message
    assert f"The key read from {header} does not match proxy.api_key." in message
    assert "Fix: Use the api_key from config.yaml" in message
    assert WRONG_KEY not in str(exc) and KEY not in str(exc)
    assert fp(WRONG_KEY) in message  # a fingerprint of what was presented, never the key


@pytest.mark.parametrize("sdk", SDKS)
def test_missing_key_raises_the_sdks_auth_error_with_the_fix(sdk, gate):
    client = Client(sdk, gate.url, no_key=True)
    exc, message = expect_auth_error(sdk, client.ask)
    assert client.sent[-1].keys == {}, client.sent[-1]  # the request went without any key header
    body = gate_body(sdk, exc)
    assert body["auth_gate"]["winner"] is None and body["auth_gate"]["reason"] == "missing"
    assert "No Authorization, x-api-key or x-goog-api-key header was sent." in message
    assert "Fix: Send Authorization: Bearer <proxy api_key>." in message


@pytest.mark.parametrize("sdk", SDKS)
def test_401_speaks_the_sdks_dialect(sdk, gate):
    exc, message = expect_auth_error(sdk, Client(sdk, gate.url, key=WRONG_KEY).ask)
    body = gate_body(sdk, exc)
    if sdk == "openai":
        assert body["error"]["type"] == "invalid_request_error" and body["error"]["code"] == "invalid_api_key"
        assert exc.code == "invalid_api_key"
    elif sdk == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    else:
        assert body["error"]["code"] == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    assert exc.response.headers["www-authenticate"] == 'Bearer realm="antigravity-proxy", error="invalid_token"'


@pytest.mark.parametrize("sdk", SDKS)
def test_wrong_key_on_a_stream_raises_the_auth_error(sdk, gate):
    client = Client(sdk, gate.url, key=WRONG_KEY)
    exc, message = expect_auth_error(sdk, client.ask_stream)
    assert gate_body(sdk, exc)["auth_gate"]["winner"] == client.key_header()
    assert "Fix:" in message


@pytest.mark.parametrize("sdk", ["google-genai", "openai"])
def test_upstream_headers_reach_the_upstream_and_the_client_key_does_not(sdk, gate_with_upstream_key):
    text = Client(sdk, gate_with_upstream_key.url).ask()
    # The upstream's own credential (${DEMO_UPSTREAM_SECRET}, expanded in mitmdump's environment)
    # arrived; the client's proxy key, sent in the same or another header, did not.
    assert f"key headers: x-goog-api-key present: {fp(UPSTREAM_SECRET)}; absent: Authorization, x-api-key." \
        in text, text
    assert fp(KEY) not in text and KEY not in text and UPSTREAM_SECRET not in text
    assert SECRET_ENV not in os.environ  # the test process never had it: the gate expanded it


def test_upstream_headers_wrong_client_key_still_401(gate_with_upstream_key):
    exc, message = expect_auth_error("google-genai", Client("google-genai", gate_with_upstream_key.url, WRONG_KEY).ask)
    assert UPSTREAM_SECRET not in str(exc) and fp(UPSTREAM_SECRET) not in str(exc)


# ====================================================================== the upstream fails

SERVER_ERROR = {"openai": openai.InternalServerError, "anthropic": anthropic.InternalServerError,
                "google-genai": genai_errors.ServerError}


@pytest.fixture(scope="module")
def gate_dead_upstream(clean_env, tmp_path_factory):
    g = start_gate(tmp_path_factory.mktemp("sdk-gate-dead"), f"http://127.0.0.1:{closed_port()}")
    yield g
    g.stop()


@pytest.mark.parametrize("sdk", SDKS)
def test_dead_upstream_raises_the_sdks_server_error_with_the_gates_words(sdk, gate_dead_upstream):
    with pytest.raises(SERVER_ERROR[sdk]) as info:
        Client(sdk, gate_dead_upstream.url).ask()
    exc = info.value
    if sdk == "google-genai":
        assert (exc.code, exc.status) == (502, "UNAVAILABLE")
        body = exc.details
    else:
        assert exc.status_code == 502
        body = exc.response.json()
    assert body["auth_gate"] == {"outcome": "allow", "reason": "key_ok", "upstream_error": "upstream_unreachable"}
    assert "The auth gate passed this request, but upstream" in str(exc), str(exc)


# ====================================================================== the README's one-liners

def readme_one_liners() -> list[str]:
    """The `python3 -c "..."` lines of the README's "Real SDKs through the gate"."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("## Real SDKs through the gate", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith('python3 -c "')]


def test_the_readmes_sdk_lines_run_as_they_are(gate, tmp_path):
    lines = readme_one_liners()
    assert [("openai" in x, "anthropic" in x, "genai" in x) for x in lines] == [
        (True, False, False), (False, True, False), (False, False, True)]
    for line in lines:
        command = line.replace("python3", shlex.quote(sys.executable), 1).replace("127.0.0.1:8045", f"127.0.0.1:{gate.port}")
        run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                             env={**os.environ, "KEY": KEY})
        assert run.returncode == 0, f"{line}\n{run.stdout}{run.stderr}"
        assert run.stdout.strip(), f"{line}: printed no answer"
        assert KEY not in run.stdout + run.stderr
