"""One truth for the settings, in a live mitmweb: its API and its Options editor in a real browser
show the auth_* values in force (config.yaml's, or an override), a change there is saved into
config.yaml with its comments and applies to the next request, a throwaway override shows the
file's value as "Default" and goes back to it; auth.status and the start-up line say the same.

Each test has a mitmweb of its own (they change settings); the browser is Debian's Chromium
(web_browser.py), the helpers are mitmweb_live.py's. Screenshots are saved as
test_web_flow_list.py's are.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from authgate.config.paths import TEMPLATE
from authgate.config.read import read_config
from live import write_config
from mitmweb_live import KEY, POLL_TIMEOUT, WebAPI, send, start_mitmweb, unique, upstream  # noqa: F401
from web_browser import browser  # noqa: F401

SHIPPED = TEMPLATE


def shipped_config(path: Path, upstream_url: str) -> Path:
    """The repository's config.yaml, comments and all (auto, allow_lan_access false), with a key."""
    text = SHIPPED.read_text(encoding="utf-8").replace("http://127.0.0.1:8046", upstream_url)
    write_config(path, text.replace("proxy:\n", f'proxy:\n  api_key: "{KEY}"\n', 1))
    return path


def comments(path: Path) -> list[str]:
    return [line.partition("#")[2] for line in path.read_text(encoding="utf-8").splitlines() if "#" in line]


def wait_until(check, what: str, timeout: float = POLL_TIMEOUT):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)
    return result


# ====================================================================== the API

def test_the_api_shows_and_saves_the_settings_in_force(upstream, tmp_path):
    config = shipped_config(tmp_path / "config.yaml", upstream)
    before = comments(config)
    mw = start_mitmweb(config)
    try:
        api = WebAPI.of(mw)
        options = api.get("/options")
        # the values in force, not the first choice of each list (off, true)
        assert options["auth_mode"]["value"] == "auto" and options["auth_allow_lan_access"]["value"] == "false"
        assert "Effective mode now: off (auth_mode=auto with allow_lan_access=false" in options["auth_mode"]["help"]
        assert options["auth_port"]["value"] == 0 and options["auth_port"]["default"] == 8045  # --set at start
        assert send(mw.port, unique("auto-off"))[0] == 200

        status, body = api.set_options(auth_mode="strict")
        assert status == 200, body
        assert read_config(config).auth_mode == "strict" and comments(config) == before  # saved, comments kept
        assert send(mw.port, unique("saved-strict"))[0] == 401  # the next request
        assert api.option("auth_mode") == "strict" and api.get("/options")["auth_mode"]["default"] == "strict"
        status_lines = api.command("auth.status").splitlines()
        assert "auth_mode: strict (from config.yaml)" in status_lines
        assert "port: 0 (an option override, not saved; config.yaml says 8045)" in status_lines

        assert api.set_options(auth_save=False)[0] == 200
        assert api.set_options(auth_mode="off")[0] == 200  # a throwaway override
        assert read_config(config).auth_mode == "strict"
        assert send(mw.port, unique("override-off"))[0] == 200
        o = api.get("/options")["auth_mode"]
        assert (o["value"], o["default"]) == ("off", "strict")
        assert "auth_mode: off (an option override, not saved; config.yaml says strict)" in \
            api.command("auth.status").splitlines()
        assert api.set_options(auth_mode=None)[0] == 200  # back to the file
        assert api.option("auth_mode") == "strict"
        assert send(mw.port, unique("file-again"))[0] == 401
    finally:
        mw.stop()
    out = mw.output
    assert "auth gate (loaded): mode auto → off (allow_lan_access=false)" in out  # the start-up line...
    assert "options override port (not saved)" in out  # ...names the override as status and editor do
    assert "auth gate (proxy.auth_mode saved to config.yaml): mode strict" in out
    assert KEY not in out


# ====================================================================== the browser

@pytest.fixture
def editor_page(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    yield context.new_page()
    context.close()


def open_editor(pg, url: str) -> None:
    pg.set_default_timeout(15_000)
    pg.goto(url, wait_until="domcontentloaded")
    pg.get_by_placeholder("Search").wait_for()
    pg.get_by_text("Options", exact=True).first.click()
    pg.get_by_role("button", name="Edit Options").click()
    pg.locator("#optionsModal select[name=auth_mode]").wait_for()


def row(pg, name: str):
    """An option's row in the Options editor: its name, its help, its field, mitmweb's "Default:"."""
    return pg.locator("#optionsModal :is(.form-group, .form-row)").filter(has=pg.locator(f"[name={name}]"))


def shot(pg, name: str, tmp_path: Path, option: str = "auth_mode") -> Path:
    row(pg, option).scroll_into_view_if_needed()
    path = tmp_path / name
    pg.screenshot(path=str(path))
    print(f"\nscreenshot: {path}")
    return path


def test_browser_options_editor_shows_the_mode_in_force_and_saves_it(upstream, tmp_path, editor_page):
    config = shipped_config(tmp_path / "config.yaml", upstream)
    before = comments(config)
    mw = start_mitmweb(config)
    pg = editor_page
    try:
        open_editor(pg, mw.web_url)
        mode = pg.locator("#optionsModal select[name=auth_mode]")
        # The FAQ's step 2, "confirm the effective auth_mode", answered where a person looks
        assert mode.input_value() == "auto"
        assert pg.locator("#optionsModal select[name=auth_allow_lan_access]").input_value() == "false"
        help_text = row(pg, "auth_mode").inner_text()
        assert "proxy.auth_mode in config.yaml: auto, in force" in help_text
        assert "Effective mode now: off (auth_mode=auto with allow_lan_access=false resolves to off)" in help_text
        assert "Default:" not in help_text  # nothing overrides the file
        first = shot(pg, "options-in-force.png", tmp_path)

        mode.select_option("strict")
        wait_until(lambda: read_config(config).auth_mode == "strict", "saving auth_mode into config.yaml")
        assert comments(config) == before
        row(pg, "auth_mode").get_by_text("proxy.auth_mode in config.yaml: strict, in force").wait_for()
        assert send(mw.port, unique("editor-strict"))[0] == 401  # the next request
        saved = shot(pg, "options-saved.png", tmp_path)

        api = WebAPI.of(mw)
        pg.locator("#optionsModal [name=auth_save]").click()  # untick: mitmweb ticks it as the server says
        wait_until(lambda: api.option("auth_save") is False, "unticking auth_save")
        mode.select_option("off")
        row(pg, "auth_mode").get_by_text("Default:").wait_for()  # the file's value, under the override
        assert "strict" in row(pg, "auth_mode").get_by_text("Default:").inner_text()
        assert "In force: off, an option override, not saved" in row(pg, "auth_mode").inner_text()
        assert read_config(config).auth_mode == "strict" and send(mw.port, unique("editor-off"))[0] == 200
        override = shot(pg, "options-override.png", tmp_path)

        mode.select_option("strict")  # the way back: the file's value
        row(pg, "auth_mode").get_by_text("Default:").wait_for(state="detached")
        assert "auth_mode: strict (from config.yaml)" in api.command("auth.status").splitlines()
        assert send(mw.port, unique("editor-back"))[0] == 401
        back = shot(pg, "options-back-to-the-file.png", tmp_path)
    finally:
        mw.stop()
    assert all(p.stat().st_size > 0 for p in (first, saved, override, back))
