"""settings.py: the snapshot's types, generated keys, fingerprints and how errors quote a value."""

import re

import pytest

from authgate.config.read import merge, parse_config
from authgate.config.settings import ConfigError, Overrides, generate_key
from authgate.rules.credentials import fingerprint


def test_generated_key_shape():
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    assert all(re.fullmatch(r"sk-[0-9a-f]{32}", k) for k in keys)


def test_fingerprint_never_shows_the_key():
    key = "sk-0123456789abcdef0123456789abcdef"
    fp = fingerprint(key)
    assert key not in fp and fp == "sk-…cdef (35 chars)"
    assert fingerprint("") == "(empty)" and fingerprint("short") == "…(5 chars)"
    assert fingerprint(b"Bearer sk-0123456789") == "Bea…6789 (20 chars)"


def test_a_key_in_the_wrong_field_is_not_echoed():
    key = "sk-0123456789abcdef0123456789abcdef"
    with pytest.raises(ConfigError) as e:
        parse_config(f"proxy:\n  auth_mode: {key}\n", "c.yaml")
    assert key not in str(e.value) and "sk-…cdef (35 chars)" in str(e.value)


def test_effective_mode_on_the_snapshot():
    cfg = parse_config("proxy:\n  auth_mode: auto\n  allow_lan_access: true\n  api_key: k\n", "c")
    assert merge(cfg, Overrides(), "c").effective_mode == "all_except_health"
    assert merge(cfg, Overrides(allow_lan_access=False), "c").effective_mode == "off"


def test_error_messages_cap_what_they_quote():
    huge = "proxy:\n  auth_mode: strict\n  port: [" + ", ".join(["123456"] * 50_000) + "]\n"
    with pytest.raises(ConfigError) as e:
        parse_config(huge, "c.yaml")
    assert str(e.value).startswith("c.yaml: proxy.port: [123456, 123456, 123456, 123456, ...] is not a port number")
    with pytest.raises(ConfigError) as e:
        parse_config("proxy:\n  auth_mode: strict\nupstream:\n  url: " + "x" * 100_000 + "\n", "c.yaml")
    assert len(str(e.value)) < 400
    assert len(str(ConfigError("c.yaml", "f", "p" * 10_000, "fix"))) < 400
