"""Security: keys are compared in constant time: hmac.compare_digest decides, for the key read and
for the shadow check, and nothing else stands beside it (the pure decision; no process)."""

from __future__ import annotations

from types import SimpleNamespace

from authgate.rules import key_headers
from authgate.rules.common import RequestView
from authgate.rules.decide import decide

KEY = "sk-sec0123456789abcdef0123456789ab"
K = KEY.encode()
WRONG = b"sk-presentedWRONG0123456789abcdef0"  # a long wrong key a client presents

POLICY = SimpleNamespace(auth_mode="strict", allow_lan_access=False, api_key=KEY, profile="faq")


def _view(*headers: tuple[bytes, bytes]) -> RequestView:
    return RequestView("GET", "/v1/models", ((b"Host", b"gate"), *headers))


def test_key_comparison_is_hmac_compare_digest(monkeypatch):
    calls: list[tuple] = []
    real = key_headers.hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(key_headers.hmac, "compare_digest", spy)

    d = decide(_view((b"Authorization", b"Bearer " + K)), POLICY)
    assert d.allowed and d.reason == "key_ok"
    assert calls == [(K, K)]  # the presented key against the configured one, as bytes

    calls.clear()
    d = decide(_view((b"x-api-key", WRONG)), POLICY)
    assert not d.allowed and d.reason == "mismatch"
    assert calls == [(WRONG, K)]

    calls.clear()
    d = decide(_view((b"Authorization", b"Bearer " + WRONG), (b"x-api-key", K)), POLICY)
    assert not d.allowed and d.shadowed == "x-api-key"
    assert (WRONG, K) in calls and (K, K) in calls  # the shadow check compares in constant time too

    # The comparison alone decides: no other equality test stands beside it.
    monkeypatch.setattr(key_headers.hmac, "compare_digest", lambda a, b: True)
    assert decide(_view((b"x-api-key", WRONG)), POLICY).allowed
    monkeypatch.setattr(key_headers.hmac, "compare_digest", lambda a, b: False)
    assert not decide(_view((b"Authorization", b"Bearer " + K)), POLICY).allowed
