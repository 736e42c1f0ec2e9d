"""credentials.py: the client's credentials by every road (pure)."""

import pytest

from authgate.rules.credentials import STRIPPED_HEADERS, STRIPPED_NAMES, shown_target, strip_query_key

KEY = "sk-0123456789abcdef0123456789abcdef"


def test_the_headers_taken_out():
    assert STRIPPED_HEADERS == ("Authorization", "x-api-key", "x-goog-api-key", "Proxy-Authorization",
                                "X-Forwarded-Authorization")
    assert STRIPPED_NAMES == {b"authorization", b"x-api-key", b"x-goog-api-key", b"proxy-authorization",
                              b"x-forwarded-authorization"}


@pytest.mark.parametrize("target, forwarded", [
    (b"/v1/models", b"/v1/models"),
    (b"/v1beta/models?key=K", b"/v1beta/models"),
    (b"/v1beta/models?key=K&alt=sse", b"/v1beta/models?alt=sse"),
    (b"/v1beta/models?alt=sse&key=K", b"/v1beta/models?alt=sse"),
    (b"/m?a=1&key=K&b=2", b"/m?a=1&b=2"),
    (b"/m?KEY=K&Key=K&%6Bey=K&k%65y=K", b"/m"),  # any case, any percent-encoding: an upstream may decode it
    (b"/m?key=", b"/m"),
    (b"/m?key", b"/m?key"),  # no value, nothing to keep home
    (b"/m?monkey=1&keys=2&apikey=3&key2=4", b"/m?monkey=1&keys=2&apikey=3&key2=4"),
    (b"/m?q=key%3D1", b"/m?q=key%3D1"),
    (b"/m?", b"/m?"),
])
def test_strip_query_key(target, forwarded):
    assert strip_query_key(target) == forwarded


def test_strip_query_key_returns_the_same_object_when_nothing_goes():
    target = b"/v1/models?alt=sse"
    assert strip_query_key(target) is target  # (the forwarding path skips the rewrite then)


@pytest.mark.parametrize("target, shown", [
    (f"/v1beta/models?key={KEY}", "/v1beta/models?key=<sk-…cdef (35 chars)>"),
    (f"/v1beta/models?alt=sse&KEY={KEY}&x=1", "/v1beta/models?alt=sse&KEY=<sk-…cdef (35 chars)>&x=1"),
    (f"/m?%6bey={KEY}", "/m?%6bey=<sk-…cdef (35 chars)>"),
    ("/m?key=short", "/m?key=<…(5 chars)>"),
    ("/m?key=", "/m?key=<(empty)>"),
    ("/m?monkey=sk-x&q=1", "/m?monkey=sk-x&q=1"),
    ("/v1/models", "/v1/models"),
])
def test_shown_target_fingerprints_each_key(target, shown):
    assert shown_target(target) == shown
    assert KEY not in shown_target(target)
