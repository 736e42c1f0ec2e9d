"""Mitmweb (authgate/addons/mitmweb.py): the comment column, and the UI kept on loopback where mitmweb
has no password. A live mitmweb is in tests/web/; these run without one."""

import logging
from collections.abc import Sequence

import pytest
from mitmproxy import exceptions
from mitmproxy.options import Options

from authgate.addons.mitmweb import check_web_host
from gate_harness import config, default_config, running_gate, upstream  # noqa: F401


def test_web_host_guard():
    for host in ("127.0.0.1", "::1", "localhost"):
        check_web_host(host, remote_ok=False, has_password=False)
    with pytest.raises(exceptions.OptionsError, match="web_host 0.0.0.0 is not a loopback address"):
        check_web_host("0.0.0.0", remote_ok=False, has_password=False)
    check_web_host("0.0.0.0", remote_ok=True, has_password=False)  # forced


def test_web_host_with_a_password_is_allowed_and_said(caplog):
    check_web_host("", remote_ok=False, has_password=True)
    assert "mitmweb on (all interfaces): whoever has its token or web_password" in caplog.text


def web_options() -> Options:
    """mitmproxy's options with the two of mitmweb's that the gate reads."""
    opts = Options()
    opts.add_option("web_host", str, "127.0.0.1", "")
    opts.add_option("web_columns", Sequence[str], ["icon", "path"], "")
    return opts


def test_comment_column_is_turned_on(config):
    with running_gate(master_options=web_options()) as g:
        g.configure(auth_config=str(config), web_columns=["icon", "path"])
        assert g.tctx.options.web_columns == ["icon", "path", "comment"]
        assert g.settings.auth_mode == "strict"


def test_remote_web_host_at_start_is_one_line_and_no_listener(config, caplog):
    with running_gate(master_options=web_options()) as g:
        g.configure(auth_config=str(config), web_host="0.0.0.0")
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and errors[0].startswith("web_host 0.0.0.0 is not a loopback address")
        assert g.tctx.options.server is False and g.settings is None
