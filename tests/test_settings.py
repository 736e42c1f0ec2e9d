"""config.yaml parsing, option overrides, key generation and write-back."""

import re

import pytest

from authgate.settings import (ConfigError, Overrides, fingerprint, generate_key, merge,
                               parse_config, read_config, set_key_in_text, write_key)

GOOD = """\
# my proxy
proxy:
  port: 8045
  allow_lan_access: false
  auth_mode: strict   # keep this comment
  api_key: sk-abc
upstream:
  url: http://127.0.0.1:9000/base/
"""


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


def test_a_key_in_the_wrong_field_is_not_echoed():
    key = "sk-0123456789abcdef0123456789abcdef"
    with pytest.raises(ConfigError) as e:
        parse_config(f"proxy:\n  auth_mode: {key}\n", "c.yaml")
    assert key not in str(e.value) and "sk-…cdef (35 chars)" in str(e.value)


def test_unquoted_off_is_the_off_mode():
    # YAML 1.1 reads `off` as false; the FAQ writes auth_mode=off.
    assert parse_config("proxy:\n  auth_mode: off\n", "c.yaml").auth_mode == "off"


@pytest.mark.parametrize("value, expected", [("", ""), ('""', ""), ("  # nothing", "")])
def test_empty_key_is_empty_not_missing(value, expected):
    assert parse_config(f"proxy:\n  auth_mode: strict\n  api_key: {value}\n", "c.yaml").api_key == expected


@pytest.mark.parametrize("text, field, words", [
    ("proxy:\n  auth_mode: bogus\n", "proxy.auth_mode", "off, strict, all_except_health, auto"),
    ("proxy:\n  auth_mode: on\n", "proxy.auth_mode", "off, strict"),
    ("proxy:\n  port: 70000\n", "proxy.port", "1 to 65535"),
    ("proxy:\n  port: abc\n", "proxy.port", "1 to 65535"),
    ("proxy:\n  port: true\n", "proxy.port", "1 to 65535"),
    ("proxy:\n  allow_lan_access: maybe\n", "proxy.allow_lan_access", "true or false"),
    ("proxy:\n  api_key: 12345\n", "proxy.api_key", "quote the key"),
    ("proxy:\n  api_key: sk a b\n", "proxy.api_key", "visible ASCII"),
    ("proxy:\n  authmode: strict\n", "proxy.authmode", "port, allow_lan_access, auth_mode, api_key"),
    ("proxies:\n  port: 1\n", "proxies", "proxy, upstream"),
    ("proxy: 8045\n", "proxy", "indented fields"),
    ("upstream:\n  url: ftp://x\n", "upstream.url", "http://127.0.0.1:8046"),
    ("upstream:\n  url: 127.0.0.1:8046\n", "upstream.url", "http"),
    ("upstream:\n  url: http://h:99999\n", "upstream.url", "http"),
    ("proxy:\n  port: 1\n auth_mode: x\n", "(YAML syntax)", "indentation"),
    ("- a\n- b\n", "(top level)", "proxy:"),
])
def test_errors_name_the_file_the_field_and_the_fix(text, field, words):
    if "auth_mode" not in text and text.startswith("proxy:\n"):
        text = text.replace("proxy:\n", "proxy:\n  auth_mode: strict\n", 1)
    elif text.startswith("upstream:"):
        text = "proxy:\n  auth_mode: strict\n" + text
    with pytest.raises(ConfigError) as e:
        parse_config(text, "/etc/gate/config.yaml")
    msg = str(e.value)
    assert e.value.field == field
    assert msg.startswith(f"/etc/gate/config.yaml: {field}: ")
    assert "Fix: " in msg and words in msg


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


def test_effective_mode_on_the_snapshot():
    cfg = parse_config("proxy:\n  auth_mode: auto\n  allow_lan_access: true\n  api_key: k\n", "c")
    assert merge(cfg, Overrides(), "c").effective_mode == "all_except_health"
    assert merge(cfg, Overrides(allow_lan_access=False), "c").effective_mode == "off"


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


def test_key_write_back_keeps_comments_and_layout(tmp_path):
    text = GOOD.replace("  api_key: sk-abc\n", "")
    new = set_key_in_text(text, "sk-new")
    assert "# my proxy" in new and "# keep this comment" in new
    assert parse_config(new, "c").api_key == "sk-new"
    # replaces an existing line rather than adding a second one
    again = set_key_in_text(new, "sk-newer")
    assert again.count("api_key:") == 1 and parse_config(again, "c").api_key == "sk-newer"
    # no proxy section at all: one is added (the file still needs its auth_mode to load)
    assert "proxy:\n  api_key: sk-z\n" in set_key_in_text("upstream:\n  url: http://127.0.0.1:1\n", "sk-z")
    assert set_key_in_text("", "sk-z") == "proxy:\n  api_key: sk-z\n"


def test_write_key_is_atomic_and_reloadable(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("proxy:\n  auth_mode: strict\n")
    path.chmod(0o600)
    write_key(path, "sk-written")
    assert read_config(path).api_key == "sk-written"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]  # no temp file left behind


def test_upstream_headers_expand_the_environment(monkeypatch):
    monkeypatch.setenv("GEMINI_KEY", "AIza-secret")
    cfg = parse_config('proxy:\n  auth_mode: strict\nupstream:\n  url: https://up.test\n  headers:\n'
                       '    x-goog-api-key: "${GEMINI_KEY}"\n    x-team: "t-${GEMINI_KEY}-1"\n', "c.yaml")
    assert cfg.upstream.headers == (("x-goog-api-key", "AIza-secret"), ("x-team", "t-AIza-secret-1"))
    # an auth_upstream option keeps the file's credentials
    s = merge(cfg, Overrides(upstream="http://127.0.0.1:1"), "c.yaml")
    assert s.upstream.headers == cfg.upstream.headers


@pytest.mark.parametrize("headers, field, words", [
    ('    x-key: "${NOT_SET_ANYWHERE_42}"\n', "upstream.headers.x-key", "NOT_SET_ANYWHERE_42 is not set"),
    ("    x-key: 5\n", "upstream.headers.x-key", "quote the value"),
    ('    "bad name": v\n', "upstream.headers.bad name", "header name"),
])
def test_upstream_header_errors(headers, field, words):
    with pytest.raises(ConfigError) as e:
        parse_config("proxy:\n  auth_mode: strict\nupstream:\n  url: http://h\n  headers:\n" + headers, "c.yaml")
    assert e.value.field == field and words in str(e.value)


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


@pytest.mark.parametrize("value", ["0", "-1", "600", "1e9", "true", "soon", '"30"'])
def test_upstream_timeout_errors_name_the_field_and_the_fix(value):
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD + f"  timeout: {value}\n", "c.yaml")
    assert e.value.field == "upstream.timeout"
    assert "above 0 and below 600" in e.value.fix


# ---- profile v4: admin_password, version, tokens:, headless: true

V4 = "proxy:\n  auth_mode: strict\n  api_key: sk-abc\n  profile: v4\n"


def test_v4_fields_parse_and_merge():
    cfg = parse_config(V4 + '  admin_password: "open sesame"\n  version: "4.5.7"\n', "c.yaml")
    assert (cfg.admin_password, cfg.version) == ("open sesame", "4.5.7")
    s = merge(cfg, Overrides(), "c.yaml")
    assert (s.admin_password, s.version, s.tokens, s.headless) == ("open sesame", "4.5.7", (), False)
    s = merge(cfg, Overrides(admin_password="", version="4.0.0"), "c.yaml")
    assert (s.admin_password, s.version, s.overridden) == ("", "4.0.0", ("admin_password", "version"))
    plain = merge(parse_config(V4, "c.yaml"), Overrides(), "c.yaml")
    assert (plain.admin_password, plain.version) == (None, "4.5.8")  # the health answer's default


@pytest.mark.parametrize("line, field, words", [
    ("  admin_password: 1234\n", "proxy.admin_password", "quote the password"),
    ('  admin_password: " padded"\n', "proxy.admin_password", "spaces only inside"),
    ('  admin_password: "caf\u00e9"\n', "proxy.admin_password", "visible ASCII"),
    ("  version: 4.5\n", "proxy.version", 'quote it, e.g. version: "4.5.8"'),
    ('  version: "4 5"\n', "proxy.version", "quote it"),
])
def test_v4_field_errors(line, field, words):
    with pytest.raises(ConfigError) as e:
        parse_config(V4 + line, "c.yaml")
    assert e.value.field == field and words in str(e.value)
    assert "1234" not in str(e.value) and "padded" not in str(e.value)  # a password is never echoed


def test_tokens_list_becomes_user_token_rows():
    cfg = parse_config(V4 + """tokens:
  - token: sk-user-1
    username: alice
    expires_type: day
    expires_at: 1767225600
    max_ips: 2
    curfew_start: "22:00"
    curfew_end: "06:00"
    enabled: false
    bound_ips: ["10.0.0.1", "10.0.0.1", "10.0.0.2"]
  - token: sk-user-2
""", "c.yaml")
    alice, second = cfg.tokens
    assert (alice.token, alice.username, alice.expires_type, alice.expires_at, alice.max_ips, alice.curfew_start,
            alice.curfew_end, alice.enabled, alice.bound_ips) == (
        "sk-user-1", "alice", "day", 1767225600, 2, "22:00", "06:00", False, ("10.0.0.1", "10.0.0.2"))
    assert (second.username, second.expires_type, second.expires_at, second.max_ips, second.enabled) == (
        "tokens[1]", "never", None, 0, True)  # the app's defaults (utdb init clean-up: never, 0, enabled)
    assert alice.id.startswith("cfg-") and "sk-user-1" not in alice.id  # stable, and not the token
    assert merge(cfg, Overrides(), "c.yaml").tokens == cfg.tokens


@pytest.mark.parametrize("tokens, field, words", [
    ("tokens: sk-x\n", "tokens", "`- token: sk-user-1`"),
    ("tokens:\n  - sk-x\n", "tokens[0]", "is not a mapping"),
    ("tokens:\n  - username: a\n", "tokens[0].token", "is missing"),
    ("tokens:\n  - token: sk a\n", "tokens[0].token", "without spaces"),
    ("tokens:\n  - token: sk-a\n  - token: sk-a\n", "tokens[1].token", "UNIQUE"),
    ("tokens:\n  - token: sk-a\n    expiry: 1\n", "tokens[0].expiry", "fields of a token are"),
    ("tokens:\n  - token: sk-a\n    expires_type: yearly\n", "tokens[0].expires_type", "never, day, week"),
    ("tokens:\n  - token: sk-a\n    expires_at: 2026-01-01\n", "tokens[0].expires_at", "Unix seconds"),
    ("tokens:\n  - token: sk-a\n    max_ips: -1\n", "tokens[0].max_ips", "0 for no limit"),
    ("tokens:\n  - token: sk-a\n    curfew_start: 22:00\n", "tokens[0].curfew_start", 'quote the time'),
    ("tokens:\n  - token: sk-a\n    curfew_end: noon\n", "tokens[0].curfew_end", "HH:MM"),
    ("tokens:\n  - token: sk-a\n    enabled: yes please\n", "tokens[0].enabled", "true or false"),
    ("tokens:\n  - token: sk-a\n    bound_ips: 10.0.0.1\n", "tokens[0].bound_ips", "list of IP"),
    ("headless: maybe\n", "headless", "true or false"),
])
def test_tokens_and_headless_errors_name_the_field(tokens, field, words):
    with pytest.raises(ConfigError) as e:
        parse_config(V4 + tokens, "c.yaml")
    assert e.value.field == field and words in str(e.value), str(e.value)
    assert str(e.value).startswith(f"c.yaml: {field}: ")


def test_an_unquoted_curfew_says_why():
    # YAML 1.1 reads 22:00 as sexagesimal 1320: the message says so
    with pytest.raises(ConfigError, match="1320 is a number"):
        parse_config(V4 + "tokens:\n  - token: sk-a\n    curfew_start: 22:00\n", "c.yaml")


HEADLESS = "proxy:\n  auth_mode: {mode}\n  api_key: sk-file\n  profile: v4\nheadless: true\n"


@pytest.mark.parametrize("mode, env, expected", [
    # lib.rs:260-268, 272-276, 280-290, 294-304, 308-328, in that order
    ("auto", {}, {"allow_lan_access": True, "auth_mode": "all_except_health", "api_key": "sk-file",
                  "admin_password": None}),
    ("off", {}, {"auth_mode": "all_except_health"}),
    ("strict", {}, {"auth_mode": "strict"}),
    ("auto", {"ABV_BIND_LOCAL_ONLY": "TRUE"}, {"allow_lan_access": False}),
    ("auto", {"ABV_BIND_LOCAL_ONLY": "on"}, {"allow_lan_access": False}),
    ("auto", {"ABV_BIND_LOCAL_ONLY": " 1"}, {"allow_lan_access": True}),  # not trimmed
    ("auto", {"ABV_BIND_LOCAL_ONLY": "no"}, {"allow_lan_access": True}),
    ("auto", {"ABV_API_KEY": "sk-env"}, {"api_key": "sk-env"}),
    ("auto", {"API_KEY": "sk-env2"}, {"api_key": "sk-env2"}),
    ("auto", {"ABV_API_KEY": "sk-env", "API_KEY": "sk-env2"}, {"api_key": "sk-env"}),
    ("auto", {"ABV_API_KEY": "", "API_KEY": "sk-env2"}, {"api_key": "sk-file"}),  # an empty ABV_ masks (Q20)
    ("auto", {"ABV_API_KEY": "   "}, {"api_key": "sk-file"}),  # blank: not applied
    ("auto", {"WEB_PASSWORD": "pw pw"}, {"admin_password": "pw pw"}),
    ("auto", {"ABV_WEB_PASSWORD": "pw1", "WEB_PASSWORD": "pw2"}, {"admin_password": "pw1"}),
    ("auto", {"ABV_AUTH_MODE": "OFF"}, {"auth_mode": "off"}),  # after the force: it can undo it
    ("strict", {"AUTH_MODE": "auto", "ABV_BIND_LOCAL_ONLY": "yes"}, {"auth_mode": "auto", "allow_lan_access": False}),
    ("strict", {"ABV_AUTH_MODE": "bogus"}, {"auth_mode": "strict"}),
    ("auto", {"ABV_AUTH_MODE": " strict"}, {"auth_mode": "all_except_health"}),  # not trimmed: invalid
])
def test_headless_start_overrides_in_the_originals_order(mode, env, expected):
    cfg = parse_config(HEADLESS.format(mode=mode), "c.yaml", environ=env)
    for name, value in expected.items():
        assert getattr(cfg, name) == value, name
    assert cfg.headless


def test_headless_log_lines_are_the_originals():
    cfg = parse_config(HEADLESS.format(mode="auto"), "c.yaml",
                       environ={"ABV_API_KEY": "sk-env", "WEB_PASSWORD": "pw", "AUTH_MODE": "strict"})
    assert cfg.startup_log == (
        ("info", "Headless mode: Forcing auth_mode to AllExceptHealth for Web UI security"),
        ("info", "Using API Key from environment variable"),
        ("info", "Using Web UI Password from environment variable"),
        ("info", "Using Auth Mode from environment variable: Strict"),
        ("info", "\U0001f511 Current API Key: set"),
        ("info", "\U0001f510 Web UI Password: set"),
    )
    cfg = parse_config(HEADLESS.format(mode="strict"), "c.yaml", environ={"ABV_AUTH_MODE": "nope"})
    assert ("warn", "Invalid AUTH_MODE: nope, ignoring") in cfg.startup_log
    assert cfg.startup_log[-1] == ("info", "\U0001f510 Web UI Password: (Same as API Key)")
    assert merge(cfg, Overrides(), "c.yaml").startup_log == cfg.startup_log


def test_headless_env_values_are_checked_and_never_echoed():
    with pytest.raises(ConfigError) as e:
        parse_config(HEADLESS.format(mode="auto"), "c.yaml", environ={"ABV_API_KEY": "sk secret value"})
    assert e.value.field == "ABV_API_KEY" and "headless" in e.value.source and "secret" not in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse_config(HEADLESS.format(mode="auto"), "c.yaml", environ={"WEB_PASSWORD": "pw\u00e9"})
    assert e.value.field == "WEB_PASSWORD"


def test_headless_options_still_win_and_nothing_is_written(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(HEADLESS.format(mode="auto"))
    before = path.read_bytes()
    cfg = parse_config(path.read_text(), str(path), environ={"ABV_API_KEY": "sk-env"})
    s = merge(cfg, Overrides(auth_mode="strict", api_key="sk-opt"), str(path))
    assert (s.auth_mode, s.api_key, s.allow_lan_access, s.listen_host) == ("strict", "sk-opt", True, "0.0.0.0")
    assert path.read_bytes() == before


def test_without_headless_the_environment_is_not_read():
    cfg = parse_config(V4, "c.yaml", environ={"ABV_API_KEY": "sk-env", "ABV_AUTH_MODE": "off"})
    assert (cfg.api_key, cfg.auth_mode, cfg.startup_log) == ("sk-abc", "strict", ())


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


def test_error_messages_cap_what_they_quote():
    huge = "proxy:\n  auth_mode: strict\n  port: [" + ", ".join(["123456"] * 50_000) + "]\n"
    with pytest.raises(ConfigError) as e:
        parse_config(huge, "c.yaml")
    assert str(e.value).startswith("c.yaml: proxy.port: [123456, 123456, 123456, 123456, ...] is not a port number")
    with pytest.raises(ConfigError) as e:
        parse_config("proxy:\n  auth_mode: strict\nupstream:\n  url: " + "x" * 100_000 + "\n", "c.yaml")
    assert len(str(e.value)) < 400
    assert len(str(ConfigError("c.yaml", "f", "p" * 10_000, "fix"))) < 400
