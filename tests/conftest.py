"""Shared test guards."""

import logging

import pytest

from authgate.config.paths import USER_CONFIG


def _snapshot():
    return USER_CONFIG.read_bytes() if USER_CONFIG.exists() else None


@pytest.fixture(autouse=True, scope="session")
def user_config_is_never_touched():
    """Tests use their own config files: the user's config.yaml (made by the first `just run`) must
    come out as it went in, and a clone without one must still have none."""
    before = _snapshot()
    yield
    assert _snapshot() == before, "a test created, modified or removed the user's config.yaml"


@pytest.fixture(autouse=True)
def no_stray_log_handlers():
    """mitmproxy's Master installs log handlers on the root logger. mitmproxy 12's
    taddons.context closes its own event loop but leaves them installed, so a log
    line in a later test would raise "Event loop is closed": each test takes out
    the handlers it left behind."""
    root = logging.getLogger()
    before = list(root.handlers)
    yield
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
