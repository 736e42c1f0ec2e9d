"""Shared test guards."""

import logging
from pathlib import Path

import pytest

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


@pytest.fixture(autouse=True, scope="session")
def repo_config_is_never_touched():
    """Tests use their own config files: the user's config.yaml must come out as it went in."""
    before = REPO_CONFIG.read_bytes()
    yield
    assert REPO_CONFIG.read_bytes() == before, "a test modified the repository's config.yaml"


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
