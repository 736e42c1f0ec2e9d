"""The wire as the original's HTTP server reads it (pure): what a connection's
first bytes and a request head get before any middleware runs, and the
request target as it reaches the rules.

The original serves port 8045 with hyper's HTTP/1 server and nothing else
(app45 proxy/server.rs:849-874: `http1::Builder::new().serve_connection`,
no TLS, no HTTP/2; the same at v3.3.50, server.rs:231-233). Its Cargo.lock
pins hyper 1.8.1, httparse 1.10.1 (the request-line and header parser) and
http 1.4.0 (the URI); the line numbers below are at those tags.

* `connection_start(data)`: a TLS ClientHello (or any first byte that cannot
  start a method) gets hyper's 400 and a close; the HTTP/2 prior-knowledge
  preface gets a close without a byte.
* `head_refusal(lines)`: a request head hyper refuses: the request line
  (method, target bytes, version), more than 100 header fields (431), a
  target over 65,534 bytes (414), the characters the http crate refuses.
* `cut_fragment(target)`: the target without its `#fragment`, which the http
  crate drops before anything reads the path.

Every refusal kind maps to hyper's status in STATUS (None: no answer, a
close). How the gate answers (hyper's bare bytes or an explained JSON
body) is the adapter's business (responses.refusal).
"""

from __future__ import annotations

import re

# hyper src/proto/h1/conn.rs:29: the HTTP/2 connection preface. on_parse_error
# (conn.rs:808-812) checks for it (has_h2_prefix, conn.rs:206-209: the first 24
# bytes of the read buffer) before it writes any error answer: Parse::VersionH2,
# no response, the connection closed.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_H2_LINE = H2_PREFACE[:14]  # "PRI * HTTP/2.0": httparse knows the version is wrong here (lib.rs:758-775)
MAX_HEADERS = 100  # hyper role.rs:31 DEFAULT_MAX_HEADERS; the 101st field: httparse TooManyHeaders (lib.rs:1044)
MAX_URI_LEN = 65534  # hyper role.rs:34, 172-174: (u16::MAX - 1), a longer target is Parse::UriTooLong

# httparse lib.rs:78-82 (TOKEN_MAP): the bytes of a method and of a header name.
TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# httparse lib.rs:69-71 (URI_MAP): `!`..`~` and 0x80-0xFF; no control byte, no space, no DEL.
URI_BYTES = bytes(range(0x21, 0x7F)) + bytes(range(0x80, 0x100))
# httparse lib.rs:90-92 (HEADER_VALUE_MAP): tab, space to `~`, 0x80-0xFF.
_VALUE_BYTES = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
_TLS_RECORD = b"\x16\x03"  # a TLS handshake record (ClientHello): 0x16, then the version's 0x03

# What hyper answers for each kind of refusal (role.rs:463-483: Parse::Method,
# Header, Uri, Version -> 400; TooLarge -> 431; UriTooLong -> 414). None: nothing.
STATUS = {
    "tls": 400,  # a TLS ClientHello: 0x16 is no method byte (httparse lib.rs:887-892 -> role.rs:194-196)
    "not_http1": 400,  # any other first byte that cannot start a method (the same path)
    "h2_preface": None,  # the HTTP/2 preface: closed without a byte (conn.rs:808-812)
    "bad_method": 400,  # httparse parse_token (lib.rs:887-905), Parse::Method
    "bad_target": 400,  # httparse parse_uri (lib.rs:911-931) or http PathAndQuery (path.rs:40-125), Parse::Uri
    "bad_version": 400,  # httparse parse_version (lib.rs:758-790): HTTP/1.0 and HTTP/1.1 only
    "bad_header": 400,  # a header line httparse refuses (name, obs-fold, value byte: lib.rs:1117-1211)
    "too_many_headers": 431,  # the 101st header field (httparse lib.rs:1044, 1223-1226; hyper error.rs:600)
    "uri_too_long": 414,  # role.rs:172-174
    "bad_request": 400,  # mitmproxy's own parser refused the head (a malformed line, framing headers)
}


def connection_start(data: bytes) -> str | None:
    """What hyper does with the first bytes of a connection, when they are not
    the start of an HTTP/1 request: "tls", "not_http1" (400 and close),
    "h2_preface" (close, no answer) or "bad_version" (an incomplete HTTP/2
    preface: 400). None: HTTP/1 as far as these bytes tell (or too few to tell)."""
    i = 0
    while True:  # httparse skips empty lines before the request line (lib.rs:558-580)
        if data.startswith(b"\r\n", i):
            i += 2
        elif data.startswith(b"\n", i):
            i += 1
        else:
            break
    first = data[i:i + 1]
    if not first or (first == b"\r" and len(data) == i + 1):
        return None  # nothing yet (a lone CR may still become CRLF)
    if first not in TOKEN:  # httparse parse_token: the first byte of the method (lib.rs:888-892)
        return "tls" if data.startswith(_TLS_RECORD, i) else "not_http1"
    if data.startswith(_H2_LINE, i):
        if i == 0 and len(data) >= len(H2_PREFACE):
            return "h2_preface" if data.startswith(H2_PREFACE) else "bad_version"
        return "bad_version"  # fewer than 24 bytes: has_h2_prefix is false, so hyper's 400 (conn.rs:206-209)
    return None


# The request line httparse takes: a token method, one space, a target of URI_MAP bytes, one
# space, HTTP/1.0 or HTTP/1.1 (lib.rs:489-500).
_REQUEST_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ ([!-~\x80-\xff]+) HTTP/1\.[01]")
# The common one, which needs no second look: a target of visible ASCII without the characters
# http refuses somewhere (", <, >, `), so no UTF-8 or path/query question arises.
_PLAIN_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [!#-;=?-_a-~]+ HTTP/1\.[01]")


def head_refusal(lines: list[bytes]) -> str | None:
    """The kind of refusal (STATUS) hyper gives a complete request head, in the order
    hyper finds them; None when it takes it. `lines`: the request line, then each
    header line, without their line endings (as mitmproxy hands them on)."""
    line = lines[0]
    if _PLAIN_LINE.fullmatch(line) is None or len(lines) > MAX_HEADERS + 1 or len(line) > MAX_URI_LEN:
        return _refusal(lines)  # every request gets this far: the rest is rare
    return None


def _refusal(lines: list[bytes]) -> str | None:
    m = _REQUEST_LINE.fullmatch(lines[0])
    if m is None:
        return _line_refusal(lines[0])
    target = m.group(1)
    if not target.isascii():
        try:
            target.decode("utf-8")  # parse_uri: str::from_utf8 (lib.rs:923-926)
        except UnicodeDecodeError:
            return "bad_target"
    if len(lines) > MAX_HEADERS + 1:
        return "bad_header" if _bad_header(lines[1:MAX_HEADERS + 2]) else "too_many_headers"
    if len(target) > MAX_URI_LEN:
        return "uri_too_long"
    if _refused_by_http(target):
        return "bad_target"
    return None


def _line_refusal(line: bytes) -> str:
    """Which part of a request line httparse refuses (one that _REQUEST_LINE does not take)."""
    method, _, rest = line.partition(b" ")
    if not method or method.translate(None, TOKEN):
        return "bad_method"
    target = rest.partition(b" ")[0]
    if not target or target.translate(None, URI_BYTES):
        return "bad_target"  # empty, or a byte outside URI_MAP (control bytes, DEL; a tab)
    # a version other than HTTP/1.x, or trailing bytes after it (httparse's newline! check): a 400 too
    return "h2_preface" if line == _H2_LINE else "bad_version"


def _bad_header(lines: list[bytes]) -> bool:
    """Whether httparse stops at one of these header lines before it counts the 101st:
    a name of token bytes, then the colon at once (no obs-fold line, no space before
    the colon; lib.rs:1117-1135), a value of HEADER_VALUE_MAP bytes (lib.rs:90-92)."""
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, TOKEN) or value.translate(None, _VALUE_BYTES):
            return True
    return False


def _refused_by_http(target: bytes) -> bool:
    """The bytes httparse lets through but http 1.4.0's PathAndQuery::from_shared
    refuses (InvalidUriChar, hence Parse::Uri and 400: hyper error.rs:618-622):
    `<`, `>` and a backtick in the path (path.rs:56-83), `"`, `<` and `>` in the
    query (path.rs:95-111). Nothing after `#` is read (path.rs:48-51, 106-109)."""
    if target[:1] != b"/":
        _, sep, rest = target.partition(b"://")  # absolute-form: the path after the authority
        target = rest[rest.find(b"/"):] if sep and b"/" in rest else b""
    path, _, query = target.split(b"#", 1)[0].partition(b"?")
    return (b"<" in path or b">" in path or b"`" in path
            or b'"' in query or b"<" in query or b">" in query)


def cut_fragment(target: bytes) -> bytes:
    """The request target without its fragment, as http 1.4.0 keeps it (path.rs:117-119:
    `src.truncate(i)` at the first `#`). The same object when it has none."""
    i = target.find(b"#")  # (not `in`: for bytes, `in` first tries the needle as an int)
    return target if i < 0 else target[:i]
