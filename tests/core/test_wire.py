"""wire.py: the wire as the original's HTTP server reads it (pure), case by case against the crates
its Cargo.lock pins: hyper 1.8.1, httparse 1.10.1, http 1.4.0 (file:line at those tags; the facts
are in /work/notes/original-protocol.md, B1-B7 and B10)."""

import pytest

from authgate.rules import wire

CLIENT_HELLO = bytes.fromhex("16030100f8010000f40303") + b"\x00" * 40  # the start of a TLS 1.x ClientHello


# ---- a connection's first bytes

@pytest.mark.parametrize("data, kind", [
    # B1: 0x16 is no method byte: httparse parse_token Error::Token with no method yet (lib.rs:887-892),
    # hyper Parse::Method (role.rs:194-196), 400 (role.rs:466-469).
    (CLIENT_HELLO, "tls"),
    (b"\x16", "not_http1"),  # one byte: no record header to name it TLS, still no method byte: 400
    (b"\x80\x2e\x01\x03\x01", "not_http1"),  # an SSLv2-style hello
    (b"\r\n\x16\x03\x01", "tls"),  # httparse skips empty lines first (lib.rs:558-580)
    (b"\x00\x00", "not_http1"),
    (b" GET / HTTP/1.1\r\n", "not_http1"),
    (b"\rX", "not_http1"),  # CR must be followed by LF (lib.rs:565)
    # B2: the whole preface: on_parse_error finds it before it writes anything (conn.rs:206-209, 808-812)
    (wire.H2_PREFACE + b"\x00\x00\x12\x04\x00", "h2_preface"),
    (wire.H2_PREFACE, "h2_preface"),
    # fewer than 24 bytes once "HTTP/2.0" is complete: has_h2_prefix is false, so the 400 (B2's edge case)
    (b"PRI * HTTP/2.0\r\n", "bad_version"),
    (b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", "bad_version"),
    (b"\r\n" + wire.H2_PREFACE, "bad_version"),  # has_h2_prefix reads the buffer from its start
    # HTTP/1 as far as these bytes tell, or too few to tell: left to the HTTP/1 layer
    (b"GET / HTTP/1.1\r\n\r\n", None),
    (b"PRI * HTT", None),
    (b"\r\n\r\n", None),
    (b"\r", None),
    (b"", None),
    (b"POST /v1/messages HTTP/1.1\r\n", None),
    (b"GET /\x00 HTTP/1.1\r\n\r\n", None),  # (a bad target is the request head's business: head_refusal)
])
def test_connection_start(data, kind):
    assert wire.connection_start(data) == kind


def test_each_kind_has_hypers_status():
    assert wire.STATUS["tls"] == wire.STATUS["not_http1"] == wire.STATUS["bad_target"] == 400
    assert wire.STATUS["h2_preface"] is None  # nothing written
    assert (wire.STATUS["too_many_headers"], wire.STATUS["uri_too_long"]) == (431, 414)


# ---- a request head

def head(line: bytes, fields: int = 1) -> list[bytes]:
    return [line] + [b"X-H%d: v" % i for i in range(fields)]


@pytest.mark.parametrize("line, kind", [
    (b"GET /v1/models HTTP/1.1", None),
    (b"POST /v1/messages?beta=true HTTP/1.0", None),
    (b"OPTIONS * HTTP/1.1", None),
    (b"GET http://127.0.0.1:8045/healthz HTTP/1.1", None),
    (b"GET /v1/mod\xc3\xa8ls HTTP/1.1", None),  # valid UTF-8 is taken (lib.rs:923; http path.rs:66-68, 121-122)
    (b'GET /v1/"{x}" HTTP/1.1', None),  # `"`, `{`, `}` in the path: allowed "for parity" (http path.rs:75-81)
    (b"GET /v1?a=`{}|^ HTTP/1.1", None),  # the query allows 0x3F-0x7E (path.rs:95-100)
    (b"GET /healthz#<>\"` HTTP/1.1", None),  # nothing after `#` is checked by http (path.rs:48-51)
    (b"M-SEARCH * HTTP/1.1", None),  # any token method (lib.rs:78-82)
    # control bytes, DEL, not UTF-8: not in URI_MAP or from_utf8 fails: Parse::Uri, 400 (lib.rs:69-71, 911-931)
    (b"GET /v1/mo\x00dels HTTP/1.1", "bad_target"),
    (b"GET /v1/mo\x1bdels HTTP/1.1", "bad_target"),
    (b"GET /v1/mo\x7fdels HTTP/1.1", "bad_target"),
    (b"GET /v1/mo\tdels HTTP/1.1", "bad_target"),
    (b"GET /v1/mo\x01dels HTTP/1.1", "bad_target"),
    (b"GET /v1/mo\xffdels HTTP/1.1", "bad_target"),
    (b"GET /internal/x\x00/v1/models HTTP/1.1", "bad_target"),
    (b"GET /v1/models?key=a\x00b HTTP/1.1", "bad_target"),
    (b"GET  /v1/models HTTP/1.1", "bad_target"),  # two spaces: an empty target (lib.rs:918-920)
    (b"GET / HTTP/1.1 ", "bad_version"),  # trailing bytes after the version: newline! fails, 400
    # http 1.4.0 InvalidUriChar -> Parse::Uri (hyper error.rs:618-622): <, >, ` in the path; ", <, > in the query
    (b"GET /v1/<models> HTTP/1.1", "bad_target"),
    (b"GET /v1/`models HTTP/1.1", "bad_target"),
    (b'GET /v1/models?a="b" HTTP/1.1', "bad_target"),
    (b"GET /v1/models?a=<b> HTTP/1.1", "bad_target"),
    (b"GET http://h/v1/<m> HTTP/1.1", "bad_target"),
    # the version: HTTP/1.0 and HTTP/1.1 only (lib.rs:758-790)
    (b"GET / HTTP/2.0", "bad_version"),
    (b"GET / HTTP/1.2", "bad_version"),
    (b"GET / http/1.1", "bad_version"),
    (b"GET /", "bad_version"),
    (b"PRI * HTTP/2.0", "h2_preface"),  # the preface's first line: the close without a byte
    # the method: a token (lib.rs:887-905)
    (b"G(T / HTTP/1.1", "bad_method"),
    (b"GET\t/ HTTP/1.1", "bad_method"),
    (b"\x16\x03\x01 / HTTP/1.1", "bad_method"),
])
def test_the_request_line(line, kind):
    assert wire.head_refusal(head(line)) == kind


def test_more_than_100_header_fields_is_431():
    # role.rs:31 DEFAULT_MAX_HEADERS = 100; httparse lib.rs:1044, 1223-1226: the 101st complete line is
    # TooManyHeaders, hyper Parse::TooLarge (error.rs:600), 431 (role.rs:470)
    assert wire.head_refusal(head(b"GET / HTTP/1.1", 100)) is None
    assert wire.head_refusal(head(b"GET / HTTP/1.1", 101)) == "too_many_headers"
    assert wire.head_refusal(head(b"GET / HTTP/1.1", 5000)) == "too_many_headers"
    # a line httparse refuses among the first 101 is found first: 400 (lib.rs:1117-1135)
    fold = head(b"GET / HTTP/1.1", 120)
    fold[50] = b" folded"
    assert wire.head_refusal(fold) == "bad_header"
    space = head(b"GET / HTTP/1.1", 120)
    space[3] = b"X-A : v"
    assert wire.head_refusal(space) == "bad_header"
    late = head(b"GET / HTTP/1.1", 120)
    late[110] = b" folded"  # past the 101st: the 431 comes first
    assert wire.head_refusal(late) == "too_many_headers"


def test_a_target_over_65534_bytes_is_414():
    # role.rs:34 MAX_URI_LEN = u16::MAX - 1, role.rs:172-174 (after httparse: the header count comes first)
    assert wire.head_refusal(head(b"GET /" + b"a" * 65533 + b" HTTP/1.1")) is None
    assert wire.head_refusal(head(b"GET /" + b"a" * 65534 + b" HTTP/1.1")) == "uri_too_long"
    assert wire.head_refusal(head(b"GET /" + b"a" * 65534 + b" HTTP/1.1", 101)) == "too_many_headers"


@pytest.mark.parametrize("target, cut", [
    (b"/healthz#x", b"/healthz"),  # http path.rs:48-51, 117-119
    (b"/v1/models?a=1#frag", b"/v1/models?a=1"),  # path.rs:106-109
    (b"/a#b#c", b"/a"),
    (b"#x", b""),
    (b"/v1/models", b"/v1/models"),
])
def test_the_fragment_is_cut(target, cut):
    assert wire.cut_fragment(target) == cut


def test_cut_fragment_returns_the_same_object_without_one():
    target = b"/v1/models?alt=sse"
    assert wire.cut_fragment(target) is target
