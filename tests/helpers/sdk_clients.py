"""The official SDKs (openai, anthropic, google-genai) for the tests that run them through a live gate
(test_sdk_*.py): `Client`, one shape for the three (ask, ask_stream, models; every request it sends
recorded as it sent it); the header each SDK sends by default, read off a real request; the SDKs'
errors and the gate's body in them; and the fixtures: `demo` (addon/demo_upstream.py in a thread),
`gate` (strict, KEY, the demo upstream behind it), and `clean_env` (no variable that would send an
SDK elsewhere or give it a key of its own), autouse where imported.

Importing this module skips the importing test module when an SDK is not installed. Everything
stays on 127.0.0.1; every client has a timeout and no retries.
"""

from __future__ import annotations

import functools
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
from authgate.rules.credentials import fingerprint  # noqa: E402
from authgate.rules.key_headers import KEY_HEADERS  # noqa: E402  (Authorization, x-api-key, x-goog-api-key)
from live import Gate, closed_port, config_text  # noqa: E402
from upstreams import Upstream  # noqa: E402

KEY = "sk-sdk0123456789abcdef0123456789ab"
WRONG_KEY = "sk-sdkWRONGfedcba9876543210fedcba"
TIMEOUT = 10.0  # seconds, every SDK call
# Variables that would send an SDK elsewhere, give it a key of its own or change what it sends.
_ENV_NOISE = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
              "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
              "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_CUSTOM_HEADERS",
              "GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE",
              "GOOGLE_GENAI_API_VERSION", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION")

SDKS = ("openai", "anthropic", "google-genai")
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
    return fingerprint(key)


SERVER_ERROR = {"openai": openai.InternalServerError, "anthropic": anthropic.InternalServerError,
                "google-genai": genai_errors.ServerError}
