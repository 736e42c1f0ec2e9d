"""Issue 5's tools, live: shadow mode in front of a real proxy, and `just explain`."""

import http.client
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from authgate.config.paths import REPO, TEMPLATE
from live import Gate, config_text, write_config
from upstreams import Upstream

REAL_KEY = "sk-real0123456789abcdef0123456789ab"  # what the "real" proxy enforces
OTHER_KEY = "sk-other123456789abcdef0123456789ab"


def get(port: int, headers: dict, path: str = "/v1/models") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("x-auth-gate", "")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """client → shadow gate → "real proxy" (a second gate, strict, REAL_KEY) → upstream."""
    with Upstream() as upstream:
        real_dir, shadow_dir = tmp_path_factory.mktemp("real"), tmp_path_factory.mktemp("shadow")
        write_config(real_dir / "config.yaml", config_text("strict", REAL_KEY, upstream.url))
        with Gate(real_dir / "config.yaml") as real:
            config = shadow_dir / "config.yaml"
            write_config(config, config_text("strict", REAL_KEY, real.url, extra="  auth_enforce: false"))
            with Gate(config) as shadow:
                yield shadow, config, real


@pytest.mark.parametrize("config_key, sent_key, status, verdict", [
    (REAL_KEY, "sk-wrong", 401, "as_predicted"),      # the auth layer's own 401
    (REAL_KEY, REAL_KEY, 200, "passed"),
    (OTHER_KEY, REAL_KEY, 200, "should_refuse"),      # the real proxy's key differs from config.yaml
    (OTHER_KEY, OTHER_KEY, 401, "other_401"),         # a 401 the predicted auth layer would not give
])
def test_shadow_mode_tells_where_a_401_came_from(chain, config_key, sent_key, status, verdict):
    shadow, config, real = chain
    write_config(config, config_text("strict", config_key, real.url, extra="  auth_enforce: false"))
    got, gate_header = get(shadow.port, {"x-api-key": sent_key})
    assert got == status
    assert gate_header.endswith(f"; shadow={verdict}")
    if verdict in ("should_refuse", "other_401"):
        assert shadow.wait_for(f"{status} · shadow · ")  # surprises are logged


def test_shadow_mode_forwards_credentials_unchanged(chain):
    # the real proxy must see the key: it passes only if it arrived
    shadow, config, real = chain
    write_config(config, config_text("strict", REAL_KEY, real.url, extra="  auth_enforce: false"))
    assert get(shadow.port, {"Authorization": f"Bearer {REAL_KEY}"})[0] == 200
    # and a /healthz is the real proxy's answer, not the shadow's (strict there: 401)
    assert get(shadow.port, {}, "/healthz")[0] == 401
    assert REAL_KEY not in shadow.output and REAL_KEY not in real.output


def explain_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "authgate.cli.explain", *args], capture_output=True,
                          text=True, timeout=30, cwd=REPO, env={"PYTHONPATH": str(REPO / "addon")})


def test_explain_cli_traces_a_failing_header(tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", REAL_KEY))
    run = explain_cli("--", "--config", str(config), "-H", f"Authorization: Bearer{REAL_KEY}")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "effective mode: strict (auth_mode=strict)" in out
    assert "Bearer prefix: not found, the whole value is the key" in out
    assert "comment: 401 · strict · Authorization won · no space after Bearer" in out
    assert "Fix: Write Authorization: Bearer <key>, with one space after Bearer." in out
    assert REAL_KEY not in out


def test_explain_cli_flags_override_the_config(tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict", REAL_KEY))
    out = explain_cli("--config", str(config), "--mode", "auto", "--lan", "/healthz").stdout
    assert "effective mode: all_except_health (auth_mode=auto with allow_lan_access=true" in out
    assert "comment: 200 · all_except_health · /healthz exempt" in out
    out = explain_cli("--config", str(config), "--lang", "fr", "-H", "x-api-key: nope").stdout
    assert "clé" in out.lower()
    out = explain_cli("--config", str(config), "--key", "", "-H", f"x-api-key: {REAL_KEY}").stdout
    assert "api_key is empty" in out


def test_explain_cli_errors_are_clear(tmp_path):
    run = explain_cli("--config", str(tmp_path / "missing.yaml"))
    assert run.returncode == 2 and "does not exist" in run.stderr
    run = explain_cli("-H", "no colon here")
    assert run.returncode == 2 and "expected 'Name: value'" in run.stderr


def test_explain_cli_before_the_first_start(tmp_path):
    # a fresh clone: config.yaml has no key until the gate generates one
    config = tmp_path / "config.yaml"
    write_config(config, config_text("strict"))
    run = explain_cli("--config", str(config), "-H", "x-api-key: sk-anything")
    assert run.returncode == 0, run.stderr
    assert "has no api_key yet" in run.stdout and "api_key (none)" in run.stdout
    assert "comment: 401 · strict · x-api-key won (Authorization absent) · key mismatch" in run.stdout


def just_explain(*args: str) -> subprocess.CompletedProcess:
    """`just explain -- ...` as the README says it (the config named: a test never reads the user's);
    the module itself where `just` is not installed (it runs the same command)."""
    just = shutil.which("just") or str(Path(sys.executable).with_name("just"))
    env = {**os.environ, "PYTHON": sys.executable}
    cmd = [just, "explain", "--", *args] if os.access(just, os.X_OK) else \
        [sys.executable, "-m", "authgate.cli.explain", "--", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=REPO,
                          env={**env, "PYTHONPATH": str(REPO / "addon")})


def test_just_explain_under_the_shipped_config_points_at_the_missing_space():
    # The shipped defaults are auto → off: the gate would pass it, the person's proxy (auth on) does not.
    # (Named: the user's own config.yaml, whatever it says, is never what a test reads.)
    run = just_explain("--config", str(TEMPLATE), "-H", "Authorization: Bearer<key>")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "effective mode: off (auth_mode=auto with allow_lan_access=false resolves to off)" in out
    on = out.split("once auth is on (strict, as your real proxy may be):\n", 1)[1]
    assert "  comment: 401 · strict · Authorization won · no space after Bearer" in on
    assert "Bearer prefix: not found, the whole value is the key" in on
    assert "Fix: Write Authorization: Bearer <key>, with one space after Bearer." in on
    assumed = [line for line in out.splitlines() if line.startswith("settings: ")]
    assert assumed == [f"settings: {TEMPLATE}, api_key (none); assumed: auth_mode=auto, "
                       f"allow_lan_access=false → off; profile faq"]


def test_explain_takes_full_urls_and_pasted_curl_lines(tmp_path):
    config = tmp_path / "config.yaml"
    write_config(config, config_text("all_except_health", REAL_KEY))
    # a full URL is its path: /healthz is exempt here (a path "http://..." would need the key)
    out = explain_cli("--config", str(config), "http://127.0.0.1:8045/healthz").stdout
    assert "comment: 200 · all_except_health · /healthz exempt" in out
    assert "note: URL http://127.0.0.1:8045/healthz: the gate sees the path /healthz" in out
    # a pasted curl line, display flags and all, as separate words or as one
    for args in (["curl", "-i", "-s", "-v", "http://127.0.0.1:8045/v1/models", "-H", f"x-api-key: {REAL_KEY}"],
                 [f"curl -isS http://127.0.0.1:8045/v1/models -H 'x-api-key: {REAL_KEY}'"]):
        run = explain_cli("--config", str(config), *args)
        assert run.returncode == 0, run.stderr
        assert "comment: pass · all_except_health · x-api-key won (Authorization absent) · key ok" in run.stdout
        assert "once auth is on" not in run.stdout  # auth is on already
    out = explain_cli("--config", str(config), "--mode", "auto", "--no-lan", "curl", "-s", "127.0.0.1:8045/healthz").stdout
    assert "once auth is on (all_except_health, as your real proxy may be):" in out  # /healthz: the two differ
    assert f"settings: {config}, api_key sk-…89ab (35 chars); assumed with --mode auto --no-lan: auth_mode=auto, " \
           "allow_lan_access=false → off; profile faq" in out


def test_the_readmes_key_line_reads_proxy_api_key_not_a_comment(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    line = next(x for x in readme.splitlines() if x.startswith("export KEY=$("))
    (tmp_path / "config.yaml").write_text(
        "# old key, kept for reference: sk-00000000000000000000000000000000\n"
        "proxy:\n"
        "  # api_key: sk-11111111111111111111111111111111 (the one before)\n"
        "  api_key: sk-0123456789abcdef0123456789abcdef   # sk-22222222222222222222222222222222 was revoked\n"
        "  auth_mode: strict\n"
        "tokens:\n  - token: sk-33333333333333333333333333333333\n", encoding="utf-8")
    run = subprocess.run(["bash", "-c", f'{line}\nprintf %s "$KEY"'], capture_output=True, text=True, timeout=10,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "sk-0123456789abcdef0123456789abcdef"
    (tmp_path / "config.yaml").write_text('proxy:\n  api_key: "sk-abc"\n  auth_mode: strict\n', encoding="utf-8")
    run = subprocess.run(["bash", "-c", f'{line}\nprintf %s "$KEY"'], capture_output=True, text=True, timeout=10,
                         cwd=tmp_path)
    assert run.stdout == "sk-abc"  # quoted, as config.yaml may hold it
