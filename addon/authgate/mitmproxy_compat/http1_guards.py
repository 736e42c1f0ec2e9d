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
  "mitmproxy has crashed!"; a chunked request body over the limit: 413 while
  nothing is answered, else both connections cut: ``CUT``),
  ``Http1Server.read_headers`` (a head past hyper's buffer: 431; a head the
  original's parser refuses, through ``http1.read_request_head``: the check
  the gate configures, e.g. a control byte in the target or a 101st header
  field; and mitmproxy's own HTML 400 for a head it cannot parse: the gate's
  answer instead, or none for the HTTP/2 preface) and ``Http1Connection.wait``
  (over 1 MiB sent ahead of a request in flight: closed).
* The upstream's interim answers (``Http1Client.read_headers``): 100 and
  102-199 are dropped and the final response read, as hyper's client does
  (role.rs:1247-1254); mitmproxy would relay the 1xx as the response and
  drop the real one. A 101 for anything but the WebSocket upgrade mitmproxy
  handles ends as an upstream error (the gate's 502), never a raw tunnel.
* mitmproxy's 400 page for a request it refused itself after parsing (an
  invalid header name, conflicting framing headers): the gate's answer.

The wrappers stay callable after ``uninstall`` (mitmproxy's originals are kept):
a live connection whose state is one of them goes on (at shutdown, or when
the script reloads). If a release moves one of these internals, ``install``
warns and the gate goes without that wrapper.
"""

from __future__ import annotations

import logging
from typing import Callable

from mitmproxy import http
from mitmproxy.connection import ConnectionState
from mitmproxy.flow import Error
from mitmproxy.net.http import http1, status_codes
from mitmproxy.proxy import commands, events
from mitmproxy.utils import human

try:
    from h11._readers import ChunkedReader  # mitmproxy's reader of a chunked body (11.0 to 12.3)
    from mitmproxy.proxy.layers.http import _http1
    from mitmproxy.proxy.layers.http._base import ReceiveHttp
    from mitmproxy.proxy.layers.http._events import (
        RequestData,
        RequestProtocolError,
        ResponseHeaders,
        ResponseProtocolError,
    )
except ImportError:  # pragma: no cover - a mitmproxy without these internals
    _http1 = ReceiveHttp = RequestData = RequestProtocolError = ResponseHeaders = ResponseProtocolError = None
    ChunkedReader = None

log = logging.getLogger("authgate")

HEAD_LIMIT = 8192 + 4096 * 100  # bytes of a request head: hyper's default buffer (the original's parser), then 431
PIPELINED_LIMIT = 1024 * 1024  # bytes a client may send ahead while its request is in flight
REFUSED = "refused by the auth gate: "  # + the kind: the error a guard's refusal leaves on the flow
# + why: the error a guard leaves when it must refuse a request whose answer has begun (no
# 413 or 400 can follow it): the connections are cut instead.
CUT = "cut by the auth gate: "
_CUT_WHY = {"body_too_large": "the request body went over auth_max_body_size",
            "trailers": "the request carried HTTP trailers"}

UPGRADE_REFUSED = ("the upstream answered 101 Switching Protocols to a request that is not a WebSocket upgrade; "
                   "the gate does not turn the connection into a raw tunnel (the original switches protocols only "
                   "in its own WebSocket route)")

_answers: dict[str, http.Response] = {}  # client connection id -> the answer to send instead
# (owner, name) -> mitmproxy's own: kept after uninstall, so a wrapper a live connection still holds works on
_originals: dict[tuple[str, str], Callable] = {}
_installed: set[tuple[str, str]] = set()
_answered: set[str] = set()  # client connection ids a guard has answered (no second answer: answer_now)
# What the HTTP/1 guards use (configure_guards): the request body limit (None: none),
# refuse(kind) -> the response for a kind of refusal (None: close without one),
# head(lines) -> the kind of refusal for a request head (None: it goes on), and
# cut_late(request, kind), told when a streamed request is refused after its answer had begun.
_guards: dict = {"body_limit": None, "refuse": None, "head": None, "cut_late": None}
_head_refused: list[str] = []  # the kind head() named, from read_request_head to read_headers (same call)


# ------------------------------------------------------------ upstream failures

def _send(self, event):
    """Http1Server.send: the gate's answer instead of mitmproxy's error page (an upstream
    failure's, or the 400 for a request mitmproxy refused itself). Anything else goes to
    mitmproxy's own generator as it is (no generator of the gate's in between: this runs
    for every event sent to every client)."""
    if isinstance(event, ResponseProtocolError):
        return _send_answer(self, event)
    return _originals["Http1Server", "send"](self, event)


def _send_answer(self, event):
    if ((not self.response or self.response.status_code == 100)  # a 100 Continue is no answer yet
            and (status := error_page_status(event.code)) is not None
            and self.conn.state & ConnectionState.CAN_WRITE):
        answer = _answers.pop(self.conn.id, None)
        if answer is None and status == 400 and _guards["refuse"] is not None:
            answer = _guards["refuse"]("bad_request")  # mitmproxy's own refusal (an invalid header name, say)
        if answer is not None:
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


def _owner(owner_name: str):
    if ReceiveHttp is None:
        return None
    return _http1.http1 if owner_name == "http1" else getattr(_http1, owner_name, None)


def install() -> bool:
    """Put the wrappers in place (once): Http1Server.send, the HTTP/1 guards, the
    upstream's interim answers. False, with a warning naming what is missing, when
    this mitmproxy lacks one; the gate then goes without it (mitmproxy's HTML pages,
    its crash on trailers, no caps)."""
    ok = True
    for owner_name, name, wrapper in _WRAPPERS:
        if (owner_name, name) in _installed:
            continue
        owner = _owner(owner_name)
        current = vars(owner).get(name) if owner is not None else None
        original = _originals.get((owner_name, name), current)
        if not callable(original) or (current is not wrapper and current is not original):
            log.warning(f"auth gate: this mitmproxy has no {owner_name}.{name}: {_WITHOUT[name]}")
            ok = False
            continue
        _originals[owner_name, name] = original
        setattr(owner, name, wrapper)
        _installed.add((owner_name, name))
    return ok


def uninstall() -> None:
    """mitmproxy's own methods back. The originals stay known: a connection whose
    state is still a wrapper (an idle keep-alive client at shutdown, a request in
    flight while the script reloads) goes on through it."""
    for owner_name, name in _installed:
        setattr(_owner(owner_name), name, _originals[owner_name, name])
    _installed.clear()
    # (_answers and _answered stay: a connection that lives on through a reload is still owed its
    # answer, or owed no second one; each entry goes when its client disconnects: forget)


def answer_instead(flow: http.HTTPFlow, answer: http.Response) -> bool:
    """From the error hook: send `answer` instead of mitmproxy's error page, and
    make it the flow's response (what mitmweb shows is what the client got).

    False, and nothing changes, when it cannot go out: the client is gone, the
    flow was killed, it is a replay (mitmproxy is its client), the client
    speaks HTTP/2 (left to mitmproxy), or there is no wrapper.
    """
    if (("Http1Server", "send") not in _installed or flow.is_replay == "request"
            or not flow.request.http_version.startswith("HTTP/1")
            or not flow.client_conn.state & ConnectionState.CAN_WRITE
            or (flow.error and flow.error.msg == Error.KILLED_MESSAGE)):
        return False
    answer.headers["connection"] = "close"  # mitmproxy closes the connection after an upstream error
    flow.response = _answers[flow.client_conn.id] = answer
    return True


def forget(client_id: str) -> None:
    _answers.pop(client_id, None)
    _answered.discard(client_id)


def answered(client_id: str) -> bool:
    """Whether a guard has already answered this client connection (and closed it)."""
    return client_id in _answered


# ------------------------------------------------------------ HTTP/1 guards

def configure_guards(body_limit: int | None, refuse: Callable[[str], http.Response | None], *,
                     head: Callable[[list[bytes]], str | None] | None = None,
                     cut_late: Callable[[http.Request, str], None] | None = None) -> None:
    _guards.update(body_limit=body_limit, refuse=refuse, head=head, cut_late=cut_late)


def _refuse(self, kind: str, flow_error: bool):
    """Answer the client on this Http1Server connection and close it; with
    flow_error, the flow under way ends in the error hook, naming `kind`."""
    if (self.conn.state & ConnectionState.CAN_WRITE and _guards["refuse"] is not None
            and (answer := _guards["refuse"](kind)) is not None):
        yield commands.SendData(self.conn, http1.assemble_response(answer))
        _answered.add(self.conn.id)
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
                    yield from _refuse_or_cut(self, "body_too_large")
                    return
            yield command
        self._authgate_body = (self.request, total)
    except NotImplementedError:  # trailers: mitmproxy can neither read nor pass them on
        if server:
            yield from _refuse_or_cut(self, "trailers")
        else:  # from the upstream: its client gets a 502 (the gate's, see Replies)
            yield commands.CloseConnection(self.conn)
            yield ReceiveHttp(self.ReceiveProtocolError(self.stream_id, "HTTP trailers in the upstream's response",
                                                        code=self.ReceiveProtocolError.code))
            self.state = self.done


# ------------------------------------------------------------ the body limit (issue #22)

def _refuse_or_cut(self, kind: str):
    """A request body past the limit, or trailers, in a body that streams to the
    upstream as it comes: the upstream may have begun to answer already (mitmproxy
    sent the response head to this client: self.response, a 100 Continue aside).
    While nothing is answered: the refusal (413, 400), and the flow's error closes
    the upstream connection, its request unfinished. Once an answer has begun, none
    can follow it: both connections are closed, the flow (if still under way) ends
    in a CUT error, and cut_late logs why."""
    if self.response is None or self.response.status_code == 100:
        yield from _refuse(self, kind, flow_error=True)
        return
    if _guards["cut_late"] is not None:
        _guards["cut_late"](self.request, kind)
    yield commands.CloseConnection(self.conn)
    yield ReceiveHttp(RequestProtocolError(self.stream_id, f"{CUT}{_CUT_WHY[kind]} after the upstream had begun "
                                           f"to answer", code=RequestProtocolError.code))
    self.state = self.done


def _read_request_head(lines):
    """http1.read_request_head: a head the gate's check refuses is a ValueError, as
    one mitmproxy cannot parse is; read_headers then answers it (below)."""
    if (head := _guards["head"]) is not None and (kind := head(lines)) is not None:
        _head_refused[:] = [kind]
        raise ValueError(f"request head refused by the auth gate: {kind}")
    return _originals["http1", "read_request_head"](lines)


def _read_headers(self, event):
    """Http1Server.read_headers: a request head that grows past HEAD_LIMIT gets 431;
    one that is refused (the gate's check, or mitmproxy's parser) gets the gate's
    answer instead of mitmproxy's HTML page, and one log line without its bytes."""
    _head_refused.clear()
    refused = None
    commands_ = _originals["Http1Server", "read_headers"](self, event)
    for command in commands_:
        if isinstance(command, ReceiveHttp):  # the head is parsed: the rest is read_body's, as it comes
            yield command
            yield from commands_
            break
        # before that, read_headers sends data only for a head it refuses (its HTML 400), then logs the head
        if isinstance(command, commands.SendData) and _guards["refuse"] is not None:
            refused = _head_refused[0] if _head_refused else "bad_request"
            if (answer := _guards["refuse"](refused)) is not None:
                yield commands.SendData(self.conn, http1.assemble_response(answer))
            _answered.add(self.conn.id)
            continue
        if isinstance(command, commands.Log) and refused is not None:  # (its line quotes the head, a key too)
            yield commands.Log(f"{human.format_address(self.conn.peername)}: {_described(refused)}")
            continue
        yield command
    if self.state == self.read_headers and len(self.buf) > HEAD_LIMIT:
        yield from _refuse(self, "head_too_large", flow_error=False)


def _described(kind: str) -> str:
    answer = _guards["refuse"](kind)
    what = f"answered {answer.status_code}" if answer is not None else "closed without an answer"
    return f"request head refused by the auth gate ({kind.replace('_', ' ')}), as the original's HTTP parser does: {what}"


def _client_read_headers(self, event):
    """Http1Client.read_headers: an interim answer (100, 102-199) is dropped and the
    next head read, as hyper's client does (role.rs:1251-1254): the final response
    still comes, and the upstream timer runs until it does. A 101 that mitmproxy
    would not take as a WebSocket upgrade is an upstream error (the gate's 502)."""
    while True:
        commands_ = _originals["Http1Client", "read_headers"](self, event)
        for command in commands_:
            if not (isinstance(command, ReceiveHttp) and isinstance(command.event, ResponseHeaders)):
                yield command
                continue
            status = command.event.response.status_code
            if 100 <= status < 200 and status != 101:
                self.response = None  # (left at its headers: no body reader, nothing marked done)
                break
            if status == 101 and not _websocket_upgrade(self, command.event.response):
                yield commands.CloseConnection(self.conn)
                yield ReceiveHttp(ResponseProtocolError(self.stream_id, UPGRADE_REFUSED,
                                                        code=ResponseProtocolError.code))
                self.state = self.done
                return
            yield command  # the final response: its body is read_body's, as it comes
            yield from commands_
            return
        else:
            return  # (no head yet, or the connection closed)
        if not self.buf:
            return
        event = events.DataReceived(self.conn, b"")  # the next head is in the buffer already


def _websocket_upgrade(self, response: http.Response) -> bool:
    """What mitmproxy's HttpStream.send_response takes for a WebSocket upgrade (and then relays
    as WebSocket messages, not raw bytes): 101 with Upgrade: websocket to a request with
    Sec-WebSocket-Version: 13, the websocket option on."""
    return (response.headers.get("upgrade", "").lower() == "websocket"
            and self.request is not None and self.request.headers.get("sec-websocket-version", "") == "13"
            and bool(getattr(self.context.options, "websocket", True)))


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
             ("Http1Server", "read_headers", _read_headers), ("Http1Connection", "wait", _wait),
             ("http1", "read_request_head", _read_request_head), ("Http1Client", "read_headers", _client_read_headers))
_WITHOUT = {"send": "upstream failures get mitmproxy's HTML page",
            "read_body": "chunked trailers crash mitmproxy's HTTP/1 layer, chunked bodies have no limit",
            "read_headers": "a request head is buffered without a limit, and an upstream's 1xx or 101 is relayed",
            "wait": "what a client sends ahead is buffered without a limit",
            "read_request_head": "request heads the original's parser refuses are passed on"}
