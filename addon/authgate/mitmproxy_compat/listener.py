"""Listener start-up (``hold_start``, ``start_listeners``) and the errors of a
listener that failed (``watch_listen_errors``).

mitmproxy loads a ``-s`` script one event-loop turn after it starts bringing up
its listeners. On Python 3.11 its start-up task has not run yet by then, so the
gate's ``mode`` option wins. On Python 3.12+ mitmproxy runs with asyncio's
eager task factory: the start-up task has already read ``options.mode`` (the
default forward proxy on ``*:8080``) and is binding it when the gate loads, and
the proxyserver addon drops mode changes made before it is running
(``addons/proxyserver.py``, ``configure``: ``if self.is_running``). So the gate
cancels mitmproxy's pending ``Proxyserver.setup_servers`` task before it has
bound anything (binding waits on a resolver thread, which the loop serves only
after the script's load has returned), and brings the listeners up itself in
``running``. Later changes go through the ``mode`` option as usual.

A listener that failed (a busy port): the proxyserver addon's logger says so.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx

_SETUP = "Proxyserver.setup_servers"


def proxyserver():
    """mitmproxy's proxyserver addon (its listeners and its connection handlers); None without one."""
    return ctx.master.addons.get("proxyserver")


def hold_start() -> bool:
    """Cancel mitmproxy's own listener start-up if it is still pending.
    True when the gate must bring the listeners up itself (`start_listeners`)."""
    ps = proxyserver()
    if ps is None or ps.is_running:
        return False
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:  # no running loop (taddons tests): nothing to take over
        return False
    held = False
    for task in tasks:
        if not task.done() and getattr(task.get_coro(), "__qualname__", "") == _SETUP:
            task.cancel()
            held = True
    return held


async def start_listeners() -> bool:
    """From `running`: bring up the listeners of ``options.mode``. False when one
    failed to bind (mitmproxy has logged why; as a start-up error it makes
    mitmdump exit 1, as it would have without the gate)."""
    ps = proxyserver()
    # The cancelled start-up may have registered a server it never started;
    # drop it, or the next update would try to stop it.
    instances = getattr(ps.servers, "_instances", None)
    if isinstance(instances, dict):
        for mode, instance in list(instances.items()):
            if not instance.is_running:
                del instances[mode]
    return await ps.setup_servers()


class _ListenErrors(logging.Handler):
    def __init__(self, callback) -> None:
        super().__init__(logging.ERROR)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        self.callback(record.getMessage())


def watch_listen_errors(callback) -> logging.Handler:
    """callback(message) for each error mitmproxy logs about its listeners (a busy port)."""
    handler = _ListenErrors(callback)
    logging.getLogger("mitmproxy.addons.proxyserver").addHandler(handler)
    return handler


def unwatch_listen_errors(handler: logging.Handler) -> None:
    logging.getLogger("mitmproxy.addons.proxyserver").removeHandler(handler)
