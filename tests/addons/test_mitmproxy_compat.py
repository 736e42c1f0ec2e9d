"""mitmproxy_compat (the package authgate/mitmproxy_compat/): the gate's only touches of mitmproxy internals."""

from mitmproxy.net.http import status_codes
from mitmproxy.proxy.layers.http import _http1

from authgate import mitmproxy_compat
from authgate.mitmproxy_compat import http1_guards  # its table of wrappers in place, read by one test


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


# The internals the gate touches, by name: a mitmproxy upgrade that moves one fails here at once
# (the gate itself then warns at load and goes without that wrapper).
WRAPPED = (("Http1Server", "send"), ("Http1Connection", "read_body"), ("Http1Server", "read_headers"),
           ("Http1Connection", "wait"), ("http1", "read_request_head"), ("Http1Client", "read_headers"))


def _owner(name):
    return _http1.http1 if name == "http1" else getattr(_http1, name)


def test_every_wrapper_finds_what_it_wraps_and_goes_away_again():
    mitmproxy_compat.uninstall()
    originals = {(owner, name): vars(_owner(owner))[name] for owner, name in WRAPPED}
    try:
        assert mitmproxy_compat.install()
        for owner, name in WRAPPED:
            assert vars(_owner(owner))[name] is not originals[owner, name], (owner, name)
    finally:
        mitmproxy_compat.uninstall()
    for owner, name in WRAPPED:
        assert vars(_owner(owner))[name] is originals[owner, name]


def test_a_wrapper_a_live_connection_still_holds_works_after_uninstall():
    """Issue #20: at shutdown (and when the script reloads) the wrappers come off while an idle
    keep-alive connection's state is still one of them; its next event used to be a KeyError
    ("mitmproxy has crashed!")."""
    from mitmproxy import options
    from mitmproxy.proxy import commands, context, events
    from mitmproxy.test import tflow

    mitmproxy_compat.uninstall()
    mitmproxy_compat.install()
    server = _http1.Http1Server(context.Context(tflow.tclient_conn(), options.Options()))
    server.state = server.read_headers  # (the wrapper, bound while it is in place)
    mitmproxy_compat.uninstall()
    assert server.state.__func__ is not vars(_http1.Http1Server)["read_headers"]  # mitmproxy's own is back
    out = list(server.handle_event(events.ConnectionClosed(server.conn)))
    assert any(isinstance(c, commands.CloseConnection) for c in out)


def test_a_missing_internal_is_a_warning_not_a_failure(monkeypatch, caplog):
    mitmproxy_compat.uninstall()
    monkeypatch.delattr(_http1.Http1Connection, "wait")
    try:
        assert mitmproxy_compat.install() is False
        assert "this mitmproxy has no Http1Connection.wait" in caplog.text
        assert ("Http1Server", "send") in http1_guards._installed  # the others are in place
    finally:
        mitmproxy_compat.uninstall()


def test_the_connection_helpers_do_nothing_without_a_connection():
    from mitmproxy.addons import proxyserver
    from mitmproxy.test import taddons, tflow
    with taddons.context(proxyserver.Proxyserver()):
        f = tflow.tflow()
        assert mitmproxy_compat.answer_now(f, f.response) is False and not f.error
        assert mitmproxy_compat.close_client(f.client_conn) is False
        mitmproxy_compat.close_leaked(f.client_conn)
