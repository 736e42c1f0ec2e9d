"""The Dispatcher (authgate/addons/dispatcher.py): mitmproxy sees one addon; each event reaches the
parts that handle it, in order; awaitables are awaited in order; a part that is off is not called;
errors stay a part's own; commands and options are the parts'. And LogLines: the gate's log lines
skip mitmproxy's deprecated add_log event, every other handler still gets them."""

import asyncio
import logging

import pytest
from mitmproxy import command, exceptions
from mitmproxy.test import taddons

import auth
from authgate.addons.dispatcher import Dispatcher, in_order
from authgate.addons.state import GateAddon, GateState
from gate_harness import KEY, config, default_config, gate, send, upstream  # noqa: F401


class Part(GateAddon):
    def __init__(self, state, name, calls):
        super().__init__(state)
        self.name, self.calls = name, calls

    def request(self, flow):
        self.calls.append((self.name, "request"))


class Late(Part):
    async def _slow(self):
        await asyncio.sleep(0.01)
        self.calls.append((self.name, "request done"))

    def request(self, flow):
        self.calls.append((self.name, "request"))
        return self._slow()


class Next(Part):  # a hook the Dispatcher has never heard of by name: found all the same
    def next_layer(self, data):
        self.calls.append((self.name, "next_layer"))


class Off(Part):
    follows = ("request",)

    def needed(self, s):
        return False


def test_mitmproxy_sees_one_addon_and_each_part_is_there_once():
    [dispatcher] = auth.make_addons()
    names = [p.name for p in dispatcher.parts]
    assert len(names) == len(set(names)) >= 13
    # every hook of every part is reached, in the composition's order
    assert [h.__self__.name for h in dispatcher.handlers("requestheaders")] == [
        "authgate.connections", "authgate.gatekeeper", "authgate.forward"]  # Forward: the body streams
    assert dispatcher.handlers("load")[0].__self__.name == "authgate.loglines"


def test_one_handler_is_the_parts_own_method_several_are_called_in_order():
    calls = []
    state = GateState()
    a, b = Part(state, "a", calls), Next(state, "b", calls)
    d = Dispatcher(state, [a, b])
    assert d.next_layer == b.next_layer  # no wrapper in between
    assert "response" not in vars(d) and getattr(d, "response", None) is None  # mitmproxy's cheapest "no handler"
    assert d.request(object()) is None
    assert calls == [("a", "request"), ("b", "request")]


async def test_an_awaitable_is_awaited_before_the_next_part_runs():
    calls = []
    state = GateState()
    d = Dispatcher(state, [Late(state, "a", calls), Part(state, "b", calls)])
    pending = d.request(object())
    assert calls == [("a", "request")]  # b waits for a's awaitable
    await pending
    assert calls == [("a", "request"), ("a", "request done"), ("b", "request")]


def test_a_part_that_is_off_is_not_called_and_back_on_it_is():
    calls = []
    state = GateState()
    off = Off(state, "off", calls)
    d = Dispatcher(state, [Part(state, "a", calls), off])
    off._follow(None)  # a snapshot under which it is not needed...
    d.rewire()
    assert d.handlers("request") == (d.parts[0].request,)
    Off.needed = lambda self, s: True
    try:
        off._follow(None)
        d.rewire()
        assert len(d.handlers("request")) == 2
    finally:
        del Off.needed


def test_an_error_stays_its_parts_own_but_options_errors_end_the_event(caplog):
    calls = []

    def broken(flow):
        raise ValueError("boom")

    def refusing(flow):
        raise exceptions.OptionsError("no")

    ok = lambda flow: calls.append("ok")  # noqa: E731
    in_order((broken, ok))(None)
    assert calls == ["ok"] and "Addon error: boom" in caplog.text
    with pytest.raises(exceptions.OptionsError):
        in_order((refusing, ok))(None)
    assert calls == ["ok"]


def test_commands_and_options_of_the_parts_reach_mitmproxy():
    class WithCommand(GateAddon):
        name = "withcommand"

        def load(self, loader):
            loader.add_option("dispatcher_test_option", int, 7, "a part's option")

        @command.command("dispatcher.test")
        def test_command(self) -> str:
            return "done"

    state = GateState()
    with taddons.context(Dispatcher(state, [WithCommand(state)])) as tctx:
        assert tctx.master.commands.call("dispatcher.test") == "done"
        assert tctx.options.dispatcher_test_option == 7


def test_the_gates_log_lines_skip_add_log_and_reach_the_other_handlers(gate):
    seen = []

    class Handler(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    root = logging.getLogger()
    keep_out = gate.loglines._keep_out
    # mitmproxy's handler behind add_log carries the gate's filter (its own per-test filter aside)
    legacy = [h for h in root.handlers if type(h).__name__ == "LegacyLogEvents" and keep_out in h.filters]
    assert legacy, "mitmproxy's master installs its add_log handler, and the gate filters it"
    ours = logging.LogRecord("authgate", logging.INFO, __file__, 1, "a denial's line", None, None)
    theirs = logging.LogRecord("mitmproxy.proxy", logging.INFO, __file__, 1, "theirs", None, None)
    assert not keep_out.filter(ours)  # no add_log event for the gate's lines
    assert keep_out.filter(theirs)  # mitmproxy's own records as before
    other = Handler()
    root.addHandler(other)
    try:
        logging.getLogger("authgate").warning("a denial's line")
        assert "a denial's line" in seen  # the terminal and the event log have handlers of their own
    finally:
        root.removeHandler(other)
    gate.loglines.done()
    assert not [h for h in root.handlers if keep_out in h.filters]  # gone with the gate
