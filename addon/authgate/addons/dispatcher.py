"""The one addon mitmproxy sees: it hands every event to the gate's parts, in order.

mitmproxy visits every addon object it knows on every event (a request raises
eight: four hooks, each followed by `update`), whatever hooks the object has:
about 16.5k CPU instructions per object per request, and about 8k more per
handler it calls (mitmproxy rebuilds the event's arguments for each call).
Thirteen parts as thirteen addons cost about 215k + 8k per handler called;
behind one Dispatcher, 16.5k + 8k per event that a part handles
(docs/architecture.md has the figures).

What a part is stays the same: a class with mitmproxy's hook methods, tested
alone. The Dispatcher finds them by mitmproxy's event names, so a hook a part
gains is served without a change here:

* an event no part handles: the Dispatcher has no such attribute (mitmproxy's
  cheapest "no handler");
* one part handles it: that part's method itself is the Dispatcher's handler;
* several: one function calls them in order. A handler that returns an
  awaitable (an `async def`, or a coroutine returned by a plain method) is
  awaited before the next part's runs, in a task that mitmproxy awaits in turn
  (and that still runs where mitmproxy calls an event without awaiting, as it
  calls `running` on a script reload).
* A part's handler that is off (None, see GateAddon.follows) is left out: the
  Dispatcher is wired again after every settings snapshot, once the parts have
  followed it.
* Errors stay each part's own, as mitmproxy keeps them each addon's: an
  exception is logged ("Addon error") and the next part still runs, except
  OptionsError and AddonHalt, which end the event as they do in mitmproxy.

Commands (`@command.command`) of the parts are attributes of the Dispatcher,
where mitmproxy looks for them; options are the parts' own (added in their
`load`, which the Dispatcher forwards like any event).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Callable, Iterable

from mitmproxy import exceptions

from authgate import mitmproxy_compat
from authgate.addons.state import GateState

log = logging.getLogger("authgate")
# What mitmproxy lets through an addon's handler (the rest it logs): the same for a part's.
_ENDS_EVENT = (exceptions.OptionsError, exceptions.AddonHalt)


class Dispatcher:
    name = "authgate"

    def __init__(self, state: GateState, parts: Iterable) -> None:
        self.state = state
        self.parts = tuple(parts)
        self._events = mitmproxy_compat.event_names()
        self._wired: dict[str, tuple[Callable, ...]] = {}
        for command in commands(self.parts):
            setattr(self, "command_" + command.command_name.replace(".", "_"), command)
        self.rewire()
        state.on_change(self._follow)  # after the parts' own subscriptions: they have followed first

    def _follow(self, _settings) -> None:
        self.rewire()

    def rewire(self) -> None:
        """Point each event at the parts' handlers in force now."""
        for event in self._events:
            handlers = tuple(h for part in self.parts if callable(h := getattr(part, event, None)))
            if handlers == self._wired.get(event, ()):
                continue
            self._wired[event] = handlers
            if not handlers:
                self.__dict__.pop(event, None)
            elif len(handlers) == 1 and not inspect.iscoroutinefunction(handlers[0]):
                self.__dict__[event] = handlers[0]
            else:
                self.__dict__[event] = in_order(handlers)

    def handlers(self, event: str) -> tuple[Callable, ...]:
        """The parts' handlers an event reaches now, in order (for tests and the docs' figures)."""
        return self._wired.get(event, ())


def commands(parts) -> list[Callable]:
    """The parts' mitmproxy commands (methods decorated with @command.command)."""
    found = []
    for part in parts:
        for attr in dir(type(part)):
            if not attr.startswith("__") and isinstance(getattr(getattr(type(part), attr), "command_name", None), str):
                found.append(getattr(part, attr))
    return found


def in_order(handlers: tuple[Callable, ...]) -> Callable:
    """One handler that calls `handlers` in order, each awaitable awaited before the next handler runs."""

    def call(*args):
        for i, handler in enumerate(handlers):
            try:
                result = handler(*args)
            except _ENDS_EVENT:
                raise
            except Exception as e:  # noqa: BLE001 - as mitmproxy's safecall: logged, the others go on
                _failed(handler, e)
                continue
            if result is not None and inspect.isawaitable(result):
                rest = _rest(result, handlers[i + 1:], args)
                try:
                    return asyncio.get_running_loop().create_task(rest)
                except RuntimeError:  # no event loop (a test calling a hook by hand): the caller awaits it
                    return rest
        return None

    call.__name__ = call.__qualname__ = f"in_order({', '.join(_name(h) for h in handlers)})"
    return call


async def _rest(pending, handlers: tuple[Callable, ...], args: tuple) -> None:
    try:
        await pending
    except _ENDS_EVENT:
        raise
    except Exception as e:  # noqa: BLE001
        _failed(pending, e)
    for handler in handlers:
        try:
            result = handler(*args)
            if result is not None and inspect.isawaitable(result):
                await result
        except _ENDS_EVENT:
            raise
        except Exception as e:  # noqa: BLE001
            _failed(handler, e)


def _failed(handler, e: Exception) -> None:
    log.error(f"Addon error: {e} (in {_name(handler)})", exc_info=(type(e), e, e.__traceback__))


def _name(handler) -> str:
    owner = getattr(handler, "__self__", None)
    return f"{getattr(owner, 'name', type(owner).__name__)}.{handler.__name__}" if owner else getattr(
        handler, "__qualname__", repr(handler))
