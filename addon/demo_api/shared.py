"""What every answer of the demo upstream shares: its limits, the report of the key headers that
arrived (fingerprints, never values), the prompt read from a request, token counts and stream pieces."""

from __future__ import annotations

import itertools
import math
import re

from authgate.rules.credentials import fingerprint  # the gate's format
from authgate.rules.key_headers import KEY_HEADERS  # the gate's spelling

# Other headers that look like credentials (added by upstream.headers, say): named, fingerprinted.
CREDENTIAL_NAME = re.compile(r"key|token|secret|auth|cookie", re.I)
STREAM_DELAY = 0.06  # seconds between streamed events
MAX_DELAY = 120.0  # seconds: the longest x-demo-delay honoured
RECORDED = 10_000  # requests and streams kept in memory for tests to inspect
STREAM_PIECES = 6  # how many pieces a streamed answer is cut into
OPENAI_MODELS = ("demo-gpt", "demo-gpt-mini")
ANTHROPIC_MODELS = ("demo-claude", "demo-claude-haiku")
GEMINI_MODELS = ("demo-gemini", "demo-gemini-flash")
ids = itertools.count(1)  # one numbering for every API's response ids


def describe_headers(headers) -> str:
    """`key headers: none (Authorization, x-api-key, x-goog-api-key absent)` and the like."""
    present, absent = [], []
    for name in KEY_HEADERS:
        value = headers.get(name)
        if value is None:
            absent.append(name)
        else:
            if name == "Authorization" and value.startswith("Bearer "):
                shown = "Bearer " + fingerprint(value[len("Bearer "):])
            else:
                shown = fingerprint(value)
            present.append(f"{name} present: {shown}")
    if present:
        out = "key headers: " + ", ".join(present) + (f"; absent: {', '.join(absent)}" if absent else "")
    else:
        out = f"key headers: none ({', '.join(absent)} absent)"
    lowered = {n.lower() for n in KEY_HEADERS}
    others = [f"{name} ({fingerprint(value)})" for name, value in headers.items()
              if name.lower() not in lowered and CREDENTIAL_NAME.search(name)]
    if others:
        out += "; other credential headers: " + ", ".join(others)
    return out


def pieces(text: str, n: int = STREAM_PIECES) -> list[str]:
    """Cut text into about n pieces at spaces; joined they give the text back."""
    words = re.findall(r"\S+\s*", text) or [text]
    size = max(1, -(-len(words) // n))
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)]


def delay(value: str) -> float:
    """x-demo-delay's seconds, within 0..MAX_DELAY (anything unreadable: none)."""
    try:
        seconds = float(value)
    except ValueError:
        return 0.0
    return 0.0 if math.isnan(seconds) else min(max(seconds, 0.0), MAX_DELAY)


def clip(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


# Claude Code puts context blocks (<system-reminder>...) in the user's turn, Codex its
# <environment_context>, Gemini CLI its <session_context>: the agent's words, not the user's,
# so the prompt leaves them out.
AGENT_CONTEXT = re.compile(r"\s*<(system-reminder|environment_context|session_context)>")


def _said(parts) -> str:
    """The text of a message's content: a string, or a list of parts (text, input_text)."""
    if not isinstance(parts, list):
        return str(parts or "")
    texts = (p.get("text") for p in parts if isinstance(p, dict))
    return " ".join(t for t in texts if isinstance(t, str) and not AGENT_CONTEXT.match(t))


def messages_prompt(body: dict) -> str:
    """The last user message of an OpenAI or Anthropic request (both use `messages`)."""
    for msg in reversed(body.get("messages") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return _said(msg.get("content"))
    return ""


def responses_prompt(body: dict) -> str:
    """The last user message of an OpenAI Responses request: `input` is a string or a list of
    items ({"role": "user", "content": string or input_text parts}; the type may be omitted)."""
    given = body.get("input")
    if not isinstance(given, list):
        return str(given or "")
    for item in reversed(given):
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type", "message") == "message":
            if said := _said(item.get("content")):
                return said
    return ""


def gemini_prompt(body: dict) -> str:
    for content in reversed(body.get("contents") or []):
        if isinstance(content, dict) and content.get("role", "user") == "user":
            return _said(content.get("parts") or [])
    return ""


def tokens(text: str) -> int:
    return max(1, len(text.split()))
