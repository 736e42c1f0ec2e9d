"""Decision -> words: the flow comment, the 401 body, the multi-line trace.

The FAQ's pitfalls table, turned into data: `locales/<lang>.json` holds, per
reason code, a short label (for the comment column), why it happened and how
to fix it, plus the phrases around them, in the FAQ's five languages.
Profile v4 adds its reason codes (admin routes, user tokens) and notes: the
original's quirks and the gate's one deliberate difference, pointed out
where they apply (`note_<code>` phrases).
Every text here is built from the decision record; none holds a full key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

from . import v4
from .credentials import shown_target
from .decision import Decision
from .settings import fingerprint

LANGUAGES = ("en", "fr", "es", "ja", "zh-TW")
# The original's log line, word for word: the FAQ tells people to look for it.
EMPTY_KEY_LOG = v4.EMPTY_KEY_LOG
_LOCALES = Path(__file__).with_name("locales")
# Gemini's API: /v1beta/..., or a model method on any version (google-genai 3.x calls
# /v1/models/{model}:generateContent); no other API puts a colon there.
_GEMINI_PATH = re.compile(r"/v1beta/|/v1\w*/models/[^/?]+:")


class Reason(NamedTuple):
    label: str  # a few words, for the comment column
    why: str  # one sentence; {winner} is the header read
    fix: str  # one sentence


class Catalog(NamedTuple):
    reasons: dict[str, Reason]
    phrases: dict[str, str]


def _load(lang: str, fallback: Catalog | None = None) -> Catalog:
    data = json.loads((_LOCALES / f"{lang}.json").read_text(encoding="utf-8"))
    reasons = {code: Reason(**r) for code, r in data["reasons"].items()}
    phrases = data["phrases"]
    if fallback:  # a missing entry reads in English rather than failing
        reasons = {**fallback.reasons, **reasons}
        phrases = {**fallback.phrases, **phrases}
    return Catalog(reasons, phrases)


_EN = _load("en")
CATALOGS: dict[str, Catalog] = {"en": _EN}
for _lang in LANGUAGES[1:]:
    if (_LOCALES / f"{_lang}.json").exists():
        CATALOGS[_lang] = _load(_lang, _EN)
REASONS = _EN.reasons


def pick_language(accept_language: str | None, default: str = "en") -> str:
    """The first supported language in an Accept-Language header, by q-value."""
    if not accept_language:
        return default
    ranked = []
    for i, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, i, tag.strip().lower()))
    for neg_q, _, tag in sorted(ranked):
        if neg_q >= 0:
            continue
        lang = _match(tag)
        if lang:
            return lang
    return default


def _match(tag: str) -> str | None:
    if tag == "zh" or tag.startswith("zh-"):
        # Traditional Chinese for every Chinese tag: zh-TW/HK/MO and zh-Hant are
        # it, and for zh-CN, zh-SG and zh-Hans it reads far better than English.
        return "zh-TW" if "zh-TW" in CATALOGS else None
    primary = tag.split("-")[0]
    return primary if primary in CATALOGS and primary != "zh" else None


def _cat(lang: str) -> Catalog:
    return CATALOGS.get(lang, _EN)


def phrase(lang: str, name: str, /, **values) -> str:
    """One phrase of the catalog, filled in (English when the language lacks it)."""
    return _cat(lang).phrases[name].format(**values)


def mode_why(auth_mode: str, allow_lan_access: bool, lang: str = "en") -> str:
    """Why the effective mode is what it is."""
    p = _cat(lang).phrases
    if auth_mode == "auto":
        return p["mode_auto_lan"] if allow_lan_access else p["mode_auto_off"]
    return p["mode_plain"].format(mode=auth_mode)


def header_part(d: Decision, lang: str = "en") -> str:
    """`x-api-key won (Authorization absent)`, `Authorization won (x-api-key ignored)`."""
    p = _cat(lang).phrases
    if d.winner is None:
        skipped = [p["skipped"].format(name=name) for name in d.skipped]
        return p["no_key_header"] + (f" ({'; '.join(skipped)})" if skipped else "")
    notes = []
    # Only the headers before the winner explain why it won; those after it are "ignored".
    for name, state in d.headers:
        if state == "won":
            break
        notes.append(p["skipped" if state == "non_ascii" else "absent"].format(name=name))
    notes += [p["ignored"].format(name=name) for name in d.ignored]
    return p["won"].format(name=d.winner) + (f" ({'; '.join(notes)})" if notes else "")


def status_token(d: Decision, lang: str = "en") -> str:
    return str(d.status) if d.status else _cat(lang).phrases["pass"]


def comment(d: Decision, lang: str = "en") -> str:
    """One line for mitmweb's comment column."""
    cat = _cat(lang)
    p = cat.phrases
    if d.route == "preflight":
        where = p["preflight"]
    else:
        where = p["admin"] if d.surface == "admin" else d.effective_mode
    parts = [status_token(d, lang), where]
    if d.auth_required:
        parts.append(header_part(d, lang))
    label = cat.reasons[d.reason].label
    if d.route == "bad_request":
        label = _fill(label, d, lang)
    elif d.reason == "auth_off" and d.configured_mode == "auto":
        label += " " + p["auto_off_label"]
    parts.append(label)
    if d.token == "unknown":
        parts.append(p["token_unknown_label"])
    elif d.token == "tagged":
        parts.append(p["tagged_label"].format(user=d.token_user))
    if d.shadowed:
        parts.append(p["shadowed_label"].format(name=d.shadowed))
    return " · ".join(parts)


def _fill(text: str, d: Decision, lang: str) -> str:
    return text.format(winner=d.winner or _cat(lang).phrases["no_key_header"],
                       skipped=", ".join(d.skipped) or _cat(lang).phrases["some_header"],
                       user=d.token_user or "?", ip=d.client_ip or v4.NO_CLIENT_IP,
                       header=d.headers[0][0] if d.route == "bad_request" else "?")


def notes(d: Decision, lang: str = "en") -> list[str]:
    """The quirks and differences that apply to this decision (v4), in words."""
    p = _cat(lang).phrases
    return [_fill(p["note_" + code], d, lang) for code in d.notes]


def _fix(d: Decision, lang: str) -> str:
    cat = _cat(lang)
    if d.shadowed:
        return cat.phrases["shadowed_fix"].format(winner=d.winner)
    fix = cat.reasons[d.reason].fix
    return _fill(fix, d, lang) if d.route == "bad_request" else fix


def message(d: Decision, lang: str = "en") -> str:
    """The 401 body's message: what was read, why it failed, the fix."""
    cat = _cat(lang)
    p = cat.phrases
    if d.route == "bad_request":  # refused before any auth, as the original's HTTP parser does
        return " ".join([p["refused"], _fill(cat.reasons[d.reason].why, d, lang), p["fix"].format(fix=_fix(d, lang))])
    if d.surface == "admin":
        out = [p["denied_admin"]]
    elif d.configured_mode != d.effective_mode:
        out = [p["denied_auto"].format(mode=d.effective_mode, why=mode_why(d.configured_mode, d.allow_lan_access, lang))]
    else:
        out = [p["denied"].format(mode=d.effective_mode)]
    if d.reason not in ("empty_api_key", "admin_empty_credentials"):
        out.append(p["header_read"].format(part=header_part(d, lang)))
    out.append(_fill(cat.reasons[d.reason].why, d, lang))
    if d.key_form == "whole" and d.reason == "mismatch":
        out.append(p["whole_value"])
    if d.presented is not None and d.reason != "empty_value":
        out.append(p["presented"].format(fingerprint=fingerprint(d.presented)))
    if d.shadowed:
        out.append(p["shadowed"].format(shadowed=d.shadowed, winner=d.winner))
    elif d.ignored:
        out.append(p["not_read"].format(names=", ".join(d.ignored)))
    out += notes(d, lang)
    out.append(p["fix"].format(fix=_fix(d, lang)))
    if d.configured_mode == "auto" and d.surface != "admin":
        out.append(p["auto_hint"])
    return " ".join(out)


def dialect(winner: str | None, path: str) -> str:
    """Answer in the error shape the client's SDK parses: x-api-key says Anthropic's,
    x-goog-api-key Google's. Authorization says no SDK (OpenAI's sends it, and so does
    anthropic 2.x by default), so then, as with no key header, the API path does."""
    if winner == "x-api-key" or (winner in (None, "Authorization") and path.startswith("/v1/messages")):
        return "anthropic"
    if winner == "x-goog-api-key" or (winner in (None, "Authorization") and _GEMINI_PATH.match(path)):
        return "google"
    return "openai"


def detail(d: Decision, lang: str = "en") -> dict:
    """Structured form of the decision (flow.metadata["auth"], the 401 body)."""
    reason = _cat(lang).reasons[d.reason]
    out = {
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
        "why": _fill(reason.why, d, lang),
        "fix": _fix(d, lang) or None,
        "presented": fingerprint(d.presented) if d.presented is not None else None,
    }
    if d.surface is not None:  # profile v4 (a faq record keeps exactly the fields above)
        out.update({
            "surface": d.surface,
            "credential": d.credential,
            "token": d.token,
            "token_user": d.token_user,
            "client_ip": d.client_ip,
            "original_message": d.rejection,
            "notes": list(d.notes),
            "notes_text": notes(d, lang),
        })
    return out


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


SHADOW_SURPRISES = ("other_401", "should_refuse", "no_response")


def shadow_waiting(predicted: str, lang: str = "en") -> str:
    """Shadow mode, before the real proxy answers: the prediction alone."""
    p = _cat(lang).phrases
    return " · ".join([p["shadow"], p["shadow_predicted"].format(comment=predicted)])


def shadow_verdict(predicted: str, predicted_allowed: bool, upstream_status: int | None,
                   error: str | None = None, lang: str = "en") -> tuple[str, str]:
    """Shadow mode: does the real proxy's answer match the prediction?

    -> (comment line, verdict code). A 401 (or v4's 403) the auth layer would
    give, and a pass it would give, are as predicted; the codes in
    SHADOW_SURPRISES are findings: the 401 came from elsewhere, or the real
    proxy's key or mode differs from config.yaml.
    """
    p = _cat(lang).phrases
    tail = p["shadow_predicted"].format(comment=predicted)
    if upstream_status is None:
        return " · ".join(["---", p["shadow"], p["shadow_no_response"].format(error=error), tail]), "no_response"
    refused = upstream_status in (401, 403)
    if refused:
        code = "other_401" if predicted_allowed else "as_predicted"
    else:
        code = "passed" if predicted_allowed else "should_refuse"
    return " · ".join([str(upstream_status), p["shadow"], p[f"shadow_{code}"], tail]), code


def www_authenticate(d: Decision) -> str:
    # RFC 6750 §3.1: error="invalid_token" only when a credential was presented.
    value = 'Bearer realm="antigravity-proxy"'
    if d.winner is not None:
        value += ', error="invalid_token"'
    return value


def trace(d: Decision, method: str, path: str, lang: str = "en") -> str:
    """The full decision, step by step, for auth.explain and the CLI."""
    cat = _cat(lang)
    p = cat.phrases
    lines = [f"{method} {shown_target(path)}", p["trace_mode"].format(mode=d.effective_mode, why=mode_why(d.configured_mode, d.allow_lan_access, lang))]
    if d.surface == "admin":
        lines.append(p["trace_admin"].format(inner=v4.admin_path(path.partition("?")[0])))
    reason = cat.reasons[d.reason]
    if d.route == "preflight":
        lines.append(p["trace_preflight"])
    elif not d.auth_required:
        lines.append(_fill(reason.why, d, lang))
        lines += ["  " + text for text in notes(d, lang)]
        if d.bind:
            lines.append("  " + p["trace_bind"].format(ip=d.bind[1], user=d.token_user))
    else:
        for name, state in d.headers:
            lines.append(f"  {name}: " + p[f"trace_{state}"])
        if d.winner == "Authorization":
            lines.append("  " + p["trace_bearer_stripped" if d.key_form == "bearer" else "trace_bearer_missing"])
        if d.presented is not None:
            lines.append("  " + p["trace_key_read"].format(fingerprint=fingerprint(d.presented)))
        if d.token is not None:
            lines.append("  " + p["trace_client_ip"].format(ip=d.client_ip))
        lines.append(p["trace_result"].format(outcome=status_token(d, lang), label=reason.label,
                                              why=_fill(reason.why, d, lang)))
        if d.shadowed:
            lines.append("  " + p["trace_shadowed"].format(name=d.shadowed))
        lines += ["  " + text for text in notes(d, lang)]
        if d.rejection is not None:
            lines.append("  " + p["trace_original"].format(status=d.status, message=d.rejection))
        if d.log is not None:
            lines.append("  " + p["trace_log"].format(line=d.log[1]))
        if d.bind:
            lines.append("  " + p["trace_bind"].format(ip=d.bind[1], user=d.token_user))
        if not d.allowed:
            lines.append(p["trace_fix"].format(fix=_fix(d, lang)))
    return "\n".join(lines)
