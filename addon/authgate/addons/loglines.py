"""The gate's log lines reach the terminal and mitmweb's event log, and nothing else.

mitmproxy still turns every log record into the deprecated `add_log` event, sent to
every addon one loop turn later (about 720k CPU instructions per line, though no
addon of mitmproxy's handles it); the gate logs every denial, so that was most of
a denial's cost. Its records are kept out of that event (mitmproxy_compat); the
terminal (mitmdump) and the event log (mitmweb) have handlers of their own and
show every line as before.
"""

from __future__ import annotations

from authgate import mitmproxy_compat
from authgate.addons.state import GateAddon


class LogLines(GateAddon):
    name = "authgate.loglines"
    _keep_out = None

    def load(self, loader) -> None:
        mitmproxy_compat.let_into_add_log(self._keep_out)  # a script reload loads again
        self._keep_out = mitmproxy_compat.keep_out_of_add_log("authgate")

    def done(self) -> None:
        mitmproxy_compat.let_into_add_log(self._keep_out)
        self._keep_out = None
