"""What the end-to-end tests (test_e2e_*.py) share: their keys, `bearer()`, and the fixtures: an echo
upstream (addon/demo_upstream.py, one per module), `start` for a gate of a test's own, and two gates
shared by a module's tests that only read (`strict`, `aeh`: all_except_health), started on first use.
Each module that uses a shared gate ends with a test that it never logged the key.
"""

from __future__ import annotations

import time

import pytest

from live import Gate, Gates, config_text
from live_fixtures import confdir  # noqa: F401 (used by the fixtures below; the tests import it from here)
from upstreams import Upstream

KEY = "sk-e2e0123456789abcdef0123456789ab"  # never expected in mitmdump's output
OTHER_KEY = "sk-e2eOTHERfedcba9876543210fedcba9"
EMPTY_KEY_LOG = "Proxy auth is enabled but api_key is empty; denying request"


def bearer(key: str = KEY) -> tuple[str, str]:
    return ("Authorization", f"Bearer {key}")


NON_ASCII = b"Bearer \xe2\x80\x9c" + KEY.encode() + b"\xe2\x80\x9d"  # smart quotes around the key


@pytest.fixture(scope="module")
def echo():
    with Upstream() as e:
        yield e


@pytest.fixture(scope="module")
def start_shared(tmp_path_factory, confdir):
    """Start module-lifetime proxies (for tests that only read)."""
    with Gates(tmp_path_factory.mktemp("shared"), confdir) as start:
        yield start


@pytest.fixture
def start(tmp_path, confdir):
    """Start a proxy for one test; it is stopped (terminate, then kill) afterwards."""
    with Gates(tmp_path, confdir) as start:
        yield start


@pytest.fixture(scope="module")
def strict(start_shared, echo) -> Gate:
    return start_shared(config_text("strict", KEY, echo.url))


@pytest.fixture(scope="module")
def aeh(start_shared, echo) -> Gate:
    return start_shared(config_text("all_except_health", KEY, echo.url))


def assert_never_logged_the_key(*gates: Gate) -> None:
    """Shared gates, after every test of the module that used them: still serving, no key logged."""
    time.sleep(0.3)
    for m in gates:
        assert m.proc.poll() is None  # still serving after everything thrown at it
        assert KEY not in m.output and OTHER_KEY not in m.output
