"""Issue #22 in mitmweb: every body the gate streams keeps a copy on its flow (auth_keep_body, 64 KiB
here so that the cut cases stay small), shown by mitmweb's own views once the stream ends, against a
live `mitmweb -s addon/auth.py` and the timed upstream of streaming_probes.py.

* Through mitmweb's API: an SSE answer whole and event by event (the "Event stream" view), a
  1 MiB answer cut at 64 KiB and marked there (the comment says so), a gzip'd one cut and still
  decoded, an upload's copy, and the "Auth gate" view saying what streamed and what was kept.
* In a real browser: the SSE answer readable event by event on the Response tab (a screenshot is
  saved, and its path printed).

Everything listens on 127.0.0.1 (ephemeral ports); every wait is bounded; mitmweb and the upstream
are stopped when the module ends. Without Chromium or Playwright the browser test is skipped.
"""

from __future__ import annotations

import re
import urllib.parse

import pytest

from live import config_text, write_config
from mitmweb_live import KEY, WebAPI, start_mitmweb, unique
from streaming_probes import MiB, PaceUpstream, fetch, sse_text
from web_browser import browser, flow_row  # noqa: F401

AUTH = [("Authorization", f"Bearer {KEY}")]
KEEP = 64 * 1024


@pytest.fixture(scope="module")
def pace():
    with PaceUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def streaming_web(pace, tmp_path_factory):
    config = tmp_path_factory.mktemp("streaming-web") / "config.yaml"
    write_config(config, config_text("strict", KEY, pace.url))
    mw = start_mitmweb(config, "--set", "auth_save=false", "--set", "auth_keep_body=64k")
    try:
        yield mw
    finally:
        mw.stop()


def through(mw, target: str, **kw):
    """A request through the gate to the timed upstream; -> (its flow in mitmweb's API, the Fetch)."""
    f = fetch(mw.port, target, headers=AUTH, keep=2 * MiB, markers=False, **kw)
    assert f.status == 200 and f.ended == "complete", f
    return WebAPI.of(mw).flow_by_path(target), f


def content(mw, flow: dict, message: str = "response") -> bytes:
    status, _, body = WebAPI.of(mw).raw("GET", f"/flows/{flow['id']}/{message}/content.data")
    assert status == 200, body[:200]
    return body


def view(mw, flow: dict, name: str, message: str = "response") -> tuple[str, str]:
    """(the view mitmweb used, its text) for `name` ("auto" or a view's name), 11.x and 12.x alike."""
    data = WebAPI.of(mw).get(f"/flows/{flow['id']}/{message}/content/{urllib.parse.quote(name)}.json")
    if "text" in data:  # 12.x
        return data["view_name"], data["text"]
    return data["description"], "\n".join("".join(text for _, text in line) for line in data["lines"])


def test_an_sse_answer_is_kept_whole_and_read_event_by_event(streaming_web):
    target = f"/sse/{unique('web-sse')[4:]}?n=15&every=0.02"
    flow, f = through(streaming_web, target)
    assert f.body == sse_text(15)  # the client got every event, as sent
    assert flow["response"]["contentLength"] == len(sse_text(15))  # not "content missing"
    assert content(streaming_web, flow) == sse_text(15)
    name, text = view(streaming_web, flow, "auto")
    assert name.lower().startswith("event stream"), name  # opens event by event
    lines = text.splitlines()
    assert lines[:4] == ["#1 · event: delta", '  {"seq": 0, "text": "word0 "}',
                         "#2 · event: delta", '  {"seq": 1, "text": "word1 "}']
    assert lines[-2:] == ["#15 · event: delta", '  {"seq": 14, "text": "word14 "}']
    _, text = view(streaming_web, flow, "Auth gate", "request")
    assert (f"Response body: streamed to the client as it came in. All {len(sse_text(15))} bytes are kept on this "
            f"flow.") in " ".join(text.split())
    assert flow["comment"] == "pass · strict · Authorization won · key ok"  # nothing cut, nothing more said


def test_a_big_answer_is_cut_at_auth_keep_body_and_marked_there(streaming_web):
    target = f"/big/{MiB}?{unique('web-big')[4:]}"
    flow, f = through(streaming_web, target)
    assert f.size == MiB  # the client got all of it
    kept = content(streaming_web, flow)
    body, _, mark = kept.rstrip(b"\n").rpartition(b"\n")
    assert len(body) + 1 <= KEEP and len(body) + 1 == KEEP // 128 * 128  # whole lines, up to the cut
    assert f.body.startswith(body + b"\n")
    assert mark == b"[auth gate] cut here: the client got 1.0 MiB in all; the first 64.0 KiB are kept on this " \
                   b"flow (auth_keep_body)."
    assert flow["comment"].endswith(" · response body kept: first 64.0 KiB of 1.0 MiB")
    _, text = view(streaming_web, flow, "Auth gate", "request")
    assert ("1.0 MiB in all; the first 64.0 KiB are kept on this flow (auth_keep_body), marked where they stop."
            in " ".join(text.split()))


def test_a_gzipd_answer_cut_short_still_decodes(streaming_web, pace):
    target = f"/gzip/{MiB}?{unique('web-gzip')[4:]}"
    flow, f = through(streaming_web, target)
    assert f.headers["content-encoding"] == "gzip"
    text = pace.gzip_bodies[MiB][0]
    shown = content(streaming_web, flow)  # content.data: decoded, as mitmweb shows it
    body, _, mark = shown.rstrip(b"\n").rpartition(b"\n")
    assert len(body) > 16 * 1024 and text.startswith(body + b"\n"), len(body)
    assert mark.startswith(b"[auth gate] cut here: the client got ")
    assert next(v for n, v in flow["response"]["headers"] if n.lower() == "content-encoding") == "gzip"


def test_an_uploads_copy_is_kept(streaming_web, pace):
    ident = unique("web-up")[4:]
    flow, f = through(streaming_web, f"/upload/{ident}", method="POST", body_size=MiB)
    assert pace.uploads[ident]["bytes"] == MiB and pace.uploads[ident]["complete"]
    kept = content(streaming_web, flow, "request")
    assert kept.startswith(b'{"line": 00000000, ') and kept.endswith(
        b"[auth gate] cut here: the upstream got 1.0 MiB in all; the first 64.0 KiB are kept on this flow "
        b"(auth_keep_body).\n")
    _, text = view(streaming_web, flow, "Auth gate", "request")
    assert "Request body: streamed to the upstream as it came in. 1.0 MiB in all;" in " ".join(text.split())


def test_browser_an_sse_answer_reads_event_by_event(streaming_web, browser, tmp_path):  # noqa: F811
    target = f"/sse/{unique('web-shot')[4:]}?n=15&every=0.02"
    through(streaming_web, target)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(streaming_web.web_url, wait_until="domcontentloaded")
        page.get_by_placeholder("Search").wait_for()
        flow_row(page, target).click()
        page.locator("nav").get_by_text("Response", exact=True).click()
        page.locator(".contentview .controls", has_text=re.compile("event stream", re.I)).first.wait_for()
        pre = page.locator(".contentview pre").first
        pre.wait_for()
        text = pre.inner_text()
        for line in ("#1 · event: delta", '{"seq": 0, "text": "word0 "}', "#15 · event: delta"):
            assert line in text, (line, text[:500])
        path = tmp_path / "streamed-sse-in-mitmweb.png"
        page.screenshot(path=str(path))
        print(f"\nscreenshot: {path}")
        assert path.stat().st_size > 0
    finally:
        context.close()
