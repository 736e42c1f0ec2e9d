"""The gate's addons in mitmproxy's own test context (taddons, tflow), chained
as mitmdump chains them. Each tests/addons/test_<addon>.py imports what it needs:

    from gate_harness import KEY, config, default_config, gate, send, upstream, write
"""

import contextlib

import pytest
from mitmproxy import flow
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons, tflow, tutils

import auth
from live import closed_port, config_text, write_config

KEY = "sk-0123456789abcdef0123456789abcdef"


class Gate:
    """The composed gate: each part by its concern (gate.forward, gate.commands,
    ...), the shared state, and the hooks called on what mitmproxy sees (the
    Dispatcher in front of the parts), as mitmproxy calls them."""

    def __init__(self, tctx: taddons.context, addons: list) -> None:
        self.tctx = tctx
        self.addons = addons
        self.dispatcher = addons[0]
        self.state = self.dispatcher.state
        for part in self.dispatcher.parts:
            setattr(self, part.name.partition(".")[2], part)

    @property
    def settings(self):
        return self.state.settings

    def configure(self, **options) -> None:
        self.tctx.configure(self.addons[0], **options)

    def hook(self, name: str, *args) -> None:
        for addon in self.addons:
            if handler := getattr(addon, name, None):
                handler(*args)

    def request(self, f) -> None:
        """A request as mitmproxy passes it: its headers, then (body read) the request.
        A changed config.yaml is read first, as the gate reads it (in a thread) before
        it decides."""
        if self.state.files.stale():
            self.state.files.reload_if_changed()
        self.hook("requestheaders", f)
        self.hook("request", f)

    def responseheaders(self, f) -> None:
        self.hook("responseheaders", f)

    def response(self, f) -> None:
        self.hook("response", f)

    def error(self, f) -> None:
        self.hook("error", f)


@contextlib.contextmanager
def running_gate(config=None, master_options=None, **options):
    """A gate in its own taddons context (on `master_options`, mitmproxy's
    Options, if given); `options` are set before config.yaml is read."""
    addons = auth.make_addons()
    with taddons.context(proxyserver.Proxyserver(), *addons, options=master_options) as tctx:
        if options:
            tctx.options.update(**options)
        if config is not None:
            tctx.configure(addons[0], auth_config=str(config))
        yield Gate(tctx, addons)


@pytest.fixture
def upstream():
    """A port for upstream.url: nothing in these tests connects to it."""
    return closed_port()


def write(path, mode="strict", key=KEY, lan=False, port=8045, upstream_port=8046, prefix=""):
    write_config(path, config_text(mode, key, f"http://127.0.0.1:{upstream_port}{prefix}", lan, port))
    return path


@pytest.fixture(autouse=True)
def default_config(tmp_path_factory, monkeypatch):
    """taddons configures the addons before a test can set auth_config: make the
    default a throwaway file, never the repository's config.yaml."""
    path = tmp_path_factory.mktemp("default") / "config.yaml"
    write(path, upstream_port=closed_port())
    monkeypatch.setattr(auth, "DEFAULT_CONFIG", str(path))


@pytest.fixture
def config(tmp_path, upstream):
    return write(tmp_path / "config.yaml", upstream_port=upstream)


@pytest.fixture
def gate(config):
    with running_gate(config) as g:
        yield g


def req_flow(path="/v1/models", method="GET", headers=()):
    f = tflow.tflow(req=tutils.treq(method=method.encode(), path=path.encode(), authority=b"",
                                    host="127.0.0.1", port=8046, headers=()))
    headers = [("Host", "127.0.0.1:8045"), *headers]  # as every HTTP/1.1 client sends
    f.request.headers.fields = tuple((n.encode(), v if isinstance(v, bytes) else v.encode()) for n, v in headers)
    return f


async def send(gate, *args, **kw):
    f = req_flow(*args, **kw)
    gate.request(f)
    return f


def upstream_fails(gate, f, message, connected=True, timed_out=False):
    """What mitmproxy does when the upstream fails before answering: set flow.error, call error."""
    if connected:
        f.server_conn.timestamp_tcp_setup = 1.0
    else:
        f.server_conn.timestamp_tcp_setup = None
    if timed_out:
        f.metadata["auth"]["timed_out"] = True
    f.error = flow.Error(message)
    gate.error(f)
    return f
