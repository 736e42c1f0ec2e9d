"""checks.py: each field's check, and every refusal naming the file, the field and the fix."""

import pytest

from authgate.config.read import merge, parse_config
from authgate.config.settings import ConfigError, Overrides
from config_texts import GOOD, V4

STRICT = "proxy:\n  auth_mode: strict\n"
# What a refused text follows: nothing (the whole file), a proxy: section with its
# auth_mode, upstream.headers, or a v4 file.
BEFORE = {"file": "", "proxy": STRICT, "headers": STRICT + "upstream:\n  url: http://h\n  headers:\n", "v4": V4}


@pytest.mark.parametrize("before, text, field, words", [
    # proxy: and upstream:
    ("file", "proxy:\n  auth_mode: bogus\n", "proxy.auth_mode", "off, strict, all_except_health, auto"),
    ("file", "proxy:\n  auth_mode: on\n", "proxy.auth_mode", "off, strict"),
    ("proxy", "  port: 70000\n", "proxy.port", "1 to 65535"),
    ("proxy", "  port: abc\n", "proxy.port", "1 to 65535"),
    ("proxy", "  port: true\n", "proxy.port", "1 to 65535"),
    ("proxy", "  allow_lan_access: maybe\n", "proxy.allow_lan_access", "true or false"),
    ("proxy", "  api_key: 12345\n", "proxy.api_key", "quote the key"),
    ("proxy", "  api_key: sk a b\n", "proxy.api_key", "visible ASCII"),
    ("proxy", "  authmode: strict\n", "proxy.authmode", "port, allow_lan_access, auth_mode, api_key"),
    ("file", "proxies:\n  port: 1\n", "proxies", "proxy, upstream"),
    ("file", "proxy: 8045\n", "proxy", "indented fields"),
    ("proxy", "upstream:\n  url: ftp://x\n", "upstream.url", "http://127.0.0.1:8046"),
    ("proxy", "upstream:\n  url: 127.0.0.1:8046\n", "upstream.url", "http"),
    ("proxy", "upstream:\n  url: http://h:99999\n", "upstream.url", "http"),
    ("file", "proxy:\n  port: 1\n auth_mode: x\n", "(YAML syntax)", "indentation"),
    ("file", "- a\n- b\n", "(top level)", "proxy:"),
    # upstream.headers
    ("headers", '    x-key: "${NOT_SET_ANYWHERE_42}"\n', "upstream.headers.x-key", "NOT_SET_ANYWHERE_42 is not set"),
    ("headers", "    x-key: 5\n", "upstream.headers.x-key", "quote the value"),
    ("headers", '    "bad name": v\n', "upstream.headers.bad name", "header name"),
    # profile v4: admin_password, version
    ("v4", "  admin_password: 1234\n", "proxy.admin_password", "quote the password"),
    ("v4", '  admin_password: " padded"\n', "proxy.admin_password", "spaces only inside"),
    ("v4", '  admin_password: "caf\u00e9"\n', "proxy.admin_password", "visible ASCII"),
    ("v4", "  version: 4.5\n", "proxy.version", 'quote it, e.g. version: "4.5.8"'),
    ("v4", '  version: "4 5"\n', "proxy.version", "quote it"),
    # profile v4: tokens:, headless:
    ("v4", "tokens: sk-x\n", "tokens", "`- token: sk-user-1`"),
    ("v4", "tokens:\n  - sk-x\n", "tokens[0]", "is not a mapping"),
    ("v4", "tokens:\n  - username: a\n", "tokens[0].token", "is missing"),
    ("v4", "tokens:\n  - token: sk a\n", "tokens[0].token", "without spaces"),
    ("v4", "tokens:\n  - token: sk-a\n  - token: sk-a\n", "tokens[1].token", "UNIQUE"),
    ("v4", "tokens:\n  - token: sk-a\n    expiry: 1\n", "tokens[0].expiry", "fields of a token are"),
    ("v4", "tokens:\n  - token: sk-a\n    expires_type: yearly\n", "tokens[0].expires_type", "never, day, week"),
    ("v4", "tokens:\n  - token: sk-a\n    expires_at: 2026-01-01\n", "tokens[0].expires_at", "Unix seconds"),
    ("v4", "tokens:\n  - token: sk-a\n    max_ips: -1\n", "tokens[0].max_ips", "0 for no limit"),
    ("v4", "tokens:\n  - token: sk-a\n    curfew_start: 22:00\n", "tokens[0].curfew_start", 'quote the time'),
    ("v4", "tokens:\n  - token: sk-a\n    curfew_end: noon\n", "tokens[0].curfew_end", "HH:MM"),
    ("v4", "tokens:\n  - token: sk-a\n    enabled: yes please\n", "tokens[0].enabled", "true or false"),
    ("v4", "tokens:\n  - token: sk-a\n    bound_ips: 10.0.0.1\n", "tokens[0].bound_ips", "list of IP"),
    ("v4", "headless: maybe\n", "headless", "true or false"),
])
def test_errors_name_the_file_the_field_and_the_fix(before, text, field, words):
    with pytest.raises(ConfigError) as e:
        parse_config(BEFORE[before] + text, "/etc/gate/config.yaml")
    msg = str(e.value)
    assert e.value.field == field
    assert msg.startswith(f"/etc/gate/config.yaml: {field}: ")
    assert "Fix: " in msg and words in msg, msg
    assert "1234" not in msg and "padded" not in msg  # a password is never echoed


def test_unquoted_off_is_the_off_mode():
    # YAML 1.1 reads `off` as false; the FAQ writes auth_mode=off.
    assert parse_config("proxy:\n  auth_mode: off\n", "c.yaml").auth_mode == "off"


@pytest.mark.parametrize("value, expected", [("", ""), ('""', ""), ("  # nothing", "")])
def test_empty_key_is_empty_not_missing(value, expected):
    assert parse_config(f"proxy:\n  auth_mode: strict\n  api_key: {value}\n", "c.yaml").api_key == expected


def test_upstream_headers_expand_the_environment(monkeypatch):
    monkeypatch.setenv("GEMINI_KEY", "AIza-secret")
    cfg = parse_config('proxy:\n  auth_mode: strict\nupstream:\n  url: https://up.test\n  headers:\n'
                       '    x-goog-api-key: "${GEMINI_KEY}"\n    x-team: "t-${GEMINI_KEY}-1"\n', "c.yaml")
    assert cfg.upstream.headers == (("x-goog-api-key", "AIza-secret"), ("x-team", "t-AIza-secret-1"))
    # an auth_upstream option keeps the file's credentials
    s = merge(cfg, Overrides(upstream="http://127.0.0.1:1"), "c.yaml")
    assert s.upstream.headers == cfg.upstream.headers


@pytest.mark.parametrize("value", ["0", "-1", "600", "1e9", "true", "soon", '"30"'])
def test_upstream_timeout_errors_name_the_field_and_the_fix(value):
    with pytest.raises(ConfigError) as e:
        parse_config(GOOD + f"  timeout: {value}\n", "c.yaml")
    assert e.value.field == "upstream.timeout"
    assert "above 0 and below 600" in e.value.fix


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


def test_an_unquoted_curfew_says_why():
    # YAML 1.1 reads 22:00 as sexagesimal 1320: the message says so
    with pytest.raises(ConfigError, match="1320 is a number"):
        parse_config(V4 + "tokens:\n  - token: sk-a\n    curfew_start: 22:00\n", "c.yaml")
