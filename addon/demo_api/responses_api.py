"""OpenAI's Responses API: POST /v1/responses, the API Codex CLI speaks (wire_api = "responses").

Streamed (stream: true) as the real API streams it: response.created, response.in_progress, the
message's output_item.added, content_part.added, output_text.delta (one per piece), output_text.done,
content_part.done, output_item.done, then response.completed. Codex waits for response.completed: a
stream that ends without it is "stream disconnected before completion", retried. Each event carries
its type twice (the `event:` line and `type`) and a sequence_number, as the real API's do.
"""

from __future__ import annotations

import itertools
import json
import time

from .shared import OPENAI_MODELS, ids, pieces, responses_prompt, tokens


def _usage(prompt: str, text: str) -> dict:
    return {"input_tokens": tokens(prompt), "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": tokens(text), "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tokens(prompt) + tokens(text)}


def _text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message(item_id: str, text: str | None) -> dict:
    """The assistant's output message: in progress and empty (text None), or completed."""
    done = text is not None
    return {"id": item_id, "type": "message", "role": "assistant",
            "status": "completed" if done else "in_progress", "content": [_text_part(text)] if done else []}


def _response(rid: str, created: int, body: dict, status: str, output: list, usage: dict | None) -> dict:
    """The response object, echoing the request's settings as the real API does."""
    return {
        "id": rid, "object": "response", "created_at": created, "status": status,
        "model": str(body.get("model") or OPENAI_MODELS[0]), "output": output, "usage": usage,
        "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"), "metadata": body.get("metadata") or {},
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True), "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "user": None,
    }


def responses(h, body: dict) -> None:
    n = next(ids)
    rid, item_id, created = f"resp_demo{n}", f"msg_demo{n}", int(time.time())
    prompt = responses_prompt(body)
    text = h.report(prompt)
    usage = _usage(prompt, text)
    if not body.get("stream"):
        return h.send_json(200, _response(rid, created, body, "completed", [_message(item_id, text)], usage),
                           x_request_id=rid)
    h.start_stream(x_request_id=rid)
    seq = itertools.count()

    def ev(kind: str, **fields) -> None:
        h.send_event(json.dumps({"type": kind, "sequence_number": next(seq), **fields}), kind)

    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    ev("response.created", response=_response(rid, created, body, "in_progress", [], None))
    ev("response.in_progress", response=_response(rid, created, body, "in_progress", [], None))
    ev("response.output_item.added", output_index=0, item=_message(item_id, None))
    ev("response.content_part.added", **where, part=_text_part(""))
    for piece in pieces(text):
        ev("response.output_text.delta", **where, delta=piece, logprobs=[])
    ev("response.output_text.done", **where, text=text, logprobs=[])
    ev("response.content_part.done", **where, part=_text_part(text))
    ev("response.output_item.done", output_index=0, item=_message(item_id, text))
    ev("response.completed", response=_response(rid, created, body, "completed", [_message(item_id, text)], usage))
    h.end_stream(rid)
