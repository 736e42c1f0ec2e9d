"""config.yaml deleted, truncated or made invalid while a live `mitmdump -s addon/auth.py` runs: the
gate keeps the last good config, says so once, leaves the file alone, and a good file applies again.

Everything listens on 127.0.0.1 (ephemeral ports); every socket call and wait is bounded; every
process and thread started here is stopped when its test ends.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from live import config_text, write_config
from live_fixtures import confdir, echo, gate  # noqa: F401
from raw_http import exchange, request_bytes
from robustness_checks import KEY, OTHER_KEY, healthy, with_key

KEPT = "keeping the last good config"  # the gate's one-line notice for a bad edit


def _truncate(path: Path) -> None:
    with open(path, "w", encoding="utf-8"):
        pass  # in place, same inode: what a crashed editor or a `> config.yaml` leaves behind


CONFIG_FAULTS = {
    "deleted": lambda path: path.unlink(),
    "truncated-0-bytes": _truncate,
    "invalid-yaml": lambda path: write_config(path, "proxy:\n  auth_mode: [strict\n  api_key: x\n"),
    "invalid-field": lambda path: write_config(path, config_text("bogus", OTHER_KEY)),
}


@pytest.mark.parametrize("fault", list(CONFIG_FAULTS))
def test_config_fault_keeps_last_good_config_and_says_so_once(gate, echo, fault):
    m = gate(config_text("strict", KEY, echo.url))
    port = m.port
    right = with_key()
    CONFIG_FAULTS[fault](m.config)
    after = m.config.read_bytes() if m.config.exists() else None

    def still_the_last_good_config(when: str) -> None:
        try:
            no_key = exchange(port, request_bytes("GET", "/v1/models", [(b"Host", b"gate")]))
            other_key = [(b"Host", b"gate"), (b"Authorization", b"Bearer " + OTHER_KEY.encode())]
            other = exchange(port, request_bytes("GET", "/v1/models", other_key))
            good = exchange(port, request_bytes("GET", "/v1/models", right))
        except OSError as e:
            pytest.fail(f"config {fault}, {when}: the gate no longer answers on port {port} ({e}):\n"
                        + "\n".join(m.lines[-8:]))
        assert no_key.status == 401, f"config {fault}, {when}: no key got {no_key.describe()}"
        assert other.status == 401, f"config {fault}, {when}: another key got {other.describe()}"
        assert good.status == 200 and good.json()["upstream"] == "echo", f"config {fault}, {when}: {good.describe()}"

    for i in range(4):
        still_the_last_good_config(f"request round {i + 1}")
    time.sleep(1.5)  # the idle watcher (every 1 s) gets its chance to repeat the notice
    still_the_last_good_config("after idling")
    assert m.wait_for(KEPT, timeout=3.0), f"config {fault}: no '{KEPT}' notice:\n" + "\n".join(m.lines[-10:])
    notices = [line for line in m.lines if KEPT in line]
    assert len(notices) == 1, f"config {fault}: the notice came {len(notices)} times:\n" + "\n".join(notices)
    assert str(m.config) in notices[0]
    # The gate does not rewrite a broken file behind the user's back.
    now = m.config.read_bytes() if m.config.exists() else None
    assert now == after, f"config {fault}: the gate rewrote the file to {now!r}"
    healthy(m, f"config {fault}")

    # A good file afterwards applies at once (auth off now), without another notice.
    write_config(m.config, config_text("off", KEY, echo.url))
    r = exchange(port, request_bytes("GET", "/v1/models", [(b"Host", b"gate")]))
    assert r.status == 200 and r.json()["upstream"] == "echo", r.describe()
    assert len([line for line in m.lines if KEPT in line]) == 1
    assert m.port == port and m.proc.poll() is None
