"""mitmweb's flow list with the gate, against a live `mitmweb -s addon/auth.py`: each flow says the
decision in its comment and marker (through mitmweb's API, and read in a real browser: the comment
column readable without opening the flow, docs/mitmweb.md's filters), and an upstream failure shows the
gate's JSON answer beside mitmproxy's error.

One mitmweb serves the tests that only add flows; the upstream failure has its own. The browser
tests save screenshots (the test prints their paths) and are skipped, with the reason, without
Chromium or Playwright.
"""

from __future__ import annotations

import json

from live import closed_port, config_text, write_config
from mitmweb_live import DENIED, KEY, WRONG, WebAPI, send, start_mitmweb, unique, upstream, web  # noqa: F401
from web_browser import browser, flow_row, flow_rows, page  # noqa: F401

# ====================================================================== through the API

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


# ====================================================================== a real browser

def test_browser_flow_list_shows_winner_and_marker(web, page, tmp_path):
    deny, ok, shadow = unique("browser-deny"), unique("browser-pass"), unique("browser-shadow")
    shot = tmp_path / "mitmweb-flows.png"
    shot_filtered = tmp_path / "mitmweb-flows-marked.png"

    # The flows arrive while the page is open (mitmweb pushes them over its websocket).
    assert send(web.port, deny, {"x-api-key": WRONG})[0] == 401
    assert send(web.port, ok, {"Authorization": f"Bearer {KEY}"})[0] == 200
    assert send(web.port, shadow, {"Authorization": f"Bearer {WRONG}", "x-api-key": KEY})[0] == 401

    assert page.locator(".flow-table thead th.col-comment").inner_text().strip() == "Comment"

    r = flow_row(page, deny)
    assert r.locator("td.col-comment").inner_text().strip() == \
        "401 · strict · x-api-key won (Authorization absent) · key mismatch"
    assert r.locator("td.col-path .marker").inner_text().strip() == DENIED

    r = flow_row(page, ok)
    assert r.locator("td.col-comment").inner_text().strip() == "pass · strict · Authorization won · key ok"
    assert r.locator("td.col-path .marker").inner_text().strip() == ""

    r = flow_row(page, shadow)
    text = r.locator("td.col-comment").inner_text()
    assert "Authorization won (x-api-key ignored)" in text and "shadowed a correct x-api-key" in text
    assert r.locator("td.col-path .marker").inner_text().strip() == DENIED

    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")

    # docs/mitmweb.md's "all denials" filter, typed into the search box.
    search = page.get_by_placeholder("Search")
    search.fill("~marked")
    search.press("Enter")
    flow_rows(page).filter(has=page.locator("td.col-path", has_text=ok)).wait_for(state="detached")
    visible = flow_rows(page).all()
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
        flow_rows(page).filter(has=page.locator("td.col-path", has_text=gone)).wait_for(state="detached")
        return [v.locator("td.col-comment").inner_text().strip() for v in flow_rows(page).all()]

    search.fill("")  # back to every flow, so each filter below removes something
    search.press("Enter")
    flow_row(page, ok)
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
    cell = flow_row(page, deny).locator("td.col-comment")
    widths = cell.evaluate("el => ({scroll: el.scrollWidth, client: el.clientWidth})")
    shot = tmp_path / "mitmweb-comment-cell.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nscreenshot: {shot}")
    assert widths["scroll"] <= widths["client"] + 1, (
        f"the comment cell shows {widths['client']}px of {widths['scroll']}px: "
        f"{cell.inner_text()!r} is cut off with an ellipsis, so the winning header and the reason "
        f"cannot be read without opening the flow (screenshot {shot})")
