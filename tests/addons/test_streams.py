"""Streamed bodies (authgate/addons/streams.py, Forward, Limits' auth_keep_body): every body the gate
forwards streams through a Keep that passes each chunk on unchanged and copies the first
auth_keep_body bytes; the copy becomes the message's content once the stream ends, marked where it
was cut (an SSE comment after the last whole event, a line after the last whole line, inside a
compressed body decoded and encoded again); the "Auth gate" view says what streamed and what was
kept, and the "Event stream" view reads an SSE answer event by event. Live: test_streaming.py and
test_web_streaming.py."""

from __future__ import annotations

import gzip
import json
import random

import pytest
from mitmproxy import contentviews, exceptions, flow, http
from mitmproxy.net import encoding
from mitmproxy.test import tutils

from authgate import mitmproxy_compat
from authgate.addons import flowview, streams
from gate_harness import KEY, config, default_config, gate, req_flow, send, upstream  # noqa: F401

AUTH = [("Authorization", f"Bearer {KEY}")]
SSE = b"".join(b'event: delta\ndata: {"seq": %d}\n\n' % i for i in range(40))


def shown(f, message) -> tuple[str, str]:
    """(view name, text) as mitmweb's "auto" view shows the message (11.x: View, 12.x: Contentview)."""
    if hasattr(contentviews, "prettify_message"):
        r = contentviews.prettify_message(message, f, "auto")
        return r.view_name, r.text
    description, lines, _ = contentviews.get_message_content_view("Auto", message, f)
    return description, "\n".join("".join(text for _, text in line) for line in lines)


def streamed_request(gate, body_chunks=(), headers=(), method="POST"):
    """A request as mitmproxy streams it: its headers, each chunk through request.stream, then the request hook."""
    f = req_flow("/v1/chat/completions", method, headers=[*AUTH, *headers])
    f.request.data.content = None  # (mitmproxy stores a streamed body nowhere)
    gate.hook("requestheaders", f)
    for chunk in body_chunks:
        assert f.request.stream(chunk) == chunk  # passed on unchanged
    if callable(f.request.stream):
        f.request.stream(b"")
    gate.hook("request", f)
    return f


def streamed_response(gate, f, chunks, headers=(("content-type", "text/event-stream"),), status=200, error=None):
    """The upstream's answer as mitmproxy streams it: responseheaders, each chunk, then response (or error)."""
    f.response = tutils.tresp(status_code=status, headers=http.Headers([(n.encode(), v.encode()) for n, v in headers]),
                              content=None)
    f.response.data.content = None
    gate.responseheaders(f)
    for chunk in chunks:
        assert f.response.stream(chunk) == chunk
    if error is None:
        if callable(f.response.stream):
            f.response.stream(b"")
        gate.response(f)
    else:
        f.error = flow.Error(error)
        gate.error(f)
    return f


def test_keep_passes_every_chunk_and_copies_the_first_bytes():
    keep = streams.Keep(10)
    assert [keep(c) for c in (b"abcd", b"efghij", b"klm", b"", b"nop")] == [b"abcd", b"efghij", b"klm", b"", b"nop"]
    assert (bytes(keep.copy), keep.seen, keep.room) == (b"abcdefghij", 16, 0)
    keep = streams.Keep(5)
    keep(b"abcdefgh")
    assert bytes(keep.copy) == b"abcde" and keep.seen == 8


def test_the_keep_option(gate):
    assert gate.state.keep_body == 1024 * 1024
    gate.configure(auth_keep_body="64k")
    assert gate.state.keep_body == 64 * 1024
    gate.configure(auth_keep_body="0")
    assert gate.state.keep_body == 0
    for bad in ("lots", "-1", "1x"):
        with pytest.raises(exceptions.OptionsError, match="auth_keep_body.*Fix: .*1m"):
            gate.configure(auth_keep_body=bad)
    assert gate.state.keep_body == 0  # the last good value stays


async def test_a_forwarded_request_and_its_answer_stream_and_keep_a_copy(gate):
    f = streamed_request(gate, [b'{"messages": ', b'[{"role": "user"}]}'])
    assert f.request.content == b'{"messages": [{"role": "user"}]}'  # the copy, for mitmweb
    assert "authorization" not in f.request.headers  # (stripped before the first byte went out)
    streamed_response(gate, f, [SSE[:100], SSE[100:]])
    assert f.response.content == SSE and f.response.headers["content-type"] == "text/event-stream"
    assert f.request.headers["authorization"] == f"Bearer {KEY}"  # the client's request back on the flow
    assert f.metadata[streams.META] == {
        "request": {"bytes": 32, "kept": 32, "cut": False, "complete": True},
        "response": {"bytes": len(SSE), "kept": len(SSE), "cut": False, "complete": True}}
    assert " · " not in f.comment.partition(" · key ok")[2]  # nothing cut: the comment says nothing more


async def test_what_the_gate_answers_itself_is_not_streamed(gate):
    f = await send(gate, "/v1/models", headers=[("Authorization", "Bearer sk-wrong")])
    assert f.response.status_code == 401 and not f.request.stream and not f.response.stream
    f = await send(gate, "/healthz", headers=AUTH)
    assert f.response.status_code == 200 and not f.response.stream and streams.META not in f.metadata


async def test_a_copy_cut_at_auth_keep_body_is_marked_where_it_stops(gate):
    gate.configure(auth_keep_body="1k")
    f = streamed_request(gate, [b"x" * 700 + b"\n", b"y" * 700 + b"\n"])
    assert f.request.content.startswith(b"x" * 700 + b"\n[auth gate] cut here: the upstream got 1.4 KiB in all; "
                                        b"the first 701 bytes are kept on this flow (auth_keep_body).\n")
    streamed_response(gate, f, [SSE])  # the copy ends after the last whole event within 1 KiB
    whole = SSE[:1024].rfind(b"\n\n") + 2
    assert f.response.content == SSE[:whole] + (b": [auth gate] cut here: the client got 1.2 KiB in all; the first "
                                                b"%d bytes are kept on this flow (auth_keep_body).\n\n" % whole)
    assert f.metadata[streams.META]["response"] == {"bytes": len(SSE), "kept": 1024, "cut": True, "complete": True,
                                                    "marked": True}
    assert f.comment.endswith(" · request body kept: first 1.0 KiB of 1.4 KiB"
                              " · response body kept: first 1.0 KiB of 1.2 KiB")


@pytest.mark.parametrize("enc", ["gzip", "deflate", "br", "zstd"])
async def test_a_compressed_copy_cut_short_still_decodes(gate, enc):
    """Cut at 200 KiB, a gzip (br, zstd, deflate) stream is decoded as far as it goes (zstd: its whole
    blocks, up to 128 KiB each), marked, and encoded again: the headers still say what the client got,
    and mitmproxy (mitmweb) decodes the copy."""
    gate.configure(auth_keep_body="200k")
    rnd = random.Random(7)  # text that compresses to well over 200 KiB whatever the encoding
    text = b"".join(b"%06d %s\n" % (i, rnd.randbytes(24).hex().encode()) for i in range(12000))
    body = encoding.encode(text, enc)
    f = streamed_response(gate, streamed_request(gate), [body[:3000], body[3000:]],
                          headers=(("content-type", "text/plain"), ("content-encoding", enc)))
    assert f.response.headers["content-encoding"] == enc  # as the client got it
    shown_text = f.response.get_content(strict=True)  # decodes
    lines = shown_text.splitlines()
    assert len(lines) > 2 and text.startswith(b"\n".join(lines[:-1]) + b"\n"), lines[-3:]
    assert lines[-1].startswith(b"[auth gate] cut here: the client got ")
    assert f.metadata[streams.META]["response"]["encoding"] == enc


async def test_a_binary_or_undecodable_copy_is_kept_unmarked(gate):
    gate.configure(auth_keep_body="1k")
    blob = bytes(range(256)) * 8
    f = streamed_response(gate, streamed_request(gate), [blob], headers=(("content-type", "image/png"),))
    assert f.response.content == blob[:1024]
    assert flowview.streamed(f, "en")[-1].endswith("the first 1.0 KiB are kept on this flow (auth_keep_body); "
                                                   "not text, so not marked.")
    f = streamed_response(gate, streamed_request(gate), [b"\x00not gzip" * 200],
                          headers=(("content-type", "text/plain"), ("content-encoding", "gzip")))
    assert f.response.raw_content == (b"\x00not gzip" * 200)[:1024]  # as it came
    assert "gzip cut short could not be decoded: mitmweb shows those bytes raw." in flowview.streamed(f, "en")[-1]


async def test_a_stream_that_ends_early_keeps_what_came(gate):
    f = streamed_response(gate, streamed_request(gate), [SSE[:30]], error="server closed connection")
    assert f.response.content == SSE[:30]
    assert f.metadata[streams.META]["response"] == {"bytes": 30, "kept": 30, "cut": False, "complete": False,
                                                    "error": "server closed connection"}
    assert flowview.streamed(f, "en")[-1] == ("Response body: streamed to the client as it came in. All 30 bytes are "
                                              "kept on this flow. The stream ended early: server closed connection")


async def test_auth_keep_body_0_streams_and_keeps_nothing(gate):
    gate.configure(auth_keep_body="0")
    f = streamed_response(gate, streamed_request(gate, [b"{}"]), [b"data: x\n\n"])
    assert f.request.content is None and f.response.content is None  # mitmweb: no content
    assert f.metadata[streams.META]["response"] == {"bytes": 9, "kept": 0, "cut": True, "complete": True}
    assert " · " not in f.comment.partition(" · key ok")[2]
    assert flowview.streamed(f, "fr")[-1] == ("Corps de la réponse : transmis au client au fil de son arrivée. "
                                              "Rien n'en est gardé (auth_keep_body=0) : mitmweb n'affiche aucun contenu.")


async def test_shadow_mode_holds_only_what_it_judges_by_its_body(gate):
    """Shadow mode under profile v4 reads a 403 or 503 to say who answered (its verdict goes into a
    header): that answer is held whole; any other streams."""
    gate.configure(auth_enforce="false", auth_profile="v4")
    for status, stream in ((403, False), (503, False), (200, True), (401, True)):
        f = await send(gate, headers=[("x-api-key", KEY)])
        assert f.metadata["auth"].get("shadow") and f.response is None
        f.response = tutils.tresp(status_code=status, content=None)
        gate.responseheaders(f)
        assert bool(f.response.stream) is stream, status


async def test_replies_leave_a_guards_answer_and_a_cut_alone(gate):
    for msg in (mitmproxy_compat.REFUSED + "body_too_large",
                mitmproxy_compat.CUT + "the request body went over auth_max_body_size after the upstream had "
                                       "begun to answer"):
        f = req_flow("/v1/chat/completions", "POST", headers=AUTH)
        gate.hook("requestheaders", f)
        f.error = flow.Error(msg)
        gate.error(f)
        assert f.response is None or f.response.status_code == 413, msg  # never a 502 on top
    assert f.comment.endswith(" · connections cut: request body over auth_max_body_size")


def test_the_event_stream_view_reads_event_by_event(gate):
    f = req_flow("/v1/messages", "POST")
    body = (b"event: message_start\ndata: {\"type\": \"message_start\"}\n\n: keep-alive\n\n"
            b"id: 7\r\nretry: 100\r\ndata: line one\r\ndata: line two\r\n\r\n"
            b"data: {\"unfinished\": ")
    f.response = tutils.tresp(headers=http.Headers(content_type="text/event-stream"), content=body)
    name, text = shown(f, f.response)
    assert name.lower().startswith("event stream")
    assert text.splitlines() == ["#1 · event: message_start", '  {"type": "message_start"}', ": keep-alive",
                                 "#2 · id: 7 · retry: 100", "  line one", "  line two",
                                 "#3 · (unfinished)", '  {"unfinished": ']
    f.response.headers["content-type"] = "application/json"
    assert not shown(f, f.response)[0].lower().startswith("event stream")
    f.response = tutils.tresp(headers=http.Headers(content_type="text/event-stream"), content=SSE)
    name, text = shown(f, f.response)
    assert name == "Event stream (40 events)" or name.lower() == "event stream", name  # 11.x: its description


async def test_the_auth_gate_view_says_what_streamed(gate):
    gate.configure(auth_keep_body="1k")
    f = streamed_request(gate, [b'{"a": "' + b"x" * 2000 + b'"}'])
    f.client_conn.sockname = ("127.0.0.1", 8045)
    streamed_response(gate, f, [b"{}"], headers=(("content-type", "application/json"),))
    name, text = shown(f, f.request)
    assert name.lower() == "auth gate"
    assert ("Request body: streamed to the upstream as it came in. 2.0 KiB in all; the first 1.0 KiB are kept on "
            "this flow (auth_keep_body), marked where they stop.") in " ".join(text.split())
    assert "Response body: streamed to the client as it came in. All 2 bytes are kept on this flow." in text


@pytest.mark.parametrize("enc", ["gzip", "deflate", "br", "zstd"])
def test_decode_prefix_reads_the_start_of_a_cut_stream(enc):
    text = b"".join(b"%06d abcdefghijklmnopqrstuvwxyz\n" % i for i in range(20000))
    body = encoding.encode(text, enc)
    got = mitmproxy_compat.decode_prefix(body[:len(body) // 2], enc, 100_000)
    assert got and len(got) <= 100_000 and text.startswith(got)
    assert mitmproxy_compat.decode_prefix(b"not compressed at all", enc, 1000) in (None, b"")
    assert mitmproxy_compat.decode_prefix(body, "compress", 1000) is None
    assert gzip.decompress(mitmproxy_compat.encode(b"abc", "gzip")) == b"abc"


def test_keep_is_cheap_per_chunk():
    """Not a timing test: the callable's work per chunk once the copy is full is a count and a return."""
    keep = streams.Keep(4)
    chunk = b"z" * 65536
    for _ in range(1000):
        assert keep(chunk) is chunk  # the very object, never a copy
    assert keep.seen == 65536 * 1000 and len(keep.copy) == 4


async def test_json_bodies_are_unaffected_by_a_whole_copy(gate):
    f = streamed_request(gate, [json.dumps({"x": 1}).encode()])
    assert json.loads(f.request.content) == {"x": 1}


async def test_what_mitmwebs_intercept_filter_matches_is_held_whole():
    """An intercepted flow can be held and edited only if its body is held: what the filter matches
    (at the request or the response headers) is not streamed, while intercepting; the rest is."""
    from mitmproxy.addons import intercept

    from gate_harness import running_gate
    with running_gate() as g:
        g.tctx.master.addons.add(intercept.Intercept())
        g.tctx.configure(g.addons[0], intercept="~s & ~h x-hold")
        hold = streamed_request(g)
        assert "request" in hold.metadata[streams.META]  # streamed: ~s matches no flow at its request headers
        hold.response = tutils.tresp(headers=http.Headers(x_hold="1"), content=None)
        g.responseheaders(hold)
        assert not hold.response.stream  # mitmproxy reads it whole, and Intercept holds it at the response
        other = streamed_response(g, streamed_request(g), [b"{}"], headers=(("content-type", "text/plain"),))
        assert other.response.content == b"{}"
        g.tctx.configure(g.addons[0], intercept_active=False)
        again = streamed_response(g, streamed_request(g), [b"{}"], headers=(("x-hold", "1"),))
        assert again.response.content == b"{}"


def test_mitmproxys_line_per_streamed_flow_is_dropped(gate, caplog):
    """With every body streamed, mitmproxy's "Streaming request to HOST." and "Streaming response from
    HOST." would come twice per request (and cost ~10 µs each); its other lines stay, naming their caller."""
    import logging
    server = logging.getLogger("mitmproxy.proxy.server")
    caplog.set_level(logging.INFO)
    server.log(logging.INFO, "Streaming request to 127.0.0.1.", extra={"client": ("127.0.0.1", 1)})
    server.info("Streaming response from 127.0.0.1.")  # (the filter, whatever method logs it)
    server.log(logging.INFO, "client connect", extra={"client": ("127.0.0.1", 1)})
    assert [r.getMessage() for r in caplog.records if r.name == server.name] == ["client connect"]
    assert caplog.records[-1].funcName == "test_mitmproxys_line_per_streamed_flow_is_dropped"
