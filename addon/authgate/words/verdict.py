"""Shadow mode's verdict: the real proxy's answer against the gate's prediction (pure).

Before the real proxy answers, the flow comment says the prediction alone
(waiting()). Profile faq: judge_faq(), as it always was (a 401 or 403 is a refusal).

Profile v4 predicts the original's exact answer: 401 (empty), 403 with a
token_rejected body and its message, or 500 (the token store failed). The
real answer is read as the original writes it, so every mismatch gets a name:

| the real proxy answered | the gate predicted | verdict |
| --- | --- | --- |
| the predicted status (and, for 403, the same message) | that denial | `as_predicted` |
| 403 token_rejected with another message | 403 | `other_message` |
| another 401/403/500 | a denial | `other_status` |
| anything else | a denial | `should_refuse` |
| 401 / 403 | a pass | `other_401` / `other_403` |
| anything else | a pass | `passed` |
| 403 `ip_blocked` (the app's IP filter) | anything | `ip_blocked` |
| 503 `Proxy service is currently disabled` | anything | `service_stopped` |
| nothing (the connection failed) | anything | `no_response` |

The body is needed for 403 and 503 only (Shadow waits for it then).
"""

from __future__ import annotations

import json

from authgate.words import explain

FAQ_SURPRISES = ("other_401", "should_refuse", "no_response")
SURPRISES = FAQ_SURPRISES + ("other_403", "other_status", "other_message", "ip_blocked", "service_stopped")
STOPPED = b"Proxy service is currently disabled"  # service_status.rs:29
BODY_STATUSES = (403, 503)  # the statuses whose body tells who answered


def waiting(predicted: str, lang: str = "en") -> str:
    """Shadow mode, before the real proxy answers: the prediction alone."""
    p = explain.catalog(lang).phrases
    return " · ".join([p["shadow"], p["shadow_predicted"].format(comment=predicted)])


def judge_faq(predicted: str, predicted_allowed: bool, upstream_status: int | None,
              error: str | None = None, lang: str = "en") -> tuple[str, str]:
    """Shadow mode: does the real proxy's answer match the prediction?

    -> (comment line, verdict code). A 401 (or v4's 403) the auth layer would
    give, and a pass it would give, are as predicted; the codes in
    FAQ_SURPRISES are findings: the 401 came from elsewhere, or the real
    proxy's key or mode differs from config.yaml.
    """
    p = explain.catalog(lang).phrases
    tail = p["shadow_predicted"].format(comment=predicted)
    if upstream_status is None:
        return " · ".join(["---", p["shadow"], p["shadow_no_response"].format(error=error), tail]), "no_response"
    refused = upstream_status in (401, 403)
    if refused:
        code = "other_401" if predicted_allowed else "as_predicted"
    else:
        code = "passed" if predicted_allowed else "should_refuse"
    return " · ".join([str(upstream_status), p["shadow"], p[f"shadow_{code}"], tail]), code


def needs_body(meta: dict, status: int) -> bool:
    return "surface" in meta and status in BODY_STATUSES


def _quoted(text) -> str:
    text = "".join(c if c.isprintable() else " " for c in str(text))
    return text if len(text) <= 160 else text[:160] + "…"


def read_answer(status: int, body: bytes | None) -> tuple[str | None, str | None]:
    """(kind, detail) of the real answer: kind token_rejected, ip_blocked, stopped,
    other, or None when the body is unknown; detail the message (or the blocked IP)."""
    if body is None:
        return None, None
    if status == 503:
        return ("stopped", None) if body.startswith(STOPPED) else ("other", None)
    try:
        error = json.loads(body)["error"]
        kind = error["type"]
    except (ValueError, TypeError, KeyError):
        return "other", None
    if kind == "ip_blocked":
        return kind, _quoted(error.get("ip", "?"))
    if kind == "token_rejected":
        return kind, _quoted(error.get("message", ""))
    return "other", None


def judge(meta: dict, status: int | None, body: bytes | None = None, error: str | None = None,
          lang: str = "en") -> tuple[str, str]:
    """-> (comment line, verdict code)."""
    predicted_allowed = meta["outcome"] == "allow"
    if "surface" not in meta or status is None:  # faq, or no answer at all
        return judge_faq(meta["predicted"], predicted_allowed, status, error, lang)
    p = explain.catalog(lang).phrases
    predicted = None if predicted_allowed else meta.get("predicted_status")
    kind, detail = read_answer(status, body) if status in BODY_STATUSES else (None, None)
    words = {"status": status, "predicted": predicted, "message": detail, "ip": detail,
             "predicted_message": _quoted(meta.get("original_message") or "")}
    if kind == "ip_blocked":
        code = "ip_blocked"
    elif kind == "stopped":
        code = "service_stopped"
    elif predicted is None:
        code = {401: "other_401", 403: "other_403"}.get(status, "passed")
    elif status == predicted:
        same = status != 403 or kind is None or (kind == "token_rejected" and detail == words["predicted_message"])
        code = "as_predicted" if same else "other_message"
    else:
        code = "other_status" if status in (401, 403, 500) else "should_refuse"
    phrase = {"passed": "shadow_passed", "other_401": "shadow_other_401",
              "other_403": "shadow_other_403_token" if kind == "token_rejected" else "shadow_other_403",
              "other_message": "shadow_other_message" if kind == "token_rejected" else "shadow_other_body"}.get(
        code, f"shadow_v4_{code}")
    tail = p["shadow_predicted"].format(comment=meta["predicted"])
    return " · ".join([str(status), p["shadow"], p[phrase].format(**words), tail]), code
