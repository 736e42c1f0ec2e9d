"""The words of a decision, made once per distinct decision and language (pure).

Most requests repeat a decision: the same key in the same header under the same
settings. explain.detail() and explain.comment() build the same dict and line
for each of them (about 60k CPU instructions per request together), and a
denial's explained body (answers.denial) several times that; here they are
kept, for up to WORDS_KEPT distinct decisions each, the least recently used
forgotten first.

What a decision is known by: its record and, for profile v4, its facts (the
token, the client IP, ...: V4Decision's attributes), and the language. Never the
key a client presented: that is known by its fingerprint, as the words show it
(`shown_key`), so the cache holds no secret and a client cannot grow it past
its bound.
"""

from __future__ import annotations

from collections import OrderedDict

from authgate.rules.common import Decision
from authgate.words import answers, error_bodies, explain

WORDS_KEPT = 1024  # distinct (decision, language) pairs

_kept: OrderedDict[tuple, tuple[dict, str]] = OrderedDict()
_answers: OrderedDict[tuple, answers.Answer] = OrderedDict()
_PRESENTED = Decision._fields.index("presented")


def shown_key(d: Decision):
    """What the texts show of the presented key, as a cache key: what its fingerprint
    (credentials.fingerprint) shows, never more: the first 3 and last 4 characters and the
    length of a key of 12 or more, the length of a shorter one; a presented value that is
    a fingerprint already (a str) as it is. Cheaper than formatting the fingerprint on
    every request; None when no key was read."""
    p = d.presented
    if p is None or isinstance(p, str):
        return p
    n = len(p)
    return (p[:3], p[-4:], n) if n >= 12 else n


def known_as(d: Decision) -> tuple:
    """What a decision is known by here: the record without `presented`, the key's
    fingerprint instead, and the v4 facts."""
    facts = getattr(d, "__dict__", None)
    return d[:_PRESENTED], d[_PRESENTED + 1:], shown_key(d), tuple(facts.items()) if facts else None


def words(d: Decision, lang: str) -> tuple[dict, str]:
    """(explain.detail(d, lang), explain.comment(d, lang)): the dict is the flow's own
    copy (addons add to it); the lists and dicts inside it are shared, never changed."""
    key = (lang, *known_as(d))
    found = _kept.get(key)
    if found is None:
        found = _kept[key] = (explain.detail(d, lang), explain.comment(d, lang))
        if len(_kept) > WORDS_KEPT:
            _kept.popitem(last=False)
    else:
        _kept.move_to_end(key)
    return dict(found[0]), found[1]


def denial(d: Decision, path: str, lang: str = "en", explained: bool = True) -> answers.Answer:
    """answers.denial(d, path, lang, explained): the path counts only through the
    error shape it picks (error_bodies.dialect). An Answer is immutable: shared."""
    shape = error_bodies.dialect(None if d.status == 400 else d.winner, path)
    key = (lang, explained, shape, *known_as(d))
    found = _answers.get(key)
    if found is None:
        found = _answers[key] = answers.denial(d, path, lang, explained)
        if len(_answers) > WORDS_KEPT:
            _answers.popitem(last=False)
    else:
        _answers.move_to_end(key)
    return found


def forget() -> None:
    """Drop every kept text (tests; a catalog changed)."""
    _kept.clear()
    _answers.clear()
