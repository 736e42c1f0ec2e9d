"""The decision on the gate's own answers, in the shapes clients parse (pure).

* dialect(): which SDK's error shape the client reads (OpenAI's, Anthropic's,
  Google's), from the key header it sent and the API path.
* The JSON error bodies in that shape, the gate's account (`auth_gate`)
  beside the SDK's fields: the 401 (denial_body), the 400 for a header the
  original's parser refuses (bad_request_body), v4's 500 when the user-token
  store fails (store_error_body), and the 502/504 when the upstream fails
  (upstream_error_body).
* The headers: the 401's WWW-Authenticate challenge, and header_value(), the
  decision's detail() as the one-line `x-auth-gate` header every answer carries.

The words themselves (message(), detail()) come from explain.py.
"""

from __future__ import annotations

import json
import re

from authgate.rules.common import Decision
from authgate.words.explain import detail, message

# Gemini's API: /v1beta/..., or a model method on any version (google-genai 3.x calls
# /v1/models/{model}:generateContent); no other API puts a colon there.
_GEMINI_PATH = re.compile(r"/v1beta/|/v1\w*/models/[^/?]+:")


def dialect(winner: str | None, path: str) -> str:
    """Answer in the error shape the client's SDK parses: x-api-key says Anthropic's,
    x-goog-api-key Google's. Authorization says no SDK (OpenAI's sends it, and so does
    anthropic 2.x by default), so then, as with no key header, the API path does."""
    if winner == "x-api-key" or (winner in (None, "Authorization") and path.startswith("/v1/messages")):
        return "anthropic"
    if winner == "x-goog-api-key" or (winner in (None, "Authorization") and _GEMINI_PATH.match(path)):
        return "google"
    return "openai"


def header_value(detail_: dict) -> str:
    """detail() as one ASCII response header: `deny; mode=strict; winner=x-api-key; reason=mismatch`."""
    value = (f"{detail_['outcome']}; mode={detail_['effective_mode']}; winner={detail_['winner'] or '-'}; "
             f"reason={detail_['reason']}")
    if detail_["skipped_non_ascii"]:  # counted as absent: the next header was tried
        value += f"; skipped={','.join(detail_['skipped_non_ascii'])}"
    if detail_["shadowed"]:
        value += f"; shadowed={detail_['shadowed']}"
    if detail_.get("surface") == "admin":
        value += "; surface=admin"
    if detail_.get("token"):
        value += f"; token={detail_['token']}"
    if detail_.get("shadow"):
        value += f"; shadow={detail_.get('shadow_verdict', 'waiting')}"
    return value


def www_authenticate(d: Decision) -> str:
    # RFC 6750 §3.1: error="invalid_token" only when a credential was presented.
    value = 'Bearer realm="antigravity-proxy"'
    if d.winner is not None:
        value += ', error="invalid_token"'
    return value


def denial_body(d: Decision, path: str, lang: str = "en") -> bytes:
    return _error_body(dialect(d.winner, path), message(d, lang), detail(d, lang), status=401,
                       anthropic_type="authentication_error", google_status="UNAUTHENTICATED",
                       openai={"type": "invalid_request_error", "param": None, "code": "invalid_api_key"})


def bad_request_body(d: Decision, path: str, lang: str = "en") -> bytes:
    """The 400 for a request the original's parser refuses (a header value with a
    control byte, an obs-fold line): which header and why, never its value."""
    return _error_body(dialect(None, path), message(d, lang), detail(d, lang), status=400,
                       anthropic_type="invalid_request_error", google_status="INVALID_ARGUMENT",
                       openai={"type": "invalid_request_error", "param": None, "code": d.reason})


def store_error_body(d: Decision, path: str, lang: str = "en") -> bytes:
    """v4's 500 (the user-token store failed), explained: the original's body is empty."""
    return _error_body(dialect(d.winner, path), message(d, lang), detail(d, lang), status=500,
                       anthropic_type="api_error", google_status="INTERNAL",
                       openai={"type": "server_error", "code": "token_store_error"})


def upstream_error_body(detail_: dict, path: str, status: int, code: str, msg: str) -> bytes:
    """The gate's answer when the upstream fails (502/504), in the client's dialect;
    `auth_gate.upstream_error` is the code whatever the shape."""
    return _error_body(dialect(detail_["winner"], path), msg,
                       {"outcome": detail_["outcome"], "reason": detail_["reason"], "upstream_error": code},
                       status=status, anthropic_type="api_error",
                       google_status="DEADLINE_EXCEEDED" if status == 504 else "UNAVAILABLE",
                       openai={"type": "upstream_error", "code": code})


def _error_body(kind: str, msg: str, gate: dict, *, status: int, anthropic_type: str, google_status: str,
                openai: dict) -> bytes:
    """An error in the shape of the client's SDK, the gate's own account beside it."""
    if kind == "anthropic":
        body = {"type": "error", "error": {"type": anthropic_type, "message": msg}}
    elif kind == "google":
        body = {"error": {"code": status, "message": msg, "status": google_status}}
    else:
        body = {"error": {"message": msg, **openai}}
    body["auth_gate"] = gate
    return json.dumps(body, ensure_ascii=False).encode()
