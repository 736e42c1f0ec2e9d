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
    # any name a lenient server reads as `key` (issue #20)
    (b"/m?key[]=K", b"/m"),  # Express (qs), PHP and Rack read key[] as key
    (b"/m?key[0]=K&key[a]=K&a=1", b"/m?a=1"),
    (b"/m?key%5B%5D=K", b"/m"),
    (b"/m?a=1;key=K&b=2", b"/m?a=1&b=2"),  # `;` as a separator (PHP's arg_separator.input, Rack)
    (b"/m?key=K;a=1", b"/m?a=1"),
    (b"/m?a=1;b=2", b"/m?a=1;b=2"),
    (b"/m?%20key=K", b"/m"),  # whitespace around the decoded name
    (b"/m?key%20=K&+key+=K&%09key=K", b"/m"),
    (b"/m?%256Bey=K", b"/m"),  # percent-encoded twice
    (b"/m?%2525256Bey=K&a=1", b"/m?a=1"),
    (b"/m?%" + b"25" * 6 + b"6Bey=K&a=1", b"/m?a=1"),  # still encoded after five rounds: dropped
    (b"/m?%EF%BD%8B%EF%BD%85%EF%BD%99=K", b"/m"),  # fullwidth (NFKC)
    (b"/m?key%00=K", b"/m"),
    (b"/m?keyring=1&key[=2&xkey[]=3", b"/m?keyring=1&key[=2&xkey[]=3"),
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
    (f"/m?a=1;key={KEY}&b=2", "/m?a=1;key=<sk-…cdef (35 chars)>&b=2"),
    (f"/m?key[]={KEY}", "/m?key[]=<sk-…cdef (35 chars)>"),
    (f"/m?%256Bey={KEY}", "/m?%256Bey=<sk-…cdef (35 chars)>"),
])
def test_shown_target_fingerprints_each_key(target, shown):
    assert shown_target(target) == shown
    assert KEY not in shown_target(target)
