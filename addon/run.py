"""`just run` and `just web`: the gate and the demo upstream, started and stopped together.

    python3 addon/run.py [--web] [--config FILE] [mitmdump/mitmweb arguments...]

Makes config.yaml from the shipped defaults on first start (so both read the same file),
starts the demo upstream on upstream.url, then mitmdump (or mitmweb) with addon/auth.py.
Whatever stops it stops both, ports freed: Ctrl-C, a closed terminal (SIGHUP), an IDE's stop
button or a supervisor (SIGTERM), the death of its parent (Linux: the children are told by the
kernel even if this process is killed outright), or the gate exiting. The demo upstream exiting
(upstream.url not local, its port taken) leaves the gate running: it answers 502 for the
upstream, and /healthz and its 401s as ever.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ADDON = Path(__file__).resolve().parent
sys.path.insert(0, str(ADDON))

from authgate.config import ports  # noqa: E402
from authgate.config.edit import create_from_template  # noqa: E402
from authgate.config.paths import TEMPLATE, USER_CONFIG  # noqa: E402
from authgate.config.read import read_config  # noqa: E402
from authgate.config.settings import ConfigError, generate_key  # noqa: E402
from authgate.rules.credentials import fingerprint  # noqa: E402

STOP_GRACE = 1.5  # seconds a child has to exit after SIGTERM, then SIGKILL
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In a child, before exec (Linux): SIGTERM when the process that started it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the signal handlers below still stop the children
        pass


def _tool(name: str) -> str:
    beside = Path(sys.executable).with_name(name)  # the venv's mitmdump, with this Python
    return str(beside) if beside.exists() else name


def _first_start() -> None:
    if USER_CONFIG.exists():
        return
    key = generate_key()
    if create_from_template(USER_CONFIG, TEMPLATE, key):
        print(f"{USER_CONFIG.name}: created from {TEMPLATE.relative_to(ADDON.parent)} with a new key "
              f"{fingerprint(key)}; edit it there (git does not track it)", flush=True)


def _upstream_busy(config: Path) -> str | None:
    """Why the demo upstream cannot start, if its port is taken (the holder named, as the OS tells)."""
    try:
        up = read_config(config).upstream
    except ConfigError:
        return None  # mitmdump says what is wrong with the file, with the fix
    if up.scheme != "http" or up.host not in ("127.0.0.1", "localhost", "::1"):
        return None
    holder = ports.holder(up.port)
    return f"{up.host}:{up.port} (upstream.url) is taken by {holder}" if holder else None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--web", action="store_true", help="mitmweb instead of mitmdump")
    parser.add_argument("--config", type=Path, help="another config.yaml than the repository's (must exist)")
    args, rest = parser.parse_known_args(argv)
    config = args.config or USER_CONFIG
    if args.config is None:
        _first_start()  # before both children read it
    else:
        rest = ["--set", f"auth_config={config}", *rest]
    if busy := _upstream_busy(config):
        print(f"demo upstream not started: {busy}; the gate forwards to whatever listens there", flush=True)
        commands = []
    else:
        commands = [[sys.executable, str(ADDON / "demo_upstream.py"), "--config", str(config)]]
    gate = [_tool("mitmweb"), "--set", "web_host=127.0.0.1"] if args.web else [_tool("mitmdump")]
    commands.append([*gate, "-s", str(ADDON / "auth.py"), *rest])

    children: list[subprocess.Popen] = []
    stopping = []

    def stop(signum=None, frame=None) -> None:
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    _die_with_parent()  # this process too: if `just` is killed, we are told
    try:
        for command in commands:
            children.append(subprocess.Popen(command, preexec_fn=_die_with_parent))
        gate = children[-1]
        while not stopping and gate.poll() is None:
            time.sleep(0.1)
    finally:
        _stop_all(children)
    gate_rc = children[-1].returncode if children else 1
    return 0 if stopping else gate_rc


def _stop_all(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
