"""A live mitmweb for the tests: `mitmweb -s addon/auth.py` started on a config file, the fixtures that
start one (`upstream`: the demo echo upstream; `web`: one mitmweb shared by a module's tests, which
put back any option they change), requests through its proxy, and its HTTP API as each mitmweb
version wants it (`WebAPI`). The browser that reads its page: web_browser.py.

Everything listens on 127.0.0.1 (ephemeral ports), every socket call and every wait is bounded, and
every process is terminated (killed if it hangs) when its fixture ends.
"""

from __future__ import annotations

import http.client
import http.cookies
import json
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from live import ADDON, Process, closed_port, config_text, write_config
from raw_http import IO_TIMEOUT
from upstreams import Upstream

KEY = "sk-web0123456789abcdef0123456789ab"  # the shared mitmweb's key
WRONG = "sk-webWRONGfedcba9876543210fedcba9"
START_TIMEOUT = 25.0  # seconds for mitmweb to print both "listening at" lines
EXIT_TIMEOUT = 20.0  # seconds for a refused start to exit
POLL_TIMEOUT = 10.0  # seconds, waiting for a flow to change
DENIED = "\u26d4"  # ":no_entry:" as mitmweb's API and page show it


# ====================================================================== mitmweb

def mitmweb(config: Path, *extra: str) -> Process:
    """`mitmweb -s addon/auth.py` on `config`, its UI on a free loopback port (web_port),
    mitmproxy's confdir beside the config (never the user's ~/.mitmproxy)."""
    web_port = closed_port()
    mw = Process("mitmweb", "-s", str(ADDON), "--set", f"confdir={config.parent / 'mitmproxy'}",
                 "--set", f"auth_config={config}", "--set", f"web_port={web_port}",
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


# ====================================================================== HTTP through it, its API

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
