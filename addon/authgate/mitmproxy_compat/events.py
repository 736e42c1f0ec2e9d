"""mitmproxy's event names (``event_names``) and the deprecated ``add_log`` event
(``keep_out_of_add_log``, ``let_into_add_log``).

* Events: every ``mitmproxy.hooks.Hook`` subclass registers its name in
  ``hooks.all_hooks`` when its module is imported (11.0 to 12.3 alike); the
  modules that define them are imported here, so the list is whole whoever
  imports this first (mitmdump, or a test's taddons).
* ``add_log``: mitmproxy's master installs a ``LegacyLogEvents`` handler on the
  root logger that turns every log record into an ``add_log`` event, sent to
  every addon (about 36) one loop turn later, though none of mitmproxy's own
  handles it: about 720k CPU instructions per line. A filter on that handler
  keeps the gate's records out of it; the terminal (``termlog``) and mitmweb's
  event log (``eventstore``) have handlers of their own and still get every one.
"""

from __future__ import annotations

import logging

import mitmproxy.addonmanager  # noqa: F401 - defines load
import mitmproxy.log  # noqa: F401 - defines add_log
import mitmproxy.proxy.layers  # noqa: F401 - the protocol layers' events (http, tcp, tls, ...)
import mitmproxy.proxy.server_hooks  # noqa: F401 - client_connected, server_connect, ...
from mitmproxy import hooks

_LEGACY = "LegacyLogEvents"  # mitmproxy.log's handler behind add_log (9.0 to 12.3)


def event_names() -> frozenset[str]:
    """The names of every event mitmproxy sends to addons (requestheaders, load, next_layer, ...)."""
    return frozenset(hooks.all_hooks)


class _NotFrom(logging.Filter):
    """Lets through every record but those of one logger and its children."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.prefix = name + "."
        self.logger = name

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return name != self.logger and not name.startswith(self.prefix)


def _legacy_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if type(h).__name__ == _LEGACY]


def keep_out_of_add_log(logger: str) -> logging.Filter | None:
    """Keep `logger`'s records (and its children's) out of the add_log event; the
    other log handlers still get them. The filter, for let_into_add_log; None when
    this mitmproxy has no such handler (nothing to do)."""
    handlers = _legacy_handlers()
    if not handlers:
        return None
    keep_out = _NotFrom(logger)
    for handler in handlers:
        handler.addFilter(keep_out)
    return keep_out


def let_into_add_log(keep_out: logging.Filter | None) -> None:
    if keep_out is None:
        return
    for handler in _legacy_handlers():
        handler.removeFilter(keep_out)
