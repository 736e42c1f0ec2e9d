"""Antigravity Tools' local-proxy auth layer, as a mitmproxy addon.

    mitmdump -s addon/auth.py                      # reads config.yaml (made on first start), serves 127.0.0.1:8045
    mitmdump -s addon/auth.py --set auth_config=other.yaml
    mitmdump -s addon/auth.py --set auth_config=antigravity   # the app's own gui_config.json (v4)

This file only composes the gate from its parts (authgate/addons/), one concern
each, written and tested as mitmproxy addons are; they share the settings
snapshot through one GateState. mitmproxy sees one addon, the Dispatcher, which
hands each event to the parts in the order below: every addon object mitmproxy
knows costs it about 16.5k CPU instructions per request, hooks or not, so
thirteen objects cost 2-3% of bare mitmdump (docs/architecture.md, "The
composition"). The pure core the parts call (the decision, the settings, the
explanations) is authgate/; mitmproxy's internals, authgate/mitmproxy_compat/.
"""

from __future__ import annotations

from pathlib import Path

from authgate.addons.bind import Bind
from authgate.addons.commands import Commands
from authgate.addons.config_file import ConfigFile
from authgate.addons.connections import Connections
from authgate.addons.dispatcher import Dispatcher
from authgate.addons.editor import OptionsEditor
from authgate.addons.flowview import FlowView
from authgate.addons.forward import Forward
from authgate.addons.gatekeeper import Gatekeeper
from authgate.addons.limits import Limits
from authgate.addons.loglines import LogLines
from authgate.addons.mitmweb import Mitmweb
from authgate.addons.monitor import Monitor
from authgate.addons.replies import Replies
from authgate.addons.shadow import Shadow
from authgate.addons.state import GateState
from authgate.config.paths import TEMPLATE, USER_CONFIG

# auth_config's default: config.yaml in the folder above this script's (the repository's root),
# made from TEMPLATE on first start.
DEFAULT_CONFIG = str(Path(__file__).resolve().parent.parent / USER_CONFIG.name)


def make_parts(config: str | None = None) -> list:
    """The gate's parts, in the order each event reaches them.

    LogLines first: from load on, the gate's log lines skip mitmproxy's
    deprecated add_log event. Mitmweb next: at start its web_host guard
    refuses before any config is read. Limits and Connections before
    ConfigFile: an addon that adds options makes mitmproxy configure the
    addons before it, and config.yaml must be read once every option is
    known. OptionsEditor before ConfigFile (a change made while running is
    saved to the file, or left as an override, before the snapshot follows
    it). Gatekeeper before Forward (decide, then forward what passed);
    Forward before Shadow (a timed-out error says so before it is judged);
    Shadow before Replies (the x-auth-gate header and the 502/504 carry the
    verdict); Monitor after Replies (a token's IP is recorded once the answer
    is final, as the original's monitor does). Commands and FlowView have no
    per-request hooks."""
    state = GateState()
    return [LogLines(state), Mitmweb(state), Limits(state), Connections(state), OptionsEditor(state),
            ConfigFile(state, config or DEFAULT_CONFIG, str(TEMPLATE)), Bind(state), Gatekeeper(state),
            Forward(state), Shadow(state), Replies(state), Monitor(state), Commands(state), FlowView(state)]


def make_addons(config: str | None = None) -> list:
    """What mitmproxy sees: one Dispatcher in front of the parts."""
    parts = make_parts(config)
    return [Dispatcher(parts[0].state, parts)]


addons = make_addons()

# The events of every request and connection (add_log: mitmproxy still sends
# every log record to that deprecated event). See _answer_lookups_cheaply.
HOT_EVENTS = ("requestheaders", "request", "responseheaders", "response", "error", "update", "add_log",
              "client_connected", "client_disconnected", "server_connect", "server_connected",
              "server_disconnected", "next_layer")


def load(loader) -> None:
    _answer_lookups_cheaply()


def _answer_lookups_cheaply() -> None:
    """mitmproxy treats this module as an addon too and looks up every event's
    handler on it, for every event of every flow. A name a module lacks costs an
    AttributeError with a formatted message on Python 3.11 (about 0.8-1.7 µs, a
    dozen times per request); None is the cheap "no handler here". Done at load,
    after mitmproxy's registration check, which warns about any module with
    add_log. (The addon classes need none of this: a name an instance lacks is
    looked up without building an exception.)"""
    for name in HOT_EVENTS:
        globals().setdefault(name, None)
