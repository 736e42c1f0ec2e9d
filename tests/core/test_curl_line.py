"""curl_line.py: a pasted curl line read as `just explain`'s own arguments."""

import pytest

from authgate.cli.curl_line import normalize


@pytest.mark.parametrize("argv, expected", [
    (["curl", "-i", "-s", "-v", "http://127.0.0.1:8045/healthz"], ["/healthz"]),
    (["curl", "-isSv", "-L", "-k", "--compressed", "-o", "/dev/null", "-m", "5", "http://h:1/v1/models?x=1"],
     ["/v1/models?x=1"]),
    (["curl -is -XPOST 'http://127.0.0.1:8045/v1/messages' -H 'x-api-key: sk-1' -d '{}'"],
     ["/v1/messages", "-H", "x-api-key: sk-1", "-X", "POST"]),
    (["curl \\\n  -H 'Authorization: Bearer sk-1' \\\n  127.0.0.1:8045/v1/models"],
     ["-H", "Authorization: Bearer sk-1", "/v1/models"]),
    (["-H", "Authorization: Bearer<key>"], ["-H", "Authorization: Bearer<key>"]),
    (["-sSH", "x-api-key: k", "--url", "http://h/p"], ["-H", "x-api-key: k", "/p"]),
    (["curl", "--json", "{}", "http://h/v1/chat/completions"],
     ["-H", "Content-Type: application/json", "-H", "Accept: application/json", "/v1/chat/completions",
      "-X", "POST"]),
    (["curl", "-I", "http://h/healthz"], ["/healthz", "-X", "HEAD"]),
    (["curl", "-u", "a:b", "-A", "agent", "http://h/"], ["-H", "Authorization: Basic YTpi", "-H", "User-Agent: agent", "/"]),
])
def test_curl_lines_become_the_explainers_arguments(argv, expected):
    assert normalize(argv)[0] == expected


def test_the_explainers_own_flags_keep_their_values():
    argv = ["--config", "/tmp/c.yaml", "--key", "sk-a:b/c", "--now", "2026-12-01T23:30+08:00", "--mode", "strict",
            "-H", "x-api-key: http://not-a-url/", "/v1/models"]
    assert normalize(argv)[0] == argv


def test_it_says_what_it_read():
    _, notes = normalize(["curl", "-d", "x", "http://127.0.0.1:8045/v1/x"])
    assert notes == ["URL http://127.0.0.1:8045/v1/x: the gate sees the path /v1/x",
                     "a body (-d, --data, -F or --json) makes curl send POST"]
