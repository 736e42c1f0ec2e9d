"""Decision -> words: the flow comment, the 401 body's message, the detail
record, the multi-line trace; the language catalogs they are written from.

The FAQ's pitfalls table, turned into data: `locales/<lang>.json` holds, per
reason code, a short label (for the comment column), why it happened and how
to fix it, plus the phrases around them, in the FAQ's five languages.
Profile v4 adds its reason codes (admin routes, user tokens) and notes: the
original's quirks and the gate's one deliberate difference, pointed out
where they apply (`note_<code>` phrases).
Every text here is built from the decision record; none holds a full key.
The shapes these words go out in (each SDK's error body, the headers) are
error_bodies.py's; shadow mode's verdict lines are verdict.py's.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import NamedTuple

from authgate.rules import v4
from authgate.rules.common import Decision
from authgate.rules.credentials import fingerprint, shown_target
from authgate.rules.v4_admin import admin_path

LANGUAGES = ("en", "fr", "es", "ja", "zh-TW")
# The original's log line, word for word: the FAQ tells people to look for it.
_LOCALES = Path(__file__).with_name("locales")


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


def catalog(lang: str) -> Catalog:
    """The language's catalog (English when there is none)."""
    return CATALOGS.get(lang, _EN)


def tool_words(part: str, lang: str) -> dict[str, str]:
    """A tool's own words: a top-level part of locales/<lang>.json ("lesson" for `just demo`,
    "agent_demo" for `just demo --agents`), English where the language lacks one."""
    return {**_part(part, "en"), **_part(part, lang)}


@functools.cache
def _part(part: str, lang: str) -> dict[str, str]:
    path = _LOCALES / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8")).get(part, {}) if path.exists() else {}


def phrase(lang: str, name: str, /, **values) -> str:
    """One phrase of the catalog, filled in (English when the language lacks it)."""
    return catalog(lang).phrases[name].format(**values)


def mode_why(auth_mode: str, allow_lan_access: bool, lang: str = "en") -> str:
    """Why the effective mode is what it is."""
    p = catalog(lang).phrases
    if auth_mode == "auto":
        return p["mode_auto_lan"] if allow_lan_access else p["mode_auto_off"]
    return p["mode_plain"].format(mode=auth_mode)


def header_part(d: Decision, lang: str = "en") -> str:
    """`x-api-key won (Authorization absent)`, `Authorization won (x-api-key ignored)`."""
    p = catalog(lang).phrases
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
    return str(d.status) if d.status else catalog(lang).phrases["pass"]


def comment(d: Decision, lang: str = "en") -> str:
    """One line for mitmweb's comment column."""
    cat = catalog(lang)
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
    if "{" not in text:  # most texts (every request's "why" goes through here)
        return text
    p = catalog(lang).phrases
    return text.format(winner=d.winner or p["no_key_header"], skipped=", ".join(d.skipped) or p["some_header"],
                       user=d.token_user or "?", ip=d.client_ip or v4.NO_CLIENT_IP,
                       header=d.headers[0][0] if d.route == "bad_request" else "?")


def notes(d: Decision, lang: str = "en") -> list[str]:
    """The quirks and differences that apply to this decision (v4), in words."""
    p = catalog(lang).phrases
    return [_fill(p["note_" + code], d, lang) for code in d.notes]


def _fix(d: Decision, lang: str) -> str:
    cat = catalog(lang)
    if d.shadowed:
        return cat.phrases["shadowed_fix"].format(winner=d.winner)
    fix = cat.reasons[d.reason].fix
    return _fill(fix, d, lang) if d.route == "bad_request" else fix


def message(d: Decision, lang: str = "en") -> str:
    """The 401 body's message: what was read, why it failed, the fix."""
    cat = catalog(lang)
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


def detail(d: Decision, lang: str = "en") -> dict:
    """Structured form of the decision (flow.metadata["auth"], the 401 body)."""
    reason = catalog(lang).reasons[d.reason]
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


def trace(d: Decision, method: str, path: str, lang: str = "en") -> str:
    """The full decision, step by step, for auth.explain and the CLI."""
    cat = catalog(lang)
    p = cat.phrases
    lines = [f"{method} {shown_target(path)}", p["trace_mode"].format(mode=d.effective_mode, why=mode_why(d.configured_mode, d.allow_lan_access, lang))]
    if d.surface == "admin":
        lines.append(p["trace_admin"].format(inner=admin_path(path.partition("?")[0])))
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
