"""The official SDKs (openai, anthropic, google-genai) with the right key, through a live gate
(strict, a known key, the demo upstream behind it): a real answer, streamed too, the first streamed
event reaching the client before the upstream has finished sending; the answer's text (written by
the upstream) shows the proxy key did not reach the upstream; the model lists; the header each SDK
sends by default, seen straight at the upstream; the one-liners of docs/clients.md, run as they are.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from authgate.config.paths import REPO
from demo_api.shared import STREAM_DELAY
from sdk_clients import (  # noqa: F401
    KEY,
    KEY_HEADERS,
    PATH,
    SDKS,
    STREAM_PATH,
    Client,
    clean_env,
    default_key_header,
    demo,
    fp,
    gate,
    genai_types,
)


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
    assert first < rec["finished"] - 2 * STREAM_DELAY, (
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

# ====================================================================== docs/clients.md's one-liners

def clients_page_one_liners() -> list[str]:
    """The `python3 -c "..."` lines of docs/clients.md's "Real SDKs through the gate"."""
    text = (REPO / "docs" / "clients.md").read_text(encoding="utf-8")
    section = text.split("## Real SDKs through the gate", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith('python3 -c "')]


def test_the_clients_pages_sdk_lines_run_as_they_are(gate, tmp_path):
    lines = clients_page_one_liners()
    assert [("openai" in x, "anthropic" in x, "genai" in x) for x in lines] == [
        (True, False, False), (False, True, False), (False, False, True)]
    for line in lines:
        command = line.replace("python3", shlex.quote(sys.executable), 1).replace("127.0.0.1:8045", f"127.0.0.1:{gate.port}")
        run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                             env={**os.environ, "KEY": KEY})
        assert run.returncode == 0, f"{line}\n{run.stdout}{run.stderr}"
        assert run.stdout.strip(), f"{line}: printed no answer"
        assert KEY not in run.stdout + run.stderr


# ====================================================================== the README's client table

# Each SDK built with no argument at all: the base URL and the key come from the environment.
_BARE_CALL = {
    "OpenAI SDK": "import openai; c = openai.OpenAI(); print(c.chat.completions.create(model='demo-gpt', "
                  "messages=[{'role': 'user', 'content': 'hi'}]).choices[0].message.content)",
    "Anthropic SDK": "import anthropic; c = anthropic.Anthropic(); print(c.messages.create(model='demo-claude', "
                     "max_tokens=64, messages=[{'role': 'user', 'content': 'hi'}]).content[0].text)",
    "Google GenAI SDK": "from google import genai; c = genai.Client(); "
                        "print(c.models.generate_content(model='demo-gemini', contents='hi').text)",
}


def readme_sdk_variables() -> dict[str, dict[str, str]]:
    """The README's "Point your client or agent at the gate" rows for the SDKs: {client: {VAR: value}},
    the base URL's `VAR=value` and the key's `VAR` (given the proxy key)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.split("## Point your client or agent at the gate", 1)[1].split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0] in _BARE_CALL:
            url_var, url = re.fullmatch(r"`(\w+)=(\S+)`", cells[1]).groups()
            key_var = re.match(r"`(\w+)`", cells[2]).group(1)
            rows[cells[0]] = {url_var: url, key_var: KEY}
    return rows


def test_the_readmes_sdk_variables_are_the_sdks_own(gate, tmp_path):
    rows = readme_sdk_variables()
    assert sorted(rows) == sorted(_BARE_CALL)
    names = {name for env in rows.values() for name in env} | {"GOOGLE_API_KEY"}  # GOOGLE_API_KEY would win
    base = {k: v for k, v in os.environ.items() if k not in names}
    for client, env in rows.items():
        env = {k: v.replace("127.0.0.1:8045", f"127.0.0.1:{gate.port}") for k, v in env.items()}
        run = subprocess.run([sys.executable, "-c", _BARE_CALL[client]], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path, env={**base, **env})
        assert run.returncode == 0, f"{client} with {sorted(env)}:\n{run.stdout}{run.stderr}"
        # the demo upstream's answer: the request passed the strict gate, its key removed on the way
        assert "demo upstream received POST" in run.stdout and "key headers: none" in run.stdout, run.stdout
        assert KEY not in run.stdout + run.stderr
