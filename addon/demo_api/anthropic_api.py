"""Anthropic's answers: GET /v1/models[/{id}], POST /v1/messages (stream too), /v1/messages/count_tokens.

A request as Claude Code sends it (tools offered, `thinking` on, `?beta=true`) gets a one-turn answer:
a thinking block first when thinking is on (its text left out under display "omitted", as the API
does), then the text, stop_reason end_turn; the tools offered are never called."""

from __future__ import annotations

import hashlib
import json

from .shared import ANTHROPIC_MODELS, ids, messages_prompt, pieces, tokens

# What the thinking block says: the demo does not think, it reports.
THINKING = "The demo upstream does not think: it reports which key headers reached it."


def _model(name: str) -> dict:
    return {"type": "model", "id": name, "display_name": name.replace("-", " ").title(),
            "created_at": "2025-01-01T00:00:00Z"}


def models(h) -> None:
    data = [_model(m) for m in ANTHROPIC_MODELS]
    h.send_json(200, {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})


def model(h, name: str) -> None:
    h.send_json(200, _model(name))


def count_tokens(h, body: dict) -> None:
    h.send_json(200, {"input_tokens": tokens(messages_prompt(body))})


def _thinking(body: dict, rid: str) -> dict | None:
    """The thinking block when the request turns thinking on (enabled, or Claude Code's adaptive)."""
    asked = body.get("thinking")
    if not isinstance(asked, dict) or asked.get("type") not in ("enabled", "adaptive"):
        return None
    shown = "" if asked.get("display") == "omitted" else THINKING
    # Real signatures are opaque; this one is stable per answer, so a client sending it back works.
    return {"type": "thinking", "thinking": shown, "signature": hashlib.sha256(rid.encode()).hexdigest()}


def messages(h, body: dict) -> None:
    rid = f"msg_demo{next(ids)}"
    model = str(body.get("model") or ANTHROPIC_MODELS[0])
    prompt = messages_prompt(body)
    text = h.report(prompt)
    usage_in = tokens(prompt)
    thinking = _thinking(body, rid)
    if not body.get("stream"):
        return h.send_json(200, {
            "id": rid, "type": "message", "role": "assistant", "model": model,
            "content": [*([thinking] if thinking else []), {"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": usage_in, "output_tokens": tokens(text)}}, request_id=rid)
    h.start_stream(request_id=rid)
    ev = h.send_event
    ev(json.dumps({"type": "message_start", "message": {
        "id": rid, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": usage_in, "output_tokens": 1}}}), "message_start")
    index = 0
    if thinking:
        _stream_thinking(ev, thinking)
        index = 1
    ev(json.dumps({"type": "content_block_start", "index": index,
                   "content_block": {"type": "text", "text": ""}}), "content_block_start")
    ev(json.dumps({"type": "ping"}), "ping")
    for piece in pieces(text):
        ev(json.dumps({"type": "content_block_delta", "index": index,
                       "delta": {"type": "text_delta", "text": piece}}), "content_block_delta")
    ev(json.dumps({"type": "content_block_stop", "index": index}), "content_block_stop")
    ev(json.dumps({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                   "usage": {"output_tokens": tokens(text)}}), "message_delta")
    ev(json.dumps({"type": "message_stop"}), "message_stop")
    h.end_stream(rid)


def _stream_thinking(ev, block: dict) -> None:
    """Block 0, as the API streams thinking: its text in thinking_delta, then its signature."""
    ev(json.dumps({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}), "content_block_start")
    if block["thinking"]:
        ev(json.dumps({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "thinking_delta", "thinking": block["thinking"]}}), "content_block_delta")
    ev(json.dumps({"type": "content_block_delta", "index": 0,
                   "delta": {"type": "signature_delta", "signature": block["signature"]}}), "content_block_delta")
    ev(json.dumps({"type": "content_block_stop", "index": 0}), "content_block_stop")
