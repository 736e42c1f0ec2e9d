"""Gemini's answers, on /v1beta/, /v1alpha/ and /v1/ as the real API: GET models[/{id}],
POST models/{model}:generateContent, :streamGenerateContent (?alt=sse: SSE), :countTokens.

A request for JSON (generationConfig.responseMimeType application/json) gets JSON, shaped by its
responseSchema or responseJsonSchema when it gives one (json_answer.py): Gemini CLI's model router
asks for its classification that way, and asks again until the answer parses."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from .json_answer import as_requested
from .shared import GEMINI_MODELS, gemini_prompt, ids, pieces, tokens


def _model(name: str) -> dict:
    name = name.removeprefix("models/")
    return {"name": f"models/{name}", "version": "001", "displayName": name.replace("-", " ").title(),
            "description": "A model of the demo upstream: it reports what reached it.",
            "inputTokenLimit": 32768, "outputTokenLimit": 8192,
            "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"]}


def models(h) -> None:
    h.send_json(200, {"models": [_model(m) for m in GEMINI_MODELS]})


def model(h, name: str) -> None:
    h.send_json(200, _model(name))


def call(h, model: str, call: str, body: dict) -> None:
    prompt = gemini_prompt(body)
    if call == "countTokens":
        return h.send_json(200, {"totalTokens": tokens(prompt)})
    rid = f"demo-gemini-{next(ids)}"
    text = as_requested(body.get("generationConfig"), h.report(prompt))
    usage = {"promptTokenCount": tokens(prompt), "candidatesTokenCount": tokens(text),
             "totalTokenCount": tokens(prompt) + tokens(text)}

    def response(part: str, last: bool) -> dict:
        candidate = {"content": {"role": "model", "parts": [{"text": part}]}, "index": 0}
        if last:
            candidate["finishReason"] = "STOP"
        out = {"candidates": [candidate], "modelVersion": model, "responseId": rid}
        if last:
            out["usageMetadata"] = usage
        return out

    if call == "generateContent":
        return h.send_json(200, response(text, True))
    parts = pieces(text)  # JSON too: a client joins the chunks' text before parsing, as with the real API
    if parse_qs(urlsplit(h.path).query).get("alt") != ["sse"]:
        # Without alt=sse Gemini streams one JSON array; sent whole here.
        return h.send_json(200, [response(p, i == len(parts) - 1) for i, p in enumerate(parts)])
    h.start_stream()
    for i, piece in enumerate(parts):
        h.send_event(json.dumps(response(piece, i == len(parts) - 1)))
    h.end_stream(rid)
