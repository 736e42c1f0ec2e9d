"""The gate's own answers, as mitmproxy responses, and the flow text the addons
share (markers, the loggable path). What the original answers, as plain data,
comes from answers.py and the words from explain.py, in error_bodies.py's
shapes; here they only become mitmproxy responses, and `answer` puts one on
the flow (or, at the request headers, on the wire at once).
"""

from __future__ import annotations

import email.utils
import json
import logging

from mitmproxy import http

from authgate import mitmproxy_compat
from authgate.rules.common import Decision
from authgate.rules.credentials import shown_target
from authgate.words import answers, error_bodies, explain, memo

DENIED_MARKER = ":no_entry:"
GATE_MARKER = ":shield:"  # answered by the gate itself without denying: /healthz, the preflight, 405
SURPRISE_MARKER = ":warning:"  # shadow mode: the real proxy did not answer as predicted
CORS = {"access-control-allow-origin": "*"}
ANSWERED_EARLY = "auth_answered_early"  # flow.metadata: answered at the headers, the connection closed
EARLY_MESSAGE = ("answered by the auth gate at the request headers; the connection was closed without "
                 "reading the request body")

log = logging.getLogger("authgate")


def json_response(status: int, body: dict, **headers: str) -> http.Response:
    return http.Response.make(status, json.dumps(body).encode(),
                              {"content-type": "application/json", **CORS, **headers})


def from_answer(a: answers.Answer) -> http.Response:
    return http.Response.make(a.status, a.body, tuple((n.encode(), v.encode()) for n, v in a.headers))


def local_answer(route: str, req: http.Request, profile: str, version: str) -> http.Response:
    """The proxy's own routes: CORS preflight, the health routes, and those with another method."""
    if route == "preflight":
        return http.Response.make(200, b"", {
            **CORS,
            "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
            "access-control-allow-headers": req.headers.get("access-control-request-headers", "*"),
            "access-control-max-age": "3600"})
    if route == "health":
        return from_answer(answers.health(profile, version))
    return json_response(405, {"error": {"message": f"{req.path.partition('?')[0]} answers GET and HEAD only",
                                         "type": "invalid_request_error"}}, allow="GET, HEAD")


def denial(d: Decision, req: http.Request, lang: str, explained: bool) -> http.Response:
    """400, 401, v4's 403 token_rejected and 500 (answers.denial), explained in the client's
    language unless explanations are off (the original's bare answers)."""
    lang = explain.pick_language(req.headers.get("accept-language"), lang)
    return from_answer(memo.denial(d, req.path, lang, explained))  # answers.denial, once per distinct decision


def gate_error() -> http.Response:
    """The 500 of a gate that failed on a request (see fail_closed)."""
    return json_response(500, {"error": {
        "message": "The auth gate failed on this request and denied it; its log says why.",
        "type": "gate_error", "code": "gate_error"}})


def upstream_failure(meta: dict, path: str, error: str, connected: bool) -> tuple[http.Response, int, str]:
    """The gate's 502/504 when the upstream failed before the client got
    anything, in the client's dialect -> (response, status, code)."""
    url, timeout = meta["upstream"]
    if meta.get("timed_out"):
        status, code, what = 504, "upstream_timeout", (
            f"did not answer within {timeout:g} s (upstream.timeout), so the gate stopped waiting. "
            f"Check the upstream, or raise upstream.timeout for slow answers.")
    elif not connected:
        status, code, what = 502, "upstream_unreachable", (
            f"is unreachable ({error}): nothing answers there. Start the upstream or fix upstream.url.")
    else:
        status, code, what = 502, "upstream_error", (
            f"did not give a complete response ({error}). Check the upstream's log.")
    reply = http.Response.make(status, error_bodies.upstream_error_body(
        meta, path, status, code, f"The auth gate passed this request, but upstream {url} {what}"),
        {"content-type": "application/json", **CORS})
    return reply, status, code


def loggable(req: http.Request, limit: int = 200) -> str:
    """The request path for a log line: ASCII only (any byte escaped), a `key=`
    value as its fingerprint (credentials.shown_target), and capped."""
    path = shown_target(req.data.path.decode("ascii", "backslashreplace"))
    return path if len(path) <= limit else f"{path[:limit]}… ({len(path)} chars)"


def content_length(req: http.Request) -> int:
    """The request's Content-Length; 0 without one (mitmproxy refuses an invalid one itself).
    One pass over the raw fields: a Headers lookup costs several times as much, on every request."""
    for name, value in req.headers.fields:
        if name.lower() == b"content-length":
            digits = value.strip()
            if not digits.isdigit():
                return 0
            return int(digits) if len(digits) <= 18 else 1 << 62  # (int() refuses 4,300 digits)
    return 0


def body_coming(req: http.Request) -> bool:
    """At the request headers: whether a body is still to be read."""
    if req.data.content is not None:  # read already (the request hook, a replay)
        return False
    return "transfer-encoding" in req.headers or content_length(req) > 0


# What the original's HTTP parser (hyper) refuses before any middleware (rules/wire.py), and what
# the gate refuses besides: (status, code, message) of the explained answer.
_REFUSALS = {
    "body_too_large": (413, "request_too_large", ""),  # (the message names the limit: refusal())
    "trailers": (400, "trailers_not_supported",
                 "The request carries HTTP trailers (header fields after a chunked body), which the gate "
                 "cannot pass on. Send it without trailers."),
    "head_too_large": (431, "request_header_fields_too_large",
                       "The request head is larger than the original's HTTP parser takes (408 KiB)."),
    "too_many_headers": (431, "request_header_fields_too_large",
                         "The request has more than 100 header fields, the most the original's HTTP parser "
                         "(hyper) takes."),
    "uri_too_long": (414, "uri_too_long",
                     "The request target is longer than 65,534 bytes, the most the original's HTTP parser "
                     "(hyper) takes."),
    "tls": (400, "tls_not_supported",
            "This port speaks plain HTTP/1.1, as the original's does: no TLS (this connection began with a TLS "
            "ClientHello). Use http://, not https://."),
    "not_http1": (400, "not_http1",
                  "This connection did not begin with an HTTP/1 request line. This port speaks plain HTTP/1.1, as "
                  "the original's does (no TLS, no HTTP/2)."),
    "bad_version": (400, "unsupported_http_version",
                    "The request line names a version other than HTTP/1.0 or HTTP/1.1. This port speaks plain "
                    "HTTP/1.x, as the original's does (no HTTP/2, no h2c)."),
    "bad_method": (400, "invalid_request_line",
                   "The request method holds a character the original's HTTP parser refuses (a method is a token: "
                   "letters, digits and !#$%&'*+-.^_`|~)."),
    "bad_target": (400, "invalid_request_target",
                   "The request target holds a byte the original's HTTP parser refuses: a control character "
                   "(NUL, tab, ESC, any byte below 0x21), DEL, bytes that are not UTF-8, or <, > or ` in the "
                   "path, \", < or > in the query. Percent-encode it."),
    "bad_header": (400, "invalid_header",
                   "A header line the original's HTTP parser refuses: a name with a character outside the token "
                   "set, a space before the colon, a folded line, or a control byte in the value."),
    "bad_request": (400, "bad_request",
                    "The request is malformed: mitmproxy's HTTP/1 parser refused it (a bad request line or header "
                    "line, an invalid header name, or conflicting Content-Length and Transfer-Encoding). The "
                    "original's HTTP parser refuses such requests too."),
}
# hyper writes the canonical reason phrase of the http crate (role.rs:402-436).
_REASONS = {400: "Bad Request", 413: "Payload Too Large", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


def refusal(kind: str, body_limit: int, explained: bool = True) -> http.Response | None:
    """What a request may not hold: a body over the limit (413), trailers (400), and
    what the original's HTTP parser refuses before any middleware (rules/wire.py):
    a head past its buffer or with more than 100 fields (431), a target over 65,534
    bytes (414), TLS, an HTTP/2 preface, a malformed request line or header (400).
    The connection closes. None: no answer at all (the HTTP/2 preface).

    Explained: JSON that says which and why. Not explained: hyper's own answer,
    byte for byte (`connection: close`, `content-length: 0`, `date`; hyper
    conn.rs:681-697, role.rs:905-953); the body limit and trailers keep JSON."""
    if kind == "h2_preface":
        return None  # hyper writes nothing (conn.rs:808-812)
    status, code, message = _REFUSALS[kind]
    if kind == "body_too_large":
        message = (f"The request body is larger than {_size(body_limit)}, the gate's limit "
                   f"(auth_max_body_size, as the original's ABV_MAX_BODY_SIZE).")
    elif not explained:
        bare = http.Response.make(status, b"")
        bare.reason = _REASONS[status]
        bare.headers.fields = ((b"connection", b"close"), (b"content-length", b"0"),
                               (b"date", email.utils.formatdate(usegmt=True).encode()))
        return bare
    answer = json_response(status, {"error": {"message": message, "type": "invalid_request_error", "code": code}},
                           connection="close")
    answer.reason = _REASONS[status]
    return answer


def _size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % (size // 1024) == 0:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def answer(flow: http.HTTPFlow, response: http.Response, early: bool = False) -> None:
    """The gate answers the request itself; nothing goes upstream.

    `early`, from requestheaders: a request whose body is still to come gets the
    answer at once and its connection closes, the body never read (as the
    original's middleware answers before the body; mitmproxy_compat.answer_now),
    and an `Expect: 100-continue` gets this answer, never a 100. A request
    without a body keeps its connection."""
    if flow.request.method == "HEAD":
        response.content = b""  # a body on HEAD would break the client's next response
    if early:
        flow.request.headers.pop("expect", None)  # mitmproxy would send 100 Continue after the hook
        if body_coming(flow.request) and mitmproxy_compat.answer_now(flow, response):
            flow.metadata[ANSWERED_EARLY] = True  # killed by answer_now: the error hook says so (Gatekeeper)
            return
    flow.response = response


def answer_here(flow: http.HTTPFlow, response: http.Response, early: bool = False) -> None:
    """The gate's own answer (`early`: see answer), and the request shown where it
    was answered: the gate's address (the one the client called), not upstream.url,
    where mitmproxy's reverse mode pointed it and where it never went."""
    answer(flow, response, early)
    if sock := flow.client_conn.sockname:
        # Straight into the request's data, the Host header once: the setters of
        # scheme, host and port each rewrite Host (about 9 µs, on every denial).
        req, host, port = flow.request, str(sock[0]), int(sock[1])
        data = req.data
        data.scheme, data.host, data.port = b"http", host, port
        req.headers["host"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def fail_closed(flow: http.HTTPFlow, early: bool = False) -> None:
    """An auth layer fails closed: whatever went wrong, nothing is forwarded."""
    log.exception(f"auth gate error on {flow.request.method} {loggable(flow.request)}; denying")
    answer(flow, gate_error(), early)
