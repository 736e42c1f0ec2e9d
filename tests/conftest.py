"""Shared test guards."""

from pathlib import Path

import pytest

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


@pytest.fixture(autouse=True, scope="session")
def repo_config_is_never_touched():
    """Tests use their own config files: the user's config.yaml must come out as it went in."""
    before = REPO_CONFIG.read_bytes()
    yield
    assert REPO_CONFIG.read_bytes() == before, "a test modified the repository's config.yaml"
