"""The gate's own answers as plain data: (status, headers, body), no mitmproxy.

The adapter turns an `Answer` into its response object as is. These are
what the original sends, with the gate's explanation beside it when
explanations are on:

* `denial(d, path, lang, explained)`: the answer to a denied Decision.
  - 400 (a header value the original's parser refuses): its 400 is empty. Explained:
    which header and why, never the value (error_bodies.bad_request_body).
  - 401: the original's is empty (auth.rs, StatusCode::into_response). Explained:
    the gate's JSON 401 in the client's SDK dialect (error_bodies.denial_body).
  - 403 (v4, user-token rejection, auth.rs:211-228): the original's body,
    compact, `{"error":{"message":...,"type":"token_rejected","code":"token_rejected"}}`
    with `Content-Type: application/json`; explained, `auth_gate` sits beside
    `error` (the `error` object stays byte for byte the original's).
  - 500 (v4, the token store failed, auth.rs:230-233): empty; explained, the
    gate's JSON in the client's dialect.
* `health(profile, version)`: faq `{"status": "ok"}` as the gate always
  answered; v4 the original's `{"status":"ok","version":"4.5.8"}` (server.rs:912-918).
* `original_log(d)`: what the original logs for this request, (level, line).

Every answer carries `access-control-allow-origin: *`, as the original's
CORS layer adds to every non-preflight response.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from authgate.rules import v4
from authgate.rules.common import Decision
from authgate.rules.tokens import INVALID_TOKEN
from authgate.words import error_bodies, explain

CORS = ("access-control-allow-origin", "*")
JSON = ("content-type", "application/json")
# Explained denials only: the Stainless SDKs (openai, anthropic, so Claude Code and Codex) honour
# it and stop retrying a 401/403 that no retry can fix; the original's bare answers never carry it.
NO_RETRY = ("x-should-retry", "false")


class Answer(NamedTuple):
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _compact(obj) -> bytes:
    # serde_json::to_string: no spaces, UTF-8 as is, keys in the order written (preserve_order).
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def token_rejected(message: str) -> dict:
    """The original's 403 body (auth.rs:214-220)."""
    return {"error": {"message": message, "type": "token_rejected", "code": "token_rejected"}}


def denial(d: Decision, path: str, lang: str = "en", explained: bool = True) -> Answer:
    """The whole answer to a denied decision. `lang`: the explanation's language
    (explain.pick_language on Accept-Language); `explained=False`: the original's bare answer."""
    if d.status == 400:  # refused before any auth, as httparse does (its 400 has no body)
        if not explained:
            return Answer(400, (CORS,), b"")
        return Answer(400, (JSON, CORS, ("content-language", lang), NO_RETRY),
                      error_bodies.bad_request_body(d, path, lang))
    if d.status == 403:
        body = token_rejected(d.rejection or INVALID_TOKEN)
        if explained:
            body["auth_gate"] = {**explain.detail(d, lang), "message": explain.message(d, lang)}
            return Answer(403, (JSON, CORS, NO_RETRY), _compact(body))
        return Answer(403, (JSON, CORS), _compact(body))
    if not explained:
        return Answer(d.status or 401, (CORS,), b"")
    if d.status == 500:
        return Answer(500, (JSON, CORS, ("content-language", lang)), error_bodies.store_error_body(d, path, lang))
    return Answer(401, (JSON, CORS, ("content-language", lang), ("www-authenticate", error_bodies.www_authenticate(d)),
                        NO_RETRY), error_bodies.denial_body(d, path, lang))


def health_body(profile: str, version: str) -> bytes:
    if profile == "v4":
        return _compact({"status": "ok", "version": version})
    return json.dumps({"status": "ok"}).encode()  # faq: what the gate has always answered


def health(profile: str, version: str) -> Answer:
    """GET/HEAD on a health route (Decision.route == "health")."""
    return Answer(200, (JSON, CORS), health_body(profile, version))


def original_log(d: Decision) -> tuple[str, str] | None:
    """(level, line) the original logs for this decision, word for word; None when nothing
    notable (v4 carries it on the Decision; faq has the one empty-key line)."""
    if d.log is not None:
        return d.log
    if d.reason == "empty_api_key":
        return ("error", v4.EMPTY_KEY_LOG)
    return None
