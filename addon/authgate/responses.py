"""The gate's own answers, as mitmproxy responses, and the flow text the addons
share (markers, the loggable path). What the original answers, as plain data,
comes from answers.py and the words from explain.py; here they only become
mitmproxy responses.
"""

from __future__ import annotations

import json
import logging

from mitmproxy import http

from . import answers, explain
from .decision import Decision

DENIED_MARKER = ":no_entry:"
GATE_MARKER = ":shield:"  # answered by the gate itself without denying: /healthz, the preflight, 405
SURPRISE_MARKER = ":warning:"  # shadow mode: the real proxy did not answer as predicted
CORS = {"access-control-allow-origin": "*"}

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
    """401, v4's 403 token_rejected and 500 (answers.denial), explained in the client's
    language unless explanations are off (the original's bare answers)."""
    lang = explain.pick_language(req.headers.get("accept-language"), lang)
    return from_answer(answers.denial(d, req.path, lang, explained))


def absolute_form_refused(req: http.Request, upstream_url: str) -> http.Response:
    return json_response(400, {"error": {
        "message": f"Absolute-form request to {req.authority} refused: send origin-form "
                   f"requests (GET /path) to this proxy; they go to {upstream_url}.",
        "type": "invalid_request_error", "code": "not_a_forward_proxy"}})


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
    reply = http.Response.make(status, explain.upstream_error_body(
        meta, path, status, code, f"The auth gate passed this request, but upstream {url} {what}"),
        {"content-type": "application/json", **CORS})
    return reply, status, code


def loggable(req: http.Request, limit: int = 200) -> str:
    """The request path for a log line: ASCII only (any byte escaped), and capped."""
    path = req.data.path.decode("ascii", "backslashreplace")
    return path if len(path) <= limit else f"{path[:limit]}… ({len(path)} chars)"


def answer(flow: http.HTTPFlow, response: http.Response) -> None:
    """The gate answers the request itself; nothing goes upstream."""
    if flow.request.method == "HEAD":
        response.content = b""  # a body on HEAD would break the client's next response
    flow.response = response


def answer_here(flow: http.HTTPFlow, response: http.Response) -> None:
    """The gate's own answer, and the request shown where it was answered: the
    gate's address (the one the client called), not upstream.url, where
    mitmproxy's reverse mode pointed it and where it never went."""
    answer(flow, response)
    if sock := flow.client_conn.sockname:
        # Straight into the request's data, the Host header once: the setters of
        # scheme, host and port each rewrite Host (about 9 µs, on every denial).
        req, host, port = flow.request, str(sock[0]), int(sock[1])
        data = req.data
        data.scheme, data.host, data.port = b"http", host, port
        req.headers["host"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def fail_closed(flow: http.HTTPFlow) -> None:
    """An auth layer fails closed: whatever went wrong, nothing is forwarded."""
    log.exception(f"auth gate error on {flow.request.method} {loggable(flow.request)}; denying")
    answer(flow, gate_error())
