"""config.yaml texts the settings tests share (test_config_read, test_checks, test_config_edit, ...)."""

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

V4 = "proxy:\n  auth_mode: strict\n  api_key: sk-abc\n  profile: v4\n"
