"""config_read.py: config.yaml read (a small regular file, plain YAML) and merged with the options."""

import re

import pytest

from authgate.config.read import merge, parse_config, read_config
from authgate.config.settings import ConfigError, Overrides
from config_texts import GOOD, V4


def test_parses_the_fields():
    cfg = parse_config(GOOD, "config.yaml")
    assert (cfg.port, cfg.allow_lan_access, cfg.auth_mode, cfg.api_key) == (8045, False, "strict", "sk-abc")
    up = cfg.upstream
    assert (up.scheme, up.host, up.port, up.prefix, up.url) == (
        "http", "127.0.0.1", 9000, "/base", "http://127.0.0.1:9000/base")


def test_defaults_and_missing_key():
    cfg = parse_config("proxy:\n  auth_mode: auto\n", "c.yaml")
    assert (cfg.port, cfg.allow_lan_access, cfg.api_key) == (8045, False, None)
    assert cfg.upstream.url == "http://127.0.0.1:8046"


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_an_empty_file_is_refused_not_defaulted(text):
    # a truncated config.yaml must not become the defaults (auto → off: auth off)
    with pytest.raises(ConfigError, match="c.yaml: \\(file\\): is empty"):
        parse_config(text, "c.yaml")


def test_auth_mode_is_never_defaulted():
    with pytest.raises(ConfigError) as e:
        parse_config("proxy:\n  port: 8045\n  api_key: sk-x\n", "c.yaml")
    assert e.value.field == "proxy.auth_mode" and "is missing" in str(e.value)


def test_yaml_syntax_error_gives_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"line \d+"):
        parse_config("proxy:\n  port: [1\n", "c.yaml")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist.*auth_config"):
        read_config(tmp_path / "nope.yaml")


def test_options_override_the_file_and_are_validated():
    cfg = parse_config(GOOD, "c.yaml")
    s = merge(cfg, Overrides(auth_mode="off", api_key="sk-opt", allow_lan_access=True, port=9999,
                             upstream="https://example.test"), "c.yaml")
    assert (s.auth_mode, s.api_key, s.allow_lan_access, s.port) == ("off", "sk-opt", True, 9999)
    assert s.upstream.url == "https://example.test:443"
    assert s.overridden == ("auth_mode", "api_key", "allow_lan_access", "port", "upstream")
    assert s.listen_host == "0.0.0.0"
    plain = merge(cfg, Overrides(), "c.yaml")
    assert (plain.auth_mode, plain.api_key, plain.overridden, plain.listen_host) == (
        "strict", "sk-abc", (), "127.0.0.1")
    with pytest.raises(ConfigError, match="^option: auth_mode: 'nope'"):
        merge(cfg, Overrides(auth_mode="nope"), "c.yaml")
    with pytest.raises(ConfigError, match="^option: auth_upstream"):
        merge(cfg, Overrides(upstream="nowhere"), "c.yaml")


def test_upstream_timeout_defaults_and_parses():
    assert parse_config("proxy:\n  auth_mode: auto\n", "c.yaml").upstream.timeout == 300.0
    cfg = parse_config(GOOD + "  timeout: 2.5\n", "c.yaml")
    assert cfg.upstream.timeout == 2.5
    # a URL given as an option keeps the file's timeout; the timeout option wins over both
    s = merge(cfg, Overrides(upstream="http://127.0.0.1:9100"), "c.yaml")
    assert (s.upstream.port, s.upstream.timeout) == (9100, 2.5)
    s = merge(cfg, Overrides(upstream="http://127.0.0.1:9100", upstream_timeout=7), "c.yaml")
    assert (s.upstream.port, s.upstream.timeout, s.overridden) == (9100, 7.0, ("upstream", "upstream_timeout"))
    with pytest.raises(ConfigError, match="^option: auth_upstream_timeout: 0 is not a timeout"):
        merge(cfg, Overrides(upstream_timeout=0), "c.yaml")


def test_v4_fields_parse_and_merge():
    cfg = parse_config(V4 + '  admin_password: "open sesame"\n  version: "4.5.7"\n', "c.yaml")
    assert (cfg.admin_password, cfg.version) == ("open sesame", "4.5.7")
    s = merge(cfg, Overrides(), "c.yaml")
    assert (s.admin_password, s.version, s.tokens, s.headless) == ("open sesame", "4.5.7", (), False)
    s = merge(cfg, Overrides(admin_password="", version="4.0.0"), "c.yaml")
    assert (s.admin_password, s.version, s.overridden) == ("", "4.0.0", ("admin_password", "version"))
    plain = merge(parse_config(V4, "c.yaml"), Overrides(), "c.yaml")
    assert (plain.admin_password, plain.version) == (None, "4.5.8")  # the health answer's default


# ---- a file that could hang or exhaust the gate (issue #11)

def test_only_a_small_regular_file_is_read(tmp_path):
    import os
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.yaml"
    zero.symlink_to("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_text("proxy:\n  auth_mode: off\n" + "#" * (300 * 1024))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"proxy:\n  auth_mode: strict\n  api_key: caf\xe9\n")
    for path, words in ((fifo, "is a FIFO (named pipe)"), (zero, "is a character device"), (tmp_path, "is a directory"),
                        (big, "is larger than 256 KiB"), (latin, "is not UTF-8 text")):
        with pytest.raises(ConfigError, match=re.escape(words)):  # at once: none of these blocks
            read_config(path)
    link = tmp_path / "link.yaml"  # a symlink to a regular file is fine
    (tmp_path / "real.yaml").write_text(GOOD)
    link.symlink_to(tmp_path / "real.yaml")
    assert read_config(link).api_key == "sk-abc"


def test_anchors_and_aliases_are_refused():
    bomb = "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nproxy:\n  auth_mode: strict\n  api_key: *b\n"
    with pytest.raises(ConfigError) as e:
        parse_config(bomb, "c.yaml")
    assert str(e.value) == ("c.yaml: (YAML): an anchor (&) or alias (*) at line 1, column 4: config.yaml takes "
                            "plain values only. Fix: write each value out in full")
    with pytest.raises(ConfigError, match="anchor"):
        parse_config("proxy: &p\n  auth_mode: strict\n", "c.yaml")


@pytest.mark.parametrize("text, words", [
    ("proxy:\n  auth_mode: strict\n  port: " + "9" * 5000 + "\n", "cannot be read (ValueError"),
    ("proxy:\n  auth_mode: " + "[" * 3000 + "\n", "cannot be read (RecursionError"),
])
def test_pathological_yaml_is_a_config_error(text, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        parse_config(text, "c.yaml")
