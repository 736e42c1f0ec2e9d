"""Headless Chromium for the mitmweb tests: Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) driven
by Playwright's Python package with `executable_path`; no browser is downloaded. Without either, a
test that asks for `browser` is skipped with the reason. `page`: the shared mitmweb's page (the
`web` fixture of mitmweb_live.py) open on its flow list; `flow_row`: a flow's row in that list.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


def flow_rows(page):
    return page.locator(".flow-table tbody tr:has(td.col-path)")


def flow_row(page, path: str):
    """The flow list's row for `path`, once its response status is shown."""
    r = flow_rows(page).filter(has=page.locator("td.col-path", has_text=path))
    r.locator("td.col-status", has_text=re.compile(r"\d{3}")).wait_for()
    return r
