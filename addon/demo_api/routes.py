"""Which request gets which answer: the demo upstream's routing table.

The first row that fits (method, the whole path, a JSON object body where the answer needs one,
the client) answers; a request no row fits gets the echo (handler.py). /v1/models[/{id}] is
OpenAI's, Anthropic's and Gemini's: the client's own header tells (x-goog-api-client, which
Google's SDKs send; anthropic-version, which Anthropic's send).
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

from . import anthropic_api, gemini_api, openai_api, responses_api

GOOGLE = "x-goog-api-client"
ANTHROPIC = "anthropic-version"


class Route(NamedTuple):
    method: str
    path: re.Pattern  # the whole path, its groups handed to the answer
    answer: Callable  # (handler, path match, JSON body) -> None
    body: bool = False  # only with a JSON object body
    google: bool = True  # False: not for Google's SDKs


def _models(h, m, body) -> None:
    (anthropic_api.models if ANTHROPIC in h.headers else openai_api.models)(h)


def _model(h, m, body) -> None:
    (anthropic_api.model if ANTHROPIC in h.headers else openai_api.model)(h, m[1])


ROUTES = (
    Route("GET", re.compile(r"/v1/models"), _models, google=False),
    Route("POST", re.compile(r"/v1/chat/completions"), lambda h, m, body: openai_api.chat(h, body), body=True),
    Route("POST", re.compile(r"/v1/responses"), lambda h, m, body: responses_api.responses(h, body), body=True),
    Route("POST", re.compile(r"/v1/messages"), lambda h, m, body: anthropic_api.messages(h, body), body=True),
    Route("POST", re.compile(r"/v1/messages/count_tokens"), lambda h, m, body: anthropic_api.count_tokens(h, body),
          body=True),
    Route("GET", re.compile(r"/v1/models/([^/:]+)"), _model, google=False),
    Route("GET", re.compile(r"/v1(?:beta|alpha)?/models"), lambda h, m, body: gemini_api.models(h)),
    Route("GET", re.compile(r"/v1(?:beta|alpha)?/models/([^/:]+)"), lambda h, m, body: gemini_api.model(h, m[1])),
    Route("POST", re.compile(r"/v1(?:beta|alpha)?/models/([^/:]+):(generateContent|streamGenerateContent|countTokens)"),
          lambda h, m, body: gemini_api.call(h, m[1], m[2], body), body=True),
)


def answer(h, path: str, body: dict | None) -> bool:
    """Answer the request h holds if a row fits; False if none does (the echo's turn)."""
    for route in ROUTES:
        if route.method != h.command or (route.body and body is None) or (not route.google and GOOGLE in h.headers):
            continue
        if m := route.path.fullmatch(path):
            route.answer(h, m, body)
            return True
    return False
