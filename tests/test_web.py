"""mitmweb with the gate: its own HTTP API and a real browser, against a live `mitmweb -s addon/auth.py`.

One mitmweb serves the tests that only add flows or flip an option and put it back; the
regenerate test (it rewrites the key) and the web_host guard get their own. Everything listens on
127.0.0.1 (ephemeral ports), every socket call and every wait is bounded, and every process is
terminated (killed if it hangs) when its fixture ends.

The browser test drives Debian's Chromium (/usr/bin/chromium) through Playwright's Python package
with `executable_path`; no browser is downloaded. Without either, it is skipped with the reason.
"""

from __future__ import annotations

import http.client
import http.cookies
import json
import os
import re
import shutil
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import yaml

from authgate.settings import fingerprint
from live import ADDON, IO_TIMEOUT, WEB_HAS_AUTH, WEB_LISTENING, Process, Upstream, closed_port, config_text, write_config

KEY = "sk-web0123456789abcdef0123456789ab"  # the shared mitmweb's key
WRONG = "sk-webWRONGfedcba9876543210fedcba9"
START_TIMEOUT = 25.0  # seconds for mitmweb to print both "listening at" lines
EXIT_TIMEOUT = 20.0  # seconds for a refused start to exit
POLL_TIMEOUT = 10.0  # seconds, waiting for a flow to change
DENIED = "\u26d4"  # ":no_entry:" as mitmweb's API and page show it
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


# ====================================================================== processes

def mitmweb(config: Path, *extra: str) -> Process:
    """`mitmweb -s addon/auth.py` on `config`, its UI on a free loopback port (web_port)."""
    web_port = closed_port()
    mw = Process("mitmweb", "-s", str(ADDON), "--set", f"auth_config={config}", "--set", f"web_port={web_port}",
                 "--set", "web_open_browser=false", *extra)
    mw.web_port = web_port
    return mw


def start_mitmweb(config: Path, *extra: str) -> Process:
    """mitmweb on an ephemeral proxy port, once both its proxy and its UI say "listening at"."""
    mw = mitmweb(config, "--set", "auth_port=0", *extra).wait_listening(timeout=START_TIMEOUT, web=True)
    if mw.host != "127.0.0.1":  # the proxy itself on loopback
        pytest.fail(f"mitmweb's proxy listens at {mw.host}, not 127.0.0.1:\n{mw.stop()}")
    return mw


@pytest.fixture(scope="module")
def upstream():
    with Upstream() as u:
        yield u.url


@pytest.fixture(scope="module")
def web(upstream, tmp_path_factory):
    """The shared mitmweb: strict mode, KEY, the echo upstream. Its tests flip an option and put it
    back, so option changes are throwaway overrides there (auth_save=false); saving them into
    config.yaml, the default, is tested on mitmwebs of its own (test_web_settings.py)."""
    config = tmp_path_factory.mktemp("web") / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    mw = start_mitmweb(config, "--set", "auth_save=false")
    try:
        yield mw
    finally:
        mw.stop()


# ====================================================================== HTTP

def send(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, bytes]:
    """One origin-form request through the proxy."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=IO_TIMEOUT)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class WebAPI:
    """mitmweb's HTTP API as each version wants it: the UI's token (11.1.2+) on every request,
    the cookies it sets kept, writes with an XSRF cookie echoed in an X-XSRFToken header."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.token = token
        self.cookies: dict[str, str] = {}

    @classmethod
    def of(cls, mw) -> WebAPI:
        return cls(mw.web_port, mw.web_token)

    def raw(self, method: str, path: str, body=None, headers: dict[str, str] | None = None,
            token: bool = True):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=IO_TIMEOUT)
        try:
            data = None if body is None else json.dumps(body).encode()
            hdrs = dict(headers or {})
            if data is not None:
                hdrs["content-type"] = "application/json"
            if self.cookies:
                hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            if token and self.token:
                path += ("&" if "?" in path else "?") + urllib.parse.urlencode({"token": self.token})
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            jar = http.cookies.SimpleCookie()
            for cookie in resp.msg.get_all("Set-Cookie") or []:
                jar.load(cookie)
            self.cookies.update((k, m.value) for k, m in jar.items())
            return resp.status, resp.msg, resp.read()
        finally:
            conn.close()

    def xsrf(self) -> str:
        """Tornado's double-submit check only compares the cookie with the header, so the client
        picks the value; the cookie is `_xsrf` up to 11.1 and `_mitmproxy_xsrf` from 12."""
        value = self.cookies.setdefault("_xsrf", uuid.uuid4().hex)
        self.cookies["_mitmproxy_xsrf"] = value
        return value

    def get(self, path: str):
        status, _, body = self.raw("GET", path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def write(self, method: str, path: str, body) -> tuple[int, bytes]:
        status, _, data = self.raw(method, path, body, {"X-XSRFToken": self.xsrf()})
        return status, data

    def set_options(self, **options) -> tuple[int, bytes]:
        return self.write("PUT", "/options", options)

    def command(self, name: str, *args: str) -> str:
        status, data = self.write("POST", f"/commands/{name}", {"arguments": list(args)})
        assert status == 200, (name, status, data[:500])
        result = json.loads(data)
        assert "error" not in result, f"{name} {args}: {result['error']}"
        return result["value"]

    def flows(self) -> list[dict]:
        return self.get("/flows")

    def flow_by_path(self, path: str, timeout: float = POLL_TIMEOUT) -> dict:
        """The one flow whose request path is `path`, once it has its response."""
        deadline = time.monotonic() + timeout
        while True:
            found = [f for f in self.flows() if f["request"]["path"] == path]
            if len(found) == 1 and found[0].get("response"):
                return found[0]
            assert len(found) <= 1, f"{len(found)} flows for {path}"
            if time.monotonic() > deadline:
                pytest.fail(f"no finished flow for {path} within {timeout}s: {found}")
            time.sleep(0.05)

    def option(self, name: str):
        return self.get("/options")[name]["value"]


def unique(label: str) -> str:
    return f"/v1/{label}-{uuid.uuid4().hex[:8]}"


# ====================================================================== the API

def test_flows_show_the_decision_in_comment_and_marker(web):
    api = WebAPI.of(web)
    deny, ok, shadow = unique("deny"), unique("pass"), unique("shadow")
    assert send(web.port, deny, {"x-api-key": WRONG})[0] == 401
    assert send(web.port, ok, {"Authorization": f"Bearer {KEY}"})[0] == 200
    assert send(web.port, shadow, {"Authorization": f"Bearer {WRONG}", "x-api-key": KEY})[0] == 401

    f = api.flow_by_path(deny)
    assert f["comment"] == "401 · strict · x-api-key won (Authorization absent) · key mismatch"
    assert f["marked"] == DENIED
    assert f["response"]["status_code"] == 401

    f = api.flow_by_path(ok)
    assert f["comment"] == "pass · strict · Authorization won · key ok"
    assert f["marked"] == ""
    assert f["response"]["status_code"] == 200

    f = api.flow_by_path(shadow)
    assert f["comment"].startswith("401 · strict · Authorization won (x-api-key ignored) · key mismatch")
    assert "shadowed a correct x-api-key" in f["comment"]
    assert f["marked"] == DENIED


def test_comment_column_is_on(web):
    columns = WebAPI.of(web).option("web_columns")
    assert "comment" in columns, columns


def test_options_change_applies_to_the_next_request(web):
    api = WebAPI.of(web)
    before = unique("keyless-strict")
    assert send(web.port, before)[0] == 401
    assert api.flow_by_path(before)["comment"] == "401 · strict · no key header · key required"
    try:
        status, body = api.set_options(auth_mode="off")
        assert status == 200, body
        assert api.option("auth_mode") == "off"
        after = unique("keyless-off")
        assert send(web.port, after)[0] == 200
        f = api.flow_by_path(after)
        assert f["comment"].startswith("pass · off"), f["comment"]
        assert f["marked"] == ""

        status, body = api.set_options(auth_mode="bogus")
        assert 400 <= status < 500, (status, body)
        assert b"bogus" in body
        assert api.option("auth_mode") == "off"  # rolled back
        still = unique("keyless-still-off")
        assert send(web.port, still)[0] == 200
        assert api.flow_by_path(still)["comment"].startswith("pass · off")
    finally:
        status, body = api.set_options(auth_mode=None)  # back to config.yaml's strict
        assert status == 200, body
    again = unique("keyless-strict-again")
    assert send(web.port, again)[0] == 401
    assert api.flow_by_path(again)["marked"] == DENIED


def test_api_key_option_applies_to_the_next_request(web):
    api = WebAPI.of(web)
    try:
        assert api.set_options(auth_api_key=WRONG)[0] == 200
        old, new = unique("key-option-old"), unique("key-option-new")
        assert send(web.port, old, {"x-api-key": KEY})[0] == 401
        assert api.flow_by_path(old)["comment"] == "401 · strict · x-api-key won (Authorization absent) · key mismatch"
        assert send(web.port, new, {"x-api-key": WRONG})[0] == 200
        assert api.flow_by_path(new)["comment"] == "pass · strict · x-api-key won (Authorization absent) · key ok"
        status = api.command("auth.status")
        assert f"api_key: {fingerprint(WRONG)}" in status
        assert re.search(r"options override: [^)]*\bapi_key\b", status), status
    finally:
        assert api.set_options(auth_api_key=None)[0] == 200
    back = unique("key-option-back")
    assert send(web.port, back, {"x-api-key": KEY})[0] == 200


def test_replay_decides_again_under_the_current_settings(web):
    api = WebAPI.of(web)
    path = unique("replay")
    assert send(web.port, path, {"x-api-key": WRONG})[0] == 401
    flow = api.flow_by_path(path)
    assert flow["comment"].startswith("401 · strict")
    assert flow["marked"] == DENIED
    try:
        assert api.set_options(auth_mode="off")[0] == 200
        status, body = api.write("POST", f"/flows/{flow['id']}/replay", None)
        assert status == 200, body
        deadline = time.monotonic() + POLL_TIMEOUT
        while True:
            now = next(f for f in api.flows() if f["id"] == flow["id"])
            if now["comment"].startswith("pass · off") and now.get("response"):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the replayed flow was not decided again within {POLL_TIMEOUT}s: {now}")
            time.sleep(0.05)
        assert now["is_replay"] == "request"
        assert now["response"]["status_code"] == 200
        assert now["marked"] == ""
    finally:
        assert api.set_options(auth_mode=None)[0] == 200


def test_status_command(web):
    api = WebAPI.of(web)
    counts = re.compile(r"flows: (\d+) passed, (\d+) denied")
    first = api.command("auth.status")
    assert "effective mode: strict (auth_mode=strict)" in first
    assert f"api_key: {fingerprint(KEY)}" in first and fingerprint(KEY).startswith("sk-…")
    assert KEY not in first
    assert "upstream: http://127.0.0.1:" in first
    passed, denied = map(int, counts.search(first).groups())
    assert send(web.port, unique("status-deny"))[0] == 401
    assert send(web.port, unique("status-pass"), {"x-api-key": KEY})[0] == 200
    passed2, denied2 = map(int, counts.search(api.command("auth.status")).groups())
    assert (passed2, denied2) == (passed + 1, denied + 1)


def test_explain_command_on_one_flow(web):
    api = WebAPI.of(web)
    path = unique("explain")
    assert send(web.port, path, {"x-api-key": WRONG})[0] == 401
    flow = api.flow_by_path(path)
    # mitmweb 11 parses a flow argument with view.flows.resolve: "@<flow id>" names one flow.
    trace = api.command("auth.explain", f"@{flow['id']}")
    lines = trace.splitlines()
    assert len(lines) >= 6, trace
    assert lines[0] == f"GET {path}"
    assert "effective mode: strict (auth_mode=strict)" in trace
    assert "  Authorization: absent" in lines
    assert "  x-api-key: present, read (first present key header)" in lines
    assert "  x-goog-api-key: absent" in lines
    assert f"  key read: {fingerprint(WRONG)}" in lines
    assert any(line.startswith("result: 401: key mismatch") for line in lines), trace
    assert any(line.startswith("fix: ") for line in lines), trace
    assert WRONG not in trace and KEY not in trace
    # A filter that matches several flows is refused: the command wants exactly one.
    status, data = api.write("POST", "/commands/auth.explain", {"arguments": ["@all"]})
    assert status == 200 and "error" in json.loads(data)


# ====================================================================== regenerate (own mitmweb)

def test_regenerate_command(upstream, tmp_path):
    config = tmp_path / "config.yaml"
    old = "sk-regen0123456789abcdef012345678"
    write_config(config, config_text("strict", old, upstream))
    mw = start_mitmweb(config)
    try:
        api = WebAPI.of(mw)
        assert send(mw.port, unique("regen-before"), {"Authorization": f"Bearer {old}"})[0] == 200

        value = api.command("auth.regenerate")
        new = yaml.safe_load(config.read_text(encoding="utf-8"))["proxy"]["api_key"]
        assert new != old and re.fullmatch(r"sk-[0-9a-f]{32}", new), new
        assert fingerprint(new) in value, value
        assert fingerprint(old) not in value
        assert new not in value

        old_path, new_path = unique("regen-old"), unique("regen-new")
        status, body = send(mw.port, old_path, {"Authorization": f"Bearer {old}"})
        assert status == 401, body
        assert api.flow_by_path(old_path)["comment"] == "401 · strict · Authorization won · key mismatch"
        status, body = send(mw.port, new_path, {"Authorization": f"Bearer {new}"})
        assert status == 200, body
        assert api.flow_by_path(new_path)["comment"] == "pass · strict · Authorization won · key ok"
        assert fingerprint(new) in api.command("auth.status")

        events = json.dumps(api.get("/events"), ensure_ascii=False)
        assert fingerprint(new) in events  # the warning the command logs...
        assert new not in events  # ...names the key by its fingerprint only
    finally:
        mw.stop()
    assert fingerprint(new) in mw.output
    assert new not in mw.output


def test_upstream_failure_shows_the_gates_json_answer(tmp_path):
    """A dead upstream: the client and mitmweb see the same JSON 502, with the error beside it."""
    config = tmp_path / "config.yaml"
    dead = f"http://127.0.0.1:{closed_port()}"
    write_config(config, config_text("strict", KEY, dead))
    mw = start_mitmweb(config)
    try:
        path = unique("dead-upstream")
        status, body = send(mw.port, path, {"Authorization": f"Bearer {KEY}"})
        assert status == 502, body
        assert json.loads(body)["error"]["code"] == "upstream_unreachable"
        f = WebAPI.of(mw).flow_by_path(path)
        assert f["response"]["status_code"] == 502
        assert f["error"]["msg"]  # mitmproxy's reason stays on the flow
        assert f["comment"] == "pass · strict · Authorization won · key ok · 502 upstream unreachable"
        assert f["request"]["path"] == path
    finally:
        mw.stop()


# ====================================================================== the web_host guard (own mitmweb)

@pytest.mark.skipif(WEB_HAS_AUTH, reason="mitmweb 11.1.2+ asks for a token: a non-loopback UI is allowed there")
def test_non_loopback_web_host_is_refused(upstream, tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    # listen_host/listen_port keep even the fallback proxy listener on loopback, ephemeral.
    mw = mitmweb(config, "--set", "web_host=0.0.0.0", "--set", "listen_host=127.0.0.1", "--set", "listen_port=0")
    try:
        code = mw.wait_exit(EXIT_TIMEOUT)
    finally:
        mw.stop()
    if code is None:
        pytest.fail(f"mitmweb with web_host=0.0.0.0 still runs after {EXIT_TIMEOUT}s:\n{mw.output}")
    out = mw.output
    assert code != 0, out
    assert "web_host 0.0.0.0 is not a loopback address" in out, out
    assert "auth_web_remote=true" in out, out
    assert WEB_LISTENING not in out, out


@pytest.mark.skipif(not WEB_HAS_AUTH, reason="mitmweb 11.0 has no token: a non-loopback UI is refused there")
def test_non_loopback_web_host_is_token_protected_and_said(upstream, tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    mw = start_mitmweb(config, "--set", "web_host=0.0.0.0")
    try:
        assert "mitmweb on 0.0.0.0: whoever has its token or web_password sees the keys" in mw.output
        assert WebAPI(mw.web_port).raw("GET", "/flows")[0] == 403  # no token: nothing to see
        assert WebAPI.of(mw).raw("GET", "/flows")[0] == 200
    finally:
        mw.stop()


def test_non_loopback_web_host_starts_when_forced(upstream, tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", KEY, upstream))
    mw = start_mitmweb(config, "--set", "web_host=0.0.0.0", "--set", "auth_web_remote=true")
    try:
        assert f"{WEB_LISTENING} http://0.0.0.0:{mw.web_port}/" in mw.output
        status, _, _ = WebAPI.of(mw).raw("GET", "/")  # reached on 127.0.0.1 only
        assert status == 200
    finally:
        mw.stop()


# ====================================================================== a real browser

def _chromium() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        pytest.skip(f"Chromium is not installed ({path} missing; Debian: apt-get install chromium): "
                    "the browser test cannot run")
    return path


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.skip(f"the playwright package is not installed ({e}): the browser test cannot run")
    chromium = _chromium()
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS, timeout=30_000)
        except PlaywrightError as e:
            pytest.skip(f"Chromium at {chromium} could not be started by Playwright: {e}")
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, web):
    """mitmweb's page, open on the flow list, wide enough for every column."""
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    try:
        pg = context.new_page()
        pg.set_default_timeout(15_000)
        pg.goto(web.web_url, wait_until="domcontentloaded")  # with its token on 11.1.2+
        pg.get_by_placeholder("Search").wait_for()
        yield pg
    finally:
        context.close()


def _rows(page):
    return page.locator(".flow-table tbody tr:has(td.col-path)")


def _row(page, path: str):
    """The flow list's row for `path`, once its response status is shown."""
    r = _rows(page).filter(has=page.locator("td.col-path", has_text=path))
    r.locator("td.col-status", has_text=re.compile(r"\d{3}")).wait_for()
    return r


def test_browser_flow_list_shows_winner_and_marker(web, page, tmp_path):
    deny, ok, shadow = unique("browser-deny"), unique("browser-pass"), unique("browser-shadow")
    shot = tmp_path / "mitmweb-flows.png"
    shot_filtered = tmp_path / "mitmweb-flows-marked.png"

    # The flows arrive while the page is open (mitmweb pushes them over its websocket).
    assert send(web.port, deny, {"x-api-key": WRONG})[0] == 401
    assert send(web.port, ok, {"Authorization": f"Bearer {KEY}"})[0] == 200
    assert send(web.port, shadow, {"Authorization": f"Bearer {WRONG}", "x-api-key": KEY})[0] == 401

    assert page.locator(".flow-table thead th.col-comment").inner_text().strip() == "Comment"

    r = _row(page, deny)
    assert r.locator("td.col-comment").inner_text().strip() == \
        "401 · strict · x-api-key won (Authorization absent) · key mismatch"
    assert r.locator("td.col-path .marker").inner_text().strip() == DENIED

    r = _row(page, ok)
    assert r.locator("td.col-comment").inner_text().strip() == "pass · strict · Authorization won · key ok"
    assert r.locator("td.col-path .marker").inner_text().strip() == ""

    r = _row(page, shadow)
    text = r.locator("td.col-comment").inner_text()
    assert "Authorization won (x-api-key ignored)" in text and "shadowed a correct x-api-key" in text
    assert r.locator("td.col-path .marker").inner_text().strip() == DENIED

    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")

    # The README's "all denials" filter, typed into the search box.
    search = page.get_by_placeholder("Search")
    search.fill("~marked")
    search.press("Enter")
    _rows(page).filter(has=page.locator("td.col-path", has_text=ok)).wait_for(state="detached")
    visible = _rows(page).all()
    assert visible, "the ~marked filter left no rows"
    paths = [v.locator("td.col-path").inner_text() for v in visible]
    assert any(deny in t for t in paths) and any(shadow in t for t in paths), paths
    for v in visible:
        assert v.locator("td.col-path .marker").inner_text().strip() == DENIED
        assert v.locator("td.col-comment").inner_text().strip().startswith("401 · ")
    page.screenshot(path=str(shot_filtered), full_page=True)
    print(f"screenshot (~marked): {shot_filtered}")

    # The other questions, as filters in the same box.
    def shown_after(expr: str, gone: str) -> list[str]:
        search.fill(expr)
        search.press("Enter")
        _rows(page).filter(has=page.locator("td.col-path", has_text=gone)).wait_for(state="detached")
        return [v.locator("td.col-comment").inner_text().strip() for v in _rows(page).all()]

    search.fill("")  # back to every flow, so each filter below removes something
    search.press("Enter")
    _row(page, ok)
    comments = shown_after("~comment 401", gone=ok)
    assert comments and all(c.startswith("401 · ") for c in comments), comments
    comments = shown_after('~comment "x-api-key won"', gone=shadow)
    assert comments and all("x-api-key won" in c for c in comments), comments
    comments = shown_after("~comment shadowed", gone=deny)
    assert comments and all("shadowed a correct" in c for c in comments), comments
    assert shot.stat().st_size > 0 and shot_filtered.stat().st_size > 0


def test_browser_comment_is_readable_without_opening_the_flow(web, page, tmp_path):
    """The issue's "done when": the row itself says which header won and why, not only the DOM.

    The text being in the cell is not enough if the page clips it (mitmweb's flow table cuts cells
    with an ellipsis): the winner and the reason must be inside the visible part of the cell."""
    deny = unique("browser-readable")
    assert send(web.port, deny, {"x-api-key": WRONG})[0] == 401
    cell = _row(page, deny).locator("td.col-comment")
    widths = cell.evaluate("el => ({scroll: el.scrollWidth, client: el.clientWidth})")
    shot = tmp_path / "mitmweb-comment-cell.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")
    assert widths["scroll"] <= widths["client"] + 1, (
        f"the comment cell shows {widths['client']}px of {widths['scroll']}px: "
        f"{cell.inner_text()!r} is cut off with an ellipsis, so the winning header and the reason "
        f"cannot be read without opening the flow (screenshot {shot})")
