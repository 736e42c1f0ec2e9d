"""The demo upstream's answers for the coding agents, called by the official Python SDKs through a
live gate (strict, the right key): OpenAI's Responses API (Codex CLI's wire API), streamed as its
event stream; Anthropic messages with thinking and tools as Claude Code sends them; Gemini's JSON
answers shaped by a response schema (Gemini CLI's model router), streamed as SSE too. Every answer
still says that no key header reached the upstream. Last, the schema rule itself, table-driven.
"""

from __future__ import annotations

import json
import time

import pytest

from demo_api.anthropic_api import THINKING
from demo_api.json_answer import as_requested, instance
from demo_api.shared import STREAM_DELAY
from sdk_clients import KEY, TIMEOUT, anthropic, clean_env, demo, gate, genai, genai_types, openai  # noqa: F401

NO_KEY_REACHED = "key headers: none (Authorization, x-api-key, x-goog-api-key absent)"
# Gemini CLI 0.61's model router: its schema, as it sends it (Gemini's capitalised types).
ROUTER_SCHEMA = {
    "type": "OBJECT",
    "properties": {"complexity_reasoning": {"type": "STRING", "description": "Brief explanation for the score."},
                   "complexity_score": {"type": "INTEGER", "description": "Complexity score from 1-100."}},
    "required": ["complexity_reasoning", "complexity_score"],
}


def openai_client(gate) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gate.url}/v1", api_key=KEY, max_retries=0, timeout=TIMEOUT)


def anthropic_client(gate) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gate.url, api_key=KEY, max_retries=0, timeout=TIMEOUT)


def genai_client(gate) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=genai_types.HttpOptions(
        base_url=gate.url, timeout=int(TIMEOUT * 1000), retry_options=genai_types.HttpRetryOptions(attempts=1)))


def said(text: str, path: str, prompt: str) -> bool:
    """The demo's report: this path, no key header, the prompt."""
    return text.startswith(f"demo upstream received POST {path};") and NO_KEY_REACHED in text \
        and text.endswith(f"You said: {prompt}")


# ====================================================================== OpenAI Responses (Codex CLI)

def test_responses_api_answer(gate):
    r = openai_client(gate).responses.create(model="demo-gpt", input="Hello responses")
    assert r.status == "completed" and r.object == "response" and r.model == "demo-gpt"
    assert said(r.output_text, "/v1/responses", "Hello responses"), r.output_text
    assert r.usage.output_tokens > 0


def test_responses_api_streams_its_event_sequence_unbuffered(gate, demo):
    events, first = [], None
    for event in openai_client(gate).responses.create(model="demo-gpt", input="Stream responses", stream=True):
        first = first or time.monotonic()
        events.append(event)
    kinds = [e.type for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas >= 2 and kinds == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        *["response.output_text.delta"] * deltas, "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed"], kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-4].text == events[-1].response.output_text
    assert said(text, "/v1/responses", "Stream responses"), text
    assert events[0].response.status == "in_progress" and events[-1].response.status == "completed"
    # Codex reads each event as it comes: the first arrived while the upstream still paused between events.
    rec = demo.stream_record(events[0].response.id)
    assert first < rec["finished"] - 2 * STREAM_DELAY, "the gate buffered the Responses stream"


def test_responses_prompt_is_the_users_message_as_codex_sends_it(gate):
    """Codex sends instructions, a developer message, its <environment_context> as a user message,
    then what the user typed: the answer quotes the last."""
    codex_input = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
        {"type": "message", "role": "user",
         "content": [{"type": "input_text", "text": "<environment_context>\n  <cwd>/w</cwd>\n</environment_context>"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hi"}]},
    ]
    tools = [{"type": "function", "name": "exec_command", "description": "Run a command", "strict": False,
              "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}}]
    r = openai_client(gate).responses.create(model="demo-gpt", instructions="Be brief.", input=codex_input,
                                             tools=tools, store=False, reasoning={"summary": "auto"})
    assert said(r.output_text, "/v1/responses", "Say hi"), r.output_text
    assert [item.type for item in r.output] == ["message"]  # text only: the tools offered are not called


# ====================================================================== Anthropic, as Claude Code asks

CLAUDE_CODE_TURN = [{"role": "user", "content": [
    {"type": "text", "text": "<system-reminder>\nContext Claude Code adds.\n</system-reminder>"},
    {"type": "text", "text": "Hello Claude"}]}]
TOOLS = [{"name": "Bash", "description": "Run a command",
          "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}]


@pytest.mark.parametrize("thinking, shown", [({"type": "enabled", "budget_tokens": 1024}, THINKING),
                                             ({"type": "adaptive", "display": "omitted"}, "")])
def test_messages_with_thinking_and_tools_as_claude_code_streams_them(thinking, shown, gate, demo):
    # Claude Code's route is POST /v1/messages?beta=true (anthropic 0.x's beta client adds the query,
    # 2.x's does not: given here for both).
    stream = anthropic_client(gate).beta.messages.create(
        model="demo-claude", max_tokens=2048, stream=True, betas=["interleaved-thinking-2025-05-14"],
        thinking=thinking, tools=TOOLS, messages=CLAUDE_CODE_TURN, extra_query={"beta": "true"})
    events = list(stream)
    assert demo.received[-1] == ("POST", "/v1/messages?beta=true")
    blocks = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert blocks == ["thinking", "text"]
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert "".join(d.thinking for d in deltas if d.type == "thinking_delta") == shown
    assert [d.signature for d in deltas if d.type == "signature_delta"][0]
    text = "".join(d.text for d in deltas if d.type == "text_delta")
    assert said(text, "/v1/messages", "Hello Claude"), text  # the <system-reminder> is Claude Code's, not said
    assert [e.delta.stop_reason for e in events if e.type == "message_delta"] == ["end_turn"]


def test_messages_with_thinking_not_streamed(gate):
    r = anthropic_client(gate).messages.create(model="demo-claude", max_tokens=2048, messages=CLAUDE_CODE_TURN,
                                               thinking={"type": "enabled", "budget_tokens": 1024})
    assert [b.type for b in r.content] == ["thinking", "text"] and r.stop_reason == "end_turn"
    assert r.content[0].thinking == THINKING and r.content[0].signature
    assert said(r.content[1].text, "/v1/messages", "Hello Claude")


# ====================================================================== Gemini JSON (Gemini CLI's router)

@pytest.mark.parametrize("field", ["response_schema", "response_json_schema"])
def test_generate_content_answers_the_json_its_schema_asks_for(field, gate, demo):
    config = genai_types.GenerateContentConfig(response_mime_type="application/json", **{field: ROUTER_SCHEMA})
    client = genai_client(gate)  # held: a client collected mid-call closes its connection
    r = client.models.generate_content(model="demo-gemini", contents="Route this", config=config)
    answer = json.loads(r.text)  # the router parses it so; it asked again while this failed
    assert list(answer) == ["complexity_reasoning", "complexity_score"] and answer["complexity_score"] == 1
    method, path = demo.received[-1]  # /v1beta/ or /v1/, by SDK major
    assert said(answer["complexity_reasoning"], path, "Route this"), answer


def test_stream_generate_content_sse_carries_the_json_in_pieces(gate, demo):
    config = genai_types.GenerateContentConfig(response_mime_type="application/json", response_schema=ROUTER_SCHEMA)
    client = genai_client(gate)
    chunks = list(client.models.generate_content_stream(model="demo-gemini", contents="Route this", config=config))
    method, path = demo.received[-1]
    assert path.endswith(":streamGenerateContent?alt=sse"), path
    assert len(chunks) >= 2 and chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    answer = json.loads("".join(c.text for c in chunks))
    assert answer["complexity_score"] == 1
    assert said(answer["complexity_reasoning"], path.partition("?")[0], "Route this"), answer


# ====================================================================== the schema rule

@pytest.mark.parametrize("schema, expected", [
    (ROUTER_SCHEMA, {"complexity_reasoning": "T", "complexity_score": 1}),
    ({"type": "string", "enum": ["flash", "pro"]}, "flash"),
    ({"type": "integer", "minimum": 5, "maximum": 9}, 5),
    ({"type": "integer", "exclusiveMinimum": 5}, 6),
    ({"type": "number", "maximum": 0.5}, 0.5),
    ({"type": "array", "items": {"type": "boolean"}, "minItems": 2}, [False, False]),
    ({"type": "array", "items": {"type": "string"}, "maxItems": 0}, []),
    ({"type": ["null", "string"], "maxLength": 1}, "T"),
    ({"anyOf": [{"type": "null"}, {"type": "string"}]}, None),
    ({"properties": {"nested": {"type": "OBJECT", "properties": {"v": {"const": 3}}}}}, {"nested": {"v": 3}}),
    ({}, "T"),
])
def test_the_smallest_value_that_fits_the_schema(schema, expected):
    assert instance(schema, "T") == expected


def test_json_only_when_asked():
    assert as_requested({"temperature": 1}, "text") == "text"
    assert as_requested(None, "text") == "text"
    assert as_requested({"responseMimeType": "application/json"}, "tëxt") == '"tëxt"'  # no schema: a JSON string
