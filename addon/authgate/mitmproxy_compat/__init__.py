"""Every touch of mitmproxy internals, and everything that differs by mitmproxy
version, in one place (11.0 to 12.3). The gate's addons call these, always as
``mitmproxy_compat.X`` through this module, and never reach into mitmproxy
themselves. If a release moves one of them, the gate warns (or falls back) and
the tests that exercise it fail at once.

* ``listener``: listener start-up (``hold_start``, ``start_listeners``) and a
  listener that failed (``watch_listen_errors``). On Python 3.12+ mitmproxy's
  eager task factory binds its default ``*:8080`` proxy before a ``-s`` script
  loads (11.0.2, 11.1.3 and 12.3.1 alike; not on 3.11): the gate cancels that
  start-up and brings its own listeners up in ``running``.
* ``http1_guards``: the wrappers on mitmproxy's HTTP/1 layer (``install``,
  ``uninstall``). The gate's answer instead of mitmproxy's HTML error page
  (``answer_instead``, ``forget``; ``ResponseProtocolError.code`` is an int up
  to 11.1, an ``ErrorCode`` enum from 12.0: ``error_page_status``), the
  guards on trailers, chunked bodies, request heads and what a client sends
  ahead (``configure_guards``, ``HEAD_LIMIT``, ``PIPELINED_LIMIT``, ``REFUSED``,
  ``CUT``), and the upstream's 1xx and 101 (``UPGRADE_REFUSED``).
* ``protocols``: what a connection speaks, at ``next_layer`` (``first_bytes``,
  ``refuse_connection``): no TLS, no HTTP/2 on the gate's listener.
* ``connections``: the live connections through the proxyserver addon's
  handlers: ``cut`` (an upstream connection), ``answer_now`` (at the request
  headers, before any body), ``close_client`` and ``close_leaked`` (a socket
  11.1+ on Python 3.12+ leaves open).
* ``web``: mitmweb (``web_app``, ``web_has_password``: the token or password of
  11.1.2+; ``stylesheet``: ``static/app.css`` up to 11.1,
  ``static/index-<hash>.css`` from 12.0).
* ``options``: options shown as in force (``explicit``, ``show_option``,
  ``follow_default``, ``announce``) through ``_Option`` (11.0 to 12.3 alike).
* ``bodies``: a compressed body cut short (``decode_prefix``, ``encode``):
  zstd is ``zstandard`` up to 11.x, ``compression.zstd`` from 12.0; mitmproxy's
  two log lines for each streamed flow dropped (``quiet_stream_lines``).
* ``events``: mitmproxy's event names (``event_names``, for the Dispatcher),
  and the gate's log records kept out of the deprecated ``add_log`` event
  (``keep_out_of_add_log``, ``let_into_add_log``: a filter on mitmproxy's
  ``LegacyLogEvents`` handler; the terminal and mitmweb's event log still show them).
* ``contentview``: ``add_contentview``, ``remove_contentview`` (11.x
  ``contentviews.View``, 12.x the ``Contentview`` protocol) and mitmweb's
  @focus (``focus``).
"""

from authgate.mitmproxy_compat.bodies import decode_prefix, encode, quiet_stream_lines
from authgate.mitmproxy_compat.connections import answer_now, close_client, close_leaked, cut
from authgate.mitmproxy_compat.contentview import add_contentview, focus, remove_contentview
from authgate.mitmproxy_compat.events import event_names, keep_out_of_add_log, let_into_add_log
from authgate.mitmproxy_compat.http1_guards import (
    CUT,
    HEAD_LIMIT,
    PIPELINED_LIMIT,
    REFUSED,
    UPGRADE_REFUSED,
    answer_instead,
    configure_guards,
    error_page_status,
    forget,
    install,
    uninstall,
)
from authgate.mitmproxy_compat.listener import hold_start, start_listeners, unwatch_listen_errors, watch_listen_errors
from authgate.mitmproxy_compat.options import announce, explicit, follow_default, show_option
from authgate.mitmproxy_compat.protocols import first_bytes, refuse_connection
from authgate.mitmproxy_compat.web import stylesheet, web_app, web_has_password

__all__ = [
    "CUT", "HEAD_LIMIT", "PIPELINED_LIMIT", "REFUSED", "UPGRADE_REFUSED", "add_contentview", "announce",
    "answer_instead", "answer_now", "close_client", "close_leaked", "configure_guards", "cut", "decode_prefix",
    "encode", "error_page_status", "event_names", "explicit", "first_bytes", "focus", "follow_default", "forget",
    "hold_start", "install", "keep_out_of_add_log", "let_into_add_log", "quiet_stream_lines", "refuse_connection",
    "remove_contentview", "show_option", "start_listeners", "stylesheet", "uninstall", "unwatch_listen_errors",
    "watch_listen_errors", "web_app", "web_has_password",
]
