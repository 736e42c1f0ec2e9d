"""Where the gate listens, on every supported mitmproxy and Python.

mitmproxy loads a ``-s`` script one event-loop turn after it starts bringing up
its listeners. On Python 3.11 its start-up task has not run yet by then, so the
gate's ``mode`` option wins. On Python 3.12+ mitmproxy runs with asyncio's eager
task factory: the start-up task has already read ``options.mode`` (the default
forward proxy on ``*:8080``) and is binding it when the gate loads, and the
proxyserver addon drops mode changes made before it is running
(``addons/proxyserver.py``, ``configure``: ``if self.is_running``).

So when the gate owns the listener (no ``--mode`` given), it takes start-up
over: it cancels mitmproxy's pending ``Proxyserver.setup_servers`` task before
that task has bound anything (binding waits on a resolver thread, which the
loop serves only after the script's load has returned), and brings the
listeners up itself in ``running``, from the options it set. A start-up config
error cancels the task the same way and opens nothing. Nothing here runs once
mitmproxy is up: later changes go through the ``mode`` option as usual.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx

log = logging.getLogger("authgate")

_SETUP = "Proxyserver.setup_servers"


def _proxyserver():
    return ctx.master.addons.get("proxyserver")


def starting() -> bool:
    """True while mitmproxy is still bringing up its listeners (before `running`)."""
    ps = _proxyserver()
    return ps is not None and not ps.is_running


def hold_start() -> bool:
    """Cancel mitmproxy's own listener start-up if it is still pending.
    True when the gate must bring the listeners up itself (see `start`)."""
    if not starting():
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


async def start() -> bool:
    """From the gate's `running` hook: bring up the listeners of ``options.mode``.
    False when one failed to bind (mitmproxy has logged why; as a start-up error
    it makes mitmdump exit 1, as it would have without the gate)."""
    ps = _proxyserver()
    servers = ps.servers
    # The cancelled start-up may have registered a server it never started;
    # drop it, or the next update would try to stop it.
    instances = getattr(servers, "_instances", None)
    if isinstance(instances, dict):
        for mode, instance in list(instances.items()):
            if not instance.is_running:
                del instances[mode]
    return await ps.setup_servers()
