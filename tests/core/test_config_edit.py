"""config_edit.py: a setting saved into config.yaml the way the original's GUI saves, comments kept;
the key written back."""

import difflib
import os

import pytest

from authgate.config.edit import save, set_field, write_key, yaml_scalar
from authgate.config.paths import TEMPLATE
from authgate.config.read import parse_config, read_config
from authgate.config.settings import ConfigError
from config_texts import GOOD

SHIPPED = str(TEMPLATE)


def shipped() -> str:
    with open(SHIPPED, encoding="utf-8") as f:
        return f.read()


@pytest.mark.parametrize("key, value", [
    ("proxy.auth_mode", "strict"), ("proxy.auth_mode", "all_except_health"), ("proxy.auth_mode", "off"),
    ("proxy.allow_lan_access", True), ("proxy.port", 8044), ("upstream.url", "http://127.0.0.1:9000/base"),
    ("upstream.timeout", 2), ("proxy.api_key", "sk-0123456789abcdef0123456789abcdef"), ("proxy.profile", "v4"),
])
def test_one_field_changes_and_every_comment_stays(key, value):
    text = shipped()
    new = set_field(text, key, value)
    comments = [line.partition("#")[2] for line in text.splitlines() if "#" in line]
    assert [line.partition("#")[2] for line in new.splitlines() if "#" in line] == comments
    section, _, name = key.partition(".")
    cfg = parse_config(new, "c.yaml")
    got = {"auth_mode": cfg.auth_mode, "allow_lan_access": cfg.allow_lan_access, "port": cfg.port,
           "url": cfg.upstream.url, "timeout": cfg.upstream.timeout, "api_key": cfg.api_key,
           "profile": cfg.profile}[name]
    assert got == value
    diff = list(difflib.ndiff(text.splitlines(), new.splitlines()))
    removed, added = [d for d in diff if d.startswith("- ")], [d for d in diff if d.startswith("+ ")]
    assert len(removed) <= 1 and len(added) == 1, diff  # one line changed, or one added


def test_the_comment_column_stays_where_it_was():
    text = "proxy:\n  auth_mode: auto            # off | strict | all_except_health | auto\n"
    assert set_field(text, "proxy.auth_mode", "strict") == (
        "proxy:\n  auth_mode: strict          # off | strict | all_except_health | auto\n")
    # longer than the room before the comment: one space, then the comment
    assert set_field(text, "proxy.auth_mode", "all_except_health") == (
        "proxy:\n  auth_mode: all_except_health # off | strict | all_except_health | auto\n")


def test_quoted_values_hashes_and_line_endings():
    assert set_field('proxy:\n  auth_mode: "auto" # a # b\n', "proxy.auth_mode", "strict") == \
        "proxy:\n  auth_mode: strict # a # b\n"
    assert set_field("proxy:\r\n  auth_mode: auto\r\n", "proxy.auth_mode", "off") == \
        'proxy:\r\n  auth_mode: "off"\r\n'
    assert set_field("proxy:\n  auth_mode: auto", "proxy.port", 1) == "proxy:\n  port: 1\n  auth_mode: auto"


def test_missing_field_or_section_is_added_and_a_commented_line_is_not_a_field():
    text = "proxy:\n  # api_key: sk-old (a comment, not the field)\n  auth_mode: strict\n"
    new = set_field(text, "proxy.api_key", "sk-new")
    assert "  # api_key: sk-old (a comment, not the field)\n" in new
    assert parse_config(new, "c.yaml").api_key == "sk-new"
    new = set_field("upstream:\n  url: http://127.0.0.1:1\n", "proxy.auth_mode", "auto")
    assert new.endswith("proxy:\n  auth_mode: auto\n") and parse_config(new, "c.yaml").auth_mode == "auto"
    new = set_field("proxy:\n  auth_mode: strict\nupstream:\n  url: http://127.0.0.1:1\n", "upstream.timeout", 5)
    assert parse_config(new, "c.yaml").upstream.timeout == 5 and new.count("upstream:") == 1


@pytest.mark.parametrize("value, written", [
    ("strict", "strict"), ("off", '"off"'), ("true", '"true"'), ("8045", '"8045"'), ("", '""'),
    ("sk-a#b", "sk-a#b"), ("a #b", '"a #b"'), ("*x", '"*x"'), (True, "true"), (8045, "8045"),
    ("http://127.0.0.1:8046/v1", "http://127.0.0.1:8046/v1"),
])
def test_values_are_written_as_yaml_reads_them_back(value, written):
    assert yaml_scalar(value) == written


def test_save_validates_first_and_replaces_the_file_atomically(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(shipped(), encoding="utf-8")
    path.chmod(0o600)
    inode = path.stat().st_ino
    cfg = save(path, {"proxy.auth_mode": "strict", "proxy.allow_lan_access": True})
    assert (cfg.auth_mode, cfg.allow_lan_access) == ("strict", True)
    assert path.stat().st_ino != inode and path.stat().st_mode & 0o777 == 0o600
    before = path.read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="'bogus' is not an auth mode"):
        save(path, {"proxy.auth_mode": "bogus"})
    with pytest.raises(ConfigError, match="not a port number"):
        save(path, {"proxy.port": 70000})
    assert path.read_text(encoding="utf-8") == before  # nothing written
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temporary file left


# ---- the key write-back (a missing api_key generated, auth.regenerate)

def test_key_write_back_keeps_comments_and_layout(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(GOOD.replace("  api_key: sk-abc\n", ""))
    write_key(path, "sk-new")
    new = path.read_text()
    assert "# my proxy" in new and "# keep this comment" in new
    assert read_config(path).api_key == "sk-new"
    # replaces an existing line rather than adding a second one
    write_key(path, "sk-newer")
    again = path.read_text()
    assert again.count("api_key:") == 1 and read_config(path).api_key == "sk-newer"


def test_the_key_goes_under_proxy_whatever_else_is_named_api_key(tmp_path):
    """An upstream header named api_key (upstream.headers) is the upstream's, never the gate's key."""
    path = tmp_path / "config.yaml"
    path.write_text("upstream:\n  url: http://127.0.0.1:8046\n  headers:\n    api_key: upstream-secret\n"
                    "proxy:\n  auth_mode: strict\n")
    write_key(path, "sk-generated")
    cfg = read_config(path)
    assert cfg.api_key == "sk-generated" and cfg.upstream.headers == (("api_key", "upstream-secret"),)
    # no proxy section at all: one is added (the file still needs its auth_mode to load)
    assert set_field("upstream:\n  url: http://127.0.0.1:1\n", "proxy.api_key", "sk-z").endswith(
        "proxy:\n  api_key: sk-z\n")
    assert set_field("", "proxy.api_key", "sk-z") == "proxy:\n  api_key: sk-z\n"


def test_write_key_is_atomic_and_reloadable(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("proxy:\n  auth_mode: strict\n")
    path.chmod(0o600)
    write_key(path, "sk-written")
    assert read_config(path).api_key == "sk-written"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temp file left behind
