"""OpenAI's answers: GET /v1/models[/{id}], POST /v1/chat/completions (stream: true as SSE)."""

from __future__ import annotations

import json
import time

from .shared import OPENAI_MODELS, ids, messages_prompt, pieces, tokens


def models(h) -> None:
    h.send_json(200, {"object": "list", "data": [
        {"id": m, "object": "model", "created": 1700000000, "owned_by": "demo-upstream"}
        for m in OPENAI_MODELS]})


def model(h, name: str) -> None:
    h.send_json(200, {"id": name, "object": "model", "created": 1700000000, "owned_by": "demo-upstream"})


def chat(h, body: dict) -> None:
    rid = f"chatcmpl-demo{next(ids)}"
    created = int(time.time())
    model = str(body.get("model") or OPENAI_MODELS[0])
    prompt = messages_prompt(body)
    text = h.report(prompt)
    usage = {"prompt_tokens": tokens(prompt), "completion_tokens": tokens(text),
             "total_tokens": tokens(prompt) + tokens(text)}
    if not body.get("stream"):
        return h.send_json(200, {
            "id": rid, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": "demo",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage}, x_request_id=rid)

    def chunk(delta: dict, finish=None, choices=True, **extra) -> str:
        out = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
               "system_fingerprint": "demo",
               "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
               if choices else [], **extra}
        return json.dumps(out)

    h.start_stream(x_request_id=rid)
    h.send_event(chunk({"role": "assistant", "content": ""}))
    for piece in pieces(text):
        h.send_event(chunk({"content": piece}))
    h.send_event(chunk({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        h.send_event(chunk({}, choices=False, usage=usage))
    h.send_event("[DONE]")
    h.end_stream(rid)
