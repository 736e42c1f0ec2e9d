"""The official SDKs (openai, anthropic, google-genai) with the right key, through a live gate
(strict, a known key, the demo upstream behind it): a real answer, streamed too, the first streamed
event reaching the client before the upstream has finished sending; the answer's text (written by
the upstream) shows the proxy key did not reach the upstream; the model lists; the header each SDK
sends by default, seen straight at the upstream; the README's one-liners, run as they are.
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

# ====================================================================== the README's one-liners

def readme_one_liners() -> list[str]:
    """The `python3 -c "..."` lines of the README's "Real SDKs through the gate"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
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
