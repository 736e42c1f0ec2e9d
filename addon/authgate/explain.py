"""Decision -> words: the flow comment, the 401 body, the multi-line trace.

The FAQ's pitfalls table, turned into data: one entry per reason code with a
short label (for the comment column), why it happened and how to fix it.
Every text here is built from the decision record; none holds a full key.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from .decision import Decision
from .settings import fingerprint


class Reason(NamedTuple):
    label: str  # a few words, for the comment column
    why: str  # one sentence; {winner} is the header read
    fix: str  # one sentence


REASONS: dict[str, Reason] = {
    "preflight": Reason("OPTIONS bypasses auth",
                        "CORS preflight requests pass in every mode.", ""),
    "auth_off": Reason("auth off", "The effective auth mode is off: every request passes.", ""),
    "health_exempt": Reason("/healthz exempt",
                            "In all_except_health mode /healthz passes without a key.", ""),
    "key_ok": Reason("key ok", "The key read from {winner} matches proxy.api_key.", ""),
    "empty_api_key": Reason(
        "api_key is empty",
        "Auth is on but proxy.api_key is empty, so every request that needs auth is denied.",
        "Set a non-empty proxy.api_key in config.yaml (or delete the line to have one generated)."),
    "missing": Reason(
        "key required",
        "No Authorization, x-api-key or x-goog-api-key header was sent.",
        "Send Authorization: Bearer <proxy api_key>."),
    "non_ascii": Reason(
        "non-ASCII key skipped",
        "{skipped} held bytes outside visible ASCII, which count as absent, and no other key header was sent.",
        "Send the key as plain ASCII: look for smart quotes, non-breaking spaces or stray characters."),
    "empty_value": Reason(
        "empty key",
        "{winner} was sent but carries no key.",
        "Put the key in it (Authorization: Bearer <key>), or remove the header."),
    "bearer_no_space": Reason(
        "no space after Bearer",
        "Authorization is Bearer<key> without a space, so the Bearer prefix is not stripped "
        "and the whole value is compared.",
        "Write Authorization: Bearer <key>, with one space after Bearer."),
    "bearer_lowercase": Reason(
        "scheme not spelled Bearer",
        "Only the exact prefix \"Bearer \" (capital B) is stripped; another spelling stays part of "
        "the key and the whole value is compared.",
        "Write the scheme as Bearer, capital B: Authorization: Bearer <key>."),
    "bearer_extra_space": Reason(
        "extra space after Bearer",
        "Only \"Bearer \" with exactly one space is stripped; the key read starts with a space.",
        "Use exactly one space: Authorization: Bearer <key>."),
    "mismatch": Reason(
        "key mismatch",
        "The key read from {winner} does not match proxy.api_key.",
        "Use the api_key from config.yaml; after a regenerate, the new key is required at once."),
}

MODE_WHY = {
    ("auto", False): "auth_mode=auto with allow_lan_access=false resolves to off",
    ("auto", True): "auth_mode=auto with allow_lan_access=true resolves to all_except_health",
}


def mode_why(d: Decision) -> str:
    return MODE_WHY.get((d.configured_mode, d.allow_lan_access), f"auth_mode={d.configured_mode}")


def _names(names) -> str:
    return ", ".join(names)


def header_part(d: Decision) -> str:
    """`x-api-key won (Authorization absent)`, `Authorization won (x-api-key ignored)`."""
    notes = []
    for name, state in d.headers:
        if state == "won":
            break
        notes.append(f"{name} {'non-ASCII, skipped' if state == 'non_ascii' else 'absent'}")
    notes += [f"{name} ignored" for name in d.ignored]
    if d.winner is None:
        skipped = [f"{name} non-ASCII, skipped" for name in d.skipped]
        return "no key header" + (f" ({'; '.join(skipped)})" if skipped else "")
    # Absent headers after the winner say nothing; only list those before it.
    return f"{d.winner} won" + (f" ({'; '.join(notes)})" if notes else "")


def status_token(d: Decision) -> str:
    if not d.allowed:
        return "401"
    return {"preflight": "200", "health": "200", "method_not_allowed": "405"}.get(d.route, "pass")


def comment(d: Decision) -> str:
    """One line for mitmweb's comment column."""
    parts = [status_token(d), "preflight" if d.route == "preflight" else d.effective_mode]
    if d.auth_required:
        parts.append(header_part(d))
    label = REASONS[d.reason].label
    if d.reason == "auth_off" and d.configured_mode == "auto":
        label += " (auto, allow_lan_access=false)"
    parts.append(label)
    if d.shadowed:
        parts.append(f"shadowed a correct {d.shadowed}")
    return " · ".join(parts)


def _fill(text: str, d: Decision) -> str:
    return text.format(winner=d.winner or "no header", skipped=_names(d.skipped) or "a key header")


def message(d: Decision) -> str:
    """The 401 body's message: what was read, why it failed, the fix."""
    r = REASONS[d.reason]
    out = [f"Proxy auth ({d.effective_mode}"
           + (f", {mode_why(d)}" if d.configured_mode != d.effective_mode else "") + ") denied this request."]
    if d.reason != "empty_api_key":
        out.append(f"Key header read: {header_part(d)}.")
    out.append(_fill(r.why, d))
    if d.key_form == "whole" and d.reason == "mismatch":
        out.append("Authorization had no \"Bearer \" prefix, so its whole value was compared.")
    if d.presented is not None and d.reason not in ("empty_value",):
        out.append(f"Key presented: {fingerprint(d.presented)}.")
    fix = r.fix
    if d.shadowed:
        out.append(f"{d.shadowed} holds the right key but is never read, because {d.winner} comes first.")
        fix = f"Remove {d.winner} (or fix it); send only one key header you are sure of."
    elif d.ignored:
        out.append(f"{_names(d.ignored)} not read: only the first present key header counts.")
    out.append(f"Fix: {fix}")
    if d.configured_mode == "auto":
        out.append("(auth_mode is auto: turning allow_lan_access off would turn auth off for this proxy.)")
    return " ".join(out)


def dialect(d: Decision, path: str) -> str:
    """Answer in the error shape the client's SDK parses."""
    if d.winner == "x-api-key" or (d.winner is None and path.startswith("/v1/messages")):
        return "anthropic"
    if d.winner == "x-goog-api-key" or (d.winner is None and path.startswith("/v1beta/")):
        return "google"
    return "openai"


def detail(d: Decision) -> dict:
    """Structured form of the decision (flow.metadata["auth"], the 401 body)."""
    return {
        "outcome": "allow" if d.allowed else "deny",
        "route": d.route,
        "configured_mode": d.configured_mode,
        "effective_mode": d.effective_mode,
        "allow_lan_access": d.allow_lan_access,
        "auth_required": d.auth_required,
        "winner": d.winner,
        "key_form": d.key_form,
        "headers": dict(d.headers),
        "ignored": list(d.ignored),
        "skipped_non_ascii": list(d.skipped),
        "shadowed": d.shadowed,
        "reason": d.reason,
        "why": _fill(REASONS[d.reason].why, d),
        "fix": REASONS[d.reason].fix or None,
        "presented": fingerprint(d.presented) if d.presented is not None else None,
    }


def denial_body(d: Decision, path: str) -> bytes:
    msg = message(d)
    kind = dialect(d, path)
    if kind == "anthropic":
        body = {"type": "error", "error": {"type": "authentication_error", "message": msg}}
    elif kind == "google":
        body = {"error": {"code": 401, "message": msg, "status": "UNAUTHENTICATED"}}
    else:
        body = {"error": {"message": msg, "type": "invalid_request_error", "param": None,
                          "code": "invalid_api_key"}}
    body["auth_gate"] = detail(d)
    return json.dumps(body, ensure_ascii=False).encode()


def www_authenticate(d: Decision) -> str:
    # RFC 6750 §3.1: error="invalid_token" only when a credential was presented.
    value = 'Bearer realm="antigravity-proxy"'
    if d.winner is not None:
        value += ', error="invalid_token"'
    return value


def trace(d: Decision, method: str, path: str) -> str:
    """The full decision, step by step, for auth.explain and the CLI."""
    lines = [f"{method} {path}",
             f"effective mode: {d.effective_mode} ({mode_why(d)})"]
    if d.route == "preflight":
        lines.append("OPTIONS: CORS preflight, passes in every mode.")
    elif not d.auth_required:
        lines.append(_fill(REASONS[d.reason].why, d))
    else:
        for name, state in d.headers:
            lines.append(f"  {name}: " + {
                "absent": "absent",
                "non_ascii": "present, not visible ASCII: counts as absent",
                "won": "present, read (first present key header)",
                "ignored": "present, ignored (a higher-priority header came first)",
            }[state])
        if d.winner == "Authorization":
            lines.append("  Bearer prefix: " + ("stripped" if d.key_form == "bearer"
                                                else "not found, the whole value is the key"))
        if d.presented is not None:
            lines.append(f"  key read: {fingerprint(d.presented)}")
        r = REASONS[d.reason]
        lines.append(f"result: {'pass' if d.allowed else '401'}: {r.label}. {_fill(r.why, d)}")
        if d.shadowed:
            lines.append(f"  {d.shadowed} holds the right key but is never read.")
        if not d.allowed:
            lines.append("fix: " + (f"Remove {d.winner}; send only one key header you are sure of."
                                    if d.shadowed else r.fix))
    return "\n".join(lines)
