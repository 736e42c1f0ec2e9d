"""Where people look in mitmweb, in a real browser: the "Auth gate" view of the flow they clicked
(Request and Response tabs), `auth.explain @focus` on that flow with its lines in the event log,
the gate's own answers marked and shown at the gate's address, the lesson's header precedence as
the explainer traces it, and the smaller items (auth_lang for the start-up line, "valid again",
Simplified Chinese answered in Traditional Chinese).

One mitmweb (strict, KEY, the echo upstream, throwaway option changes) serves the first tests; the
language test has its own. Helpers and the browser come from mitmweb_live.py and web_browser.py;
screenshots are saved as test_web_flow_list.py's are, and printed. The Chinese body reads in the
screenshot where Chromium has a CJK font (Debian: fonts-wqy-zenhei or fonts-noto-cjk); the
assertions read the page's text either way.
"""

from __future__ import annotations

import http.client
import re
import time

import pytest
from mitmproxy.utils import emoji

from authgate.cli import explain as explain_cli
from live import config_text, write_config
from mitmweb_live import DENIED, KEY, POLL_TIMEOUT, WRONG, WebAPI, send, start_mitmweb, unique, upstream  # noqa: F401
from raw_http import IO_TIMEOUT
from web_browser import browser, flow_row  # noqa: F401

GATE_MARK = emoji.emoji[":shield:"]
SMART = "Bearer \u201c{key}\u201d"  # a key pasted with smart quotes: not ASCII


@pytest.fixture(scope="module")
def views(upstream, tmp_path_factory):
    config = tmp_path_factory.mktemp("views") / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    mw = start_mitmweb(config, "--set", "auth_save=false")
    mw.config = config
    try:
        yield mw
    finally:
        mw.stop()


def open_page(browser, mw, height: int = 1000):
    context = browser.new_context(viewport={"width": 1600, "height": height})
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    pg.goto(mw.web_url, wait_until="domcontentloaded")
    pg.get_by_placeholder("Search").wait_for()
    return context, pg


@pytest.fixture
def page(browser, views):
    context, pg = open_page(browser, views)
    yield pg
    context.close()


def raw_send(port: int, path: str, headers: list[tuple[str, bytes]], method: str = "GET") -> int:
    """A request whose header values go out as the bytes given (a smart quote as its UTF-8)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=IO_TIMEOUT)
    try:
        conn.putrequest(method, path)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def view_text(pg) -> str:
    """The text the content view shows (after it has loaded)."""
    view = pg.locator(".contentview pre").first
    view.wait_for()
    return view.inner_text()


def shot(pg, tmp_path, name: str):
    path = tmp_path / name
    pg.screenshot(path=str(path))
    print(f"\nscreenshot: {path}")
    assert path.stat().st_size > 0
    return path


def log_shows(pg, text: str) -> None:
    """Scroll mitmweb's event log to its end (it renders only the lines in view) until `text` is there."""
    log, deadline = pg.locator(".eventlog pre").first, time.monotonic() + POLL_TIMEOUT
    while not pg.locator(".eventlog").get_by_text(text).count():
        assert time.monotonic() < deadline, f"the event log never showed {text!r}"
        log.evaluate("el => { el.scrollTop = el.scrollHeight; el.dispatchEvent(new Event('scroll')) }")
        time.sleep(0.1)


def events(api) -> list[str]:
    """The event log's lines, without the time mitmweb puts in front."""
    return [re.sub(r"^\[[\d:.]+\] ", "", e["message"]) for e in api.get("/events")]


def test_browser_the_flow_clicked_says_why_and_auth_explain_takes_it(views, page, tmp_path):
    first, deny = unique("view-first"), unique("view-no-space")
    assert send(views.port, first, {"x-api-key": WRONG})[0] == 401  # mitmweb's @focus, left alone
    assert send(views.port, deny, {"Authorization": f"Bearer{KEY}"})[0] == 401
    row = flow_row(page, deny)
    assert row.locator("td.col-comment").inner_text().strip() == "401 · strict · Authorization won · no space after Bearer"
    assert row.locator("td.col-path .marker").inner_text().strip() == DENIED  # comment column and marker stay
    row.click()
    text = view_text(page)  # the Request tab of a GET: no body, the decision all the same
    for line in ("Auth gate: 401 · strict · Authorization won · no space after Bearer",
                 f"Answered by the auth gate itself at 127.0.0.1:{views.port}: nothing was sent to the upstream",
                 "  Bearer prefix: not found, the whole value is the key",
                 "fix: Write Authorization: Bearer <key>, with one space after Bearer.", "Request body:", "(no body)"):
        assert line in text, (line, text)
    heading = page.locator(".contentview .controls h5").first.inner_text().strip()
    assert heading in ("Auth gate", "No content"), heading  # 11.x: the view's name; 12.x: its own heading
    assert KEY not in text
    shot(page, tmp_path, "view-request-tab.png")

    page.locator("nav").get_by_text("Response", exact=True).click()
    page.locator(".contentview .controls h5", has_text=re.compile("auth gate", re.I)).wait_for()
    text = view_text(page)
    assert "Response body (what the client received):" in text and '"message": "Proxy auth (strict) denied' in text
    pre = page.locator(".contentview pre").first
    widths = pre.evaluate("el => ({scroll: el.scrollWidth, client: el.clientWidth})")
    assert widths["scroll"] <= widths["client"] + 1, f"the view's lines are clipped: {widths}"
    shot(page, tmp_path, "view-response-tab.png")

    page.get_by_text("Options", exact=True).first.click()
    page.get_by_text("Display Command Bar").click()
    page.get_by_text("Display Event Log").click()
    command = page.get_by_placeholder("Enter command")
    command.fill("auth.explain @focus")  # @focus: the flow open in the flow view, not mitmweb's first
    command.press("Enter")
    result = page.locator(".command").get_by_text(re.compile(re.escape(f'"GET {deny}')))
    result.wait_for()
    assert first not in page.locator(".command").inner_text()
    api = WebAPI.of(views)
    flow_id = next(f["id"] for f in api.flows() if f["request"]["path"] == deny)
    deadline = time.monotonic() + POLL_TIMEOUT
    while f"auth.explain {flow_id}:" not in (logged := events(api)) and time.monotonic() < deadline:
        time.sleep(0.05)
    start = logged.index(f"auth.explain {flow_id}:")
    assert logged[start + 1:start + 4] == [f"  GET {deny}", "  effective mode: strict (auth_mode=strict)",
                                           "    Authorization: present, read (first present key header)"]
    log_shows(page, "  fix: Write Authorization: Bearer <key>, with one space after Bearer.")
    shot(page, tmp_path, "view-explain-focus.png")


def test_browser_the_gates_own_answers_are_marked_at_its_address(views, page, tmp_path, upstream):
    api = WebAPI.of(views)
    probe = unique("x").rsplit("-", 1)[1]
    health, preflight, wrong_method = f"/healthz?probe={probe}", unique("preflight"), f"/healthz?post={probe}"
    forwarded, denied = unique("forwarded"), unique("denied")
    try:
        assert api.set_options(auth_mode="all_except_health")[0] == 200
        assert send(views.port, health)[0] == 200
        assert send(views.port, preflight, {"Origin": "http://app", "Access-Control-Request-Method": "POST"},
                    method="OPTIONS")[0] == 200
        assert send(views.port, wrong_method, method="POST")[0] == 405
        assert send(views.port, forwarded, {"x-api-key": KEY})[0] == 200
        assert send(views.port, denied)[0] == 401
        gate_at, upstream_at = f"http://127.0.0.1:{views.port}/", f"{upstream}/"
        for path, mark in ((health, GATE_MARK), (preflight, GATE_MARK), (wrong_method, GATE_MARK), (denied, DENIED)):
            row = flow_row(page, path)
            assert row.locator("td.col-path").inner_text().strip().endswith(f"127.0.0.1:{views.port}{path}"), path
            assert row.locator("td.col-path .marker").inner_text().strip() == mark, path
        row = flow_row(page, forwarded)
        assert row.locator("td.col-path").inner_text().strip().endswith(upstream_at.split("//")[1] + forwarded[1:])
        assert row.locator("td.col-path .marker").inner_text().strip() == ""
        assert row.locator("td.col-comment").inner_text().startswith("pass · ")
        flows = {f["request"]["path"]: f for f in api.flows()}
        assert flows[health]["marked"] == GATE_MARK and flows[health]["request"]["port"] == views.port
        assert flows[forwarded]["request"]["port"] != views.port and gate_at != upstream_at
        shot(page, tmp_path, "local-answers-list.png")
        flow_row(page, health).click()
        page.locator("nav").get_by_text("Response", exact=True).click()
        page.locator(".contentview .controls h5", has_text=re.compile("auth gate", re.I)).wait_for()
        text = view_text(page)
        assert f"Answered by the auth gate itself at 127.0.0.1:{views.port}: nothing was sent" in text
        assert '"status": "ok"' in text
        shot(page, tmp_path, "local-answer-healthz.png")
    finally:
        assert api.set_options(auth_mode=None)[0] == 200


def test_browser_the_lessons_precedence_as_the_explainer_traces_it(views, page, tmp_path):
    path = unique("precedence")
    sent = [("Authorization", SMART.format(key=KEY).encode()), ("x-goog-api-key", KEY.encode())]
    assert raw_send(views.port, path, sent) == 200  # the smart-quoted Authorization counts as absent
    row = flow_row(page, path)
    assert row.locator("td.col-comment").inner_text().strip() == \
        "pass · strict · x-goog-api-key won (Authorization non-ASCII, skipped; x-api-key absent) · key ok"
    row.click()
    text = view_text(page)
    # `just explain -- curl ...`, the same request pasted as a curl line, traces it line for line
    out = explain_cli.run(["--config", str(views.config), "curl", "-is", f"http://127.0.0.1:{views.port}{path}",
                           "-H", f"Authorization: {SMART.format(key=KEY)}", "-H", f"x-goog-api-key: {KEY}"])
    trace = out.split("\n\n", 1)[0].splitlines()
    assert trace[0] == f"GET {path}" and "  Authorization: present, not visible ASCII: counts as absent" in trace
    shown = text.splitlines()
    assert shown[shown.index(trace[0]):shown.index(trace[0]) + len(trace)] == trace
    shot(page, tmp_path, "lesson-precedence.png")


def test_browser_start_up_line_valid_again_and_chinese_in_the_persons_language(upstream, tmp_path, browser):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    mw = start_mitmweb(config, "--set", "auth_lang=fr")
    context, pg = open_page(browser, mw, height=1100)
    try:
        api = WebAPI.of(mw)
        write_config(config, "proxy:\n  auth_mode: offf\n")  # a bad edit...
        assert send(mw.port, unique("bad-edit"))[0] == 401
        write_config(config, config_text("strict", KEY, upstream))  # ...and the edit that fixes it
        path = unique("zh-cn")
        status, body = send(mw.port, path, {"Accept-Language": "zh-CN,zh;q=0.9"})
        assert status == 401 and "代理驗證(strict)拒絕了這個請求" in body.decode()  # Traditional, not English
        logged = "\n".join(events(api))
        assert "auth gate (chargé) : mode strict (allow_lan_access=false)" in logged  # the start-up line, in French
        assert "auth gate (config.yaml est de nouveau valide) : mode strict" in logged
        row = flow_row(pg, path)
        assert row.locator("td.col-comment").inner_text().strip().startswith("401 · strict · aucun en-tête de clé")
        row.click()
        pg.locator("nav").get_by_text("Response", exact=True).click()
        pg.locator(".contentview .controls h5", has_text=re.compile("auth gate", re.I)).wait_for()
        text = view_text(pg)
        assert "Répondu par la passerelle d'authentification elle-même" in text  # the view: auth_lang
        assert "Corps de la réponse (ce que le client a reçu) :" in text and "代理驗證" in text  # the body: the client's
        assert pg.get_by_text("zh-TW").first.is_visible()  # content-language
        pg.get_by_text("Options", exact=True).first.click()
        pg.get_by_text("Display Event Log").click()
        log_shows(pg, "est de nouveau valide")
        shot(pg, tmp_path, "languages-and-valid-again.png")
    finally:
        context.close()
        mw.stop()
