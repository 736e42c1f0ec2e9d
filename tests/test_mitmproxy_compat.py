"""mitmproxy_compat (authgate/mitmproxy_compat.py): the gate's only touches of mitmproxy internals."""

from mitmproxy.net.http import status_codes
from mitmproxy.proxy.layers.http import _http1

from authgate import mitmproxy_compat


def test_error_answer_wrapper_installs_once_and_uninstalls():
    mitmproxy_compat.uninstall()
    original = _http1.Http1Server.send
    try:
        assert mitmproxy_compat.install() and mitmproxy_compat.install()
        wrapped = _http1.Http1Server.send
        assert wrapped is not original
        mitmproxy_compat.install()
        assert _http1.Http1Server.send is wrapped  # not wrapped twice (a script reload calls load again)
    finally:
        mitmproxy_compat.uninstall()
    assert _http1.Http1Server.send is original


def test_error_page_status_reads_both_kinds_of_code():
    class ErrorCode:  # mitmproxy 12: an enum that knows its status
        def http_status_code(self):
            return 504

    assert mitmproxy_compat.error_page_status(ErrorCode()) == 504
    assert mitmproxy_compat.error_page_status(502) == 502  # up to 11.1: the status itself
    assert mitmproxy_compat.error_page_status(status_codes.NO_RESPONSE) is None
