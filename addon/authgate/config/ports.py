"""Who holds a TCP port: the process listening on it, as the OS tells (Linux's /proc; None
elsewhere, or when the process belongs to another user). For the busy-port message, which
names the holder instead of guessing. No mitmproxy import."""

from __future__ import annotations

import os
from pathlib import Path

_LISTEN = "0A"  # /proc/net/tcp's state column: TCP_LISTEN


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def holder(port: int, proc: Path = Path("/proc")) -> str | None:
    """'mitmdump (pid 4242)' for the process listening on `port`; None when the OS does not say."""
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port, proc)}
    if not wanted:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = os.listdir(entry / "fd")
            if any(os.readlink(entry / "fd" / fd) in wanted for fd in fds):
                return f"{(entry / 'comm').read_text().strip()} (pid {entry.name})"
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return None
