"""Issue 5's tools, live: shadow mode in front of a real proxy, and `just explain`."""

import http.client
import subprocess
import sys

import pytest

from live import REPO, Gate, Upstream, config_text, write_config

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
    return subprocess.run([sys.executable, "-m", "authgate.explain_cli", *args], capture_output=True,
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
