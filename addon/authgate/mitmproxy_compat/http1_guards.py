"""The wrappers on mitmproxy's HTTP/1 layer (``install``, ``uninstall``): what
happens on an upstream failure and the HTTP/1 guards. No hook reaches either.

* Upstream failures (``answer_instead``, ``forget``). mitmproxy answers an
  upstream failure with an HTML page built deep in its HTTP/1 layer; no hook
  can change it (mitmproxy#4854; mitmproxy#7999 proposes letting the error hook
  set flow.response). ``Http1Server.send`` is wrapped: when an upstream error is
  about to go to a client for which the gate left an answer, that answer goes
  out instead of the HTML page; anything else goes to mitmproxy's own code
  unchanged (also after a ``100 Continue``, which mitmproxy counts as an answer
  sent). ``ResponseProtocolError.code`` is an int up to 11.1, an ``ErrorCode``
  enum from 12.0 (``error_page_status``).
* HTTP/1 guards (``configure_guards``): ``Http1Connection.read_body``
  (chunked trailers: a 400 to a client, a 502 for an upstream's, instead of
  "mitmproxy has crashed!"; a chunked request body over the limit: 413),
  ``Http1Server.read_headers`` (a head past hyper's buffer: 431) and
  ``Http1Connection.wait`` (over 1 MiB sent ahead of a request in flight: closed).

If a release moves one of these internals, ``install`` warns and the gate goes
without that wrapper.
"""

from __future__ import annotations

import logging
from typing import Callable

from mitmproxy import http
from mitmproxy.connection import ConnectionState
from mitmproxy.flow import Error
from mitmproxy.net.http import http1, status_codes
from mitmproxy.proxy import commands, events

try:
    from h11._readers import ChunkedReader  # mitmproxy's reader of a chunked body (11.0 to 12.3)
    from mitmproxy.proxy.layers.http import _http1
    from mitmproxy.proxy.layers.http._base import ReceiveHttp
    from mitmproxy.proxy.layers.http._events import RequestData, RequestProtocolError, ResponseProtocolError
except ImportError:  # pragma: no cover - a mitmproxy without these internals
    _http1 = ReceiveHttp = RequestData = RequestProtocolError = ResponseProtocolError = ChunkedReader = None

log = logging.getLogger("authgate")

HEAD_LIMIT = 8192 + 4096 * 100  # bytes of a request head: hyper's default buffer (the original's parser), then 431
PIPELINED_LIMIT = 1024 * 1024  # bytes a client may send ahead while its request is in flight
REFUSED = "refused by the auth gate: "  # + the kind: the error a guard's refusal leaves on the flow

_answers: dict[str, http.Response] = {}  # client connection id -> the answer to send instead
_originals: dict[tuple[str, str], Callable] = {}  # (class in _http1, method) -> mitmproxy's own
# What the HTTP/1 guards use (configure_guards): the request body limit (None: none) and
# refuse(kind) -> the response for "trailers", "body_too_large" or "head_too_large".
_guards: dict = {"body_limit": None, "refuse": None}


# ------------------------------------------------------------ upstream failures

def _send(self, event):
    """Http1Server.send: the gate's answer instead of mitmproxy's error page. Anything else
    goes to mitmproxy's own generator as it is (no generator of the gate's in between:
    this runs for every event sent to every client)."""
    if _answers and isinstance(event, ResponseProtocolError):
        return _send_answer(self, event)
    return _originals["Http1Server", "send"](self, event)


def _send_answer(self, event):
    if ((not self.response or self.response.status_code == 100)  # a 100 Continue is no answer yet
            and error_page_status(event.code) is not None
            and self.conn.state & ConnectionState.CAN_WRITE
            and (answer := _answers.pop(self.conn.id, None)) is not None):
        yield commands.SendData(self.conn, http1.assemble_response(answer))
        yield commands.CloseConnection(self.conn)
        return
    yield from _originals["Http1Server", "send"](self, event)


def error_page_status(code) -> int | None:
    """The status of the error page mitmproxy would send for a ResponseProtocolError's
    code, or None for none: an int up to 11.1 (NO_RESPONSE for none), an ErrorCode
    enum from 12.0 (``http_status_code()``)."""
    if hasattr(code, "http_status_code"):
        return code.http_status_code()
    return None if code == status_codes.NO_RESPONSE else code


def install() -> bool:
    """Put the wrappers in place (once): Http1Server.send and the HTTP/1 guards. False,
    with a warning naming what is missing, when this mitmproxy lacks one; the gate
    then goes without it (mitmproxy's HTML pages, its crash on trailers, no caps)."""
    ok = True
    for owner_name, name, wrapper in _WRAPPERS:
        if (owner_name, name) in _originals:
            continue
        owner = getattr(_http1, owner_name, None)
        original = vars(owner).get(name) if owner is not None and ReceiveHttp is not None else None
        if not callable(original):
            log.warning(f"auth gate: this mitmproxy has no {owner_name}.{name}: {_WITHOUT[name]}")
            ok = False
            continue
        _originals[owner_name, name] = original
        setattr(owner, name, wrapper)
    return ok


def uninstall() -> None:
    for (owner_name, name), original in _originals.items():
        setattr(getattr(_http1, owner_name), name, original)
    _originals.clear()
    _answers.clear()


def answer_instead(flow: http.HTTPFlow, answer: http.Response) -> bool:
    """From the error hook: send `answer` instead of mitmproxy's error page, and
    make it the flow's response (what mitmweb shows is what the client got).

    False, and nothing changes, when it cannot go out: the client is gone, the
    flow was killed, it is a replay (mitmproxy is its client), the client
    speaks HTTP/2 (left to mitmproxy), or there is no wrapper.
    """
    if (("Http1Server", "send") not in _originals or flow.is_replay == "request"
            or not flow.request.http_version.startswith("HTTP/1")
            or not flow.client_conn.state & ConnectionState.CAN_WRITE
            or (flow.error and flow.error.msg == Error.KILLED_MESSAGE)):
        return False
    answer.headers["connection"] = "close"  # mitmproxy closes the connection after an upstream error
    flow.response = _answers[flow.client_conn.id] = answer
    return True


def forget(client_id: str) -> None:
    _answers.pop(client_id, None)


# ------------------------------------------------------------ HTTP/1 guards

def configure_guards(body_limit: int | None, refuse: Callable[[str], http.Response]) -> None:
    _guards.update(body_limit=body_limit, refuse=refuse)


def _refuse(self, kind: str, flow_error: bool):
    """Answer the client on this Http1Server connection and close it; with
    flow_error, the flow under way ends in the error hook, naming `kind`."""
    if self.conn.state & ConnectionState.CAN_WRITE and _guards["refuse"] is not None:
        yield commands.SendData(self.conn, http1.assemble_response(_guards["refuse"](kind)))
    yield commands.CloseConnection(self.conn)
    if flow_error:
        yield ReceiveHttp(RequestProtocolError(self.stream_id, REFUSED + kind,
                                               code=RequestProtocolError.code))
    self.state = self.done


def _read_body(self, event):
    """Http1Connection.read_body: trailers answered (never a crash); a chunked request body
    counted. Only a chunked body can carry trailers or grow unannounced: any other goes to
    mitmproxy's own generator as it is."""
    if type(getattr(self, "body_reader", None)) is not ChunkedReader:
        return _originals["Http1Connection", "read_body"](self, event)
    return _read_chunked(self, event)


def _read_chunked(self, event):
    server = isinstance(self, _http1.Http1Server)
    limit = _guards["body_limit"] if server else None
    try:
        if limit is None:
            yield from _originals["Http1Connection", "read_body"](self, event)
            return
        seen = self.__dict__.get("_authgate_body")
        total = seen[1] if seen and seen[0] is self.request else 0
        for command in _originals["Http1Connection", "read_body"](self, event):
            if isinstance(command, ReceiveHttp) and isinstance(command.event, RequestData):
                total += len(command.event.data)
                if total > limit:
                    yield from _refuse(self, "body_too_large", flow_error=True)
                    return
            yield command
        self._authgate_body = (self.request, total)
    except NotImplementedError:  # trailers: mitmproxy can neither read nor pass them on
        if server:
            yield from _refuse(self, "trailers", flow_error=True)
        else:  # from the upstream: its client gets a 502 (the gate's, see Replies)
            yield commands.CloseConnection(self.conn)
            yield ReceiveHttp(self.ReceiveProtocolError(self.stream_id, "HTTP trailers in the upstream's response",
                                                        code=self.ReceiveProtocolError.code))
            self.state = self.done


def _read_headers(self, event):
    """Http1Server.read_headers: a request head that grows past HEAD_LIMIT gets 431. Data
    that cannot take the buffer past it goes to mitmproxy's own generator as it is."""
    if not isinstance(event, events.DataReceived) or len(self.buf) + len(event.data) <= HEAD_LIMIT:
        return _originals["Http1Server", "read_headers"](self, event)
    return _read_headers_capped(self, event)


def _read_headers_capped(self, event):
    yield from _originals["Http1Server", "read_headers"](self, event)
    if self.state == self.read_headers and len(self.buf) > HEAD_LIMIT:
        yield from _refuse(self, "head_too_large", flow_error=False)


def _wait(self, event):
    """Http1Connection.wait: a client sending more than PIPELINED_LIMIT ahead is closed."""
    if (isinstance(event, events.DataReceived) and len(self.buf) > PIPELINED_LIMIT
            and isinstance(self, _http1.Http1Server)):
        return _close(self)
    return _originals["Http1Connection", "wait"](self, event)


def _close(self):
    yield commands.CloseConnection(self.conn)  # a response may be on its way: no second answer
    self.state = self.done


_WRAPPERS = (("Http1Server", "send", _send), ("Http1Connection", "read_body", _read_body),
             ("Http1Server", "read_headers", _read_headers), ("Http1Connection", "wait", _wait))
_WITHOUT = {"send": "upstream failures get mitmproxy's HTML page",
            "read_body": "chunked trailers crash mitmproxy's HTTP/1 layer, chunked bodies have no limit",
            "read_headers": "a request head is buffered without a limit",
            "wait": "what a client sends ahead is buffered without a limit"}
