"""The gate's decisions, one JSON line per flow, for whoever watches a client through it.

    mitmdump -s addon/auth.py -s addon/decisions_log.py --set decisions_log=decisions.jsonl

Load it after auth.py: it writes when the response is complete (or the flow failed), once the
gate has put the client's own headers back on the flow. Each line: when (time.time()), method,
path (without the query), status (null when the flow failed), the key headers as the client sent
them (their values as fingerprints: a key never lands in the file), and the gate's decision
(outcome, winner, reason, shadowed). `just demo --agents` (agent_demo.py) and the agents' live
tests read it to tell which header an agent sent and which one the gate read.
"""

from __future__ import annotations

import json
import time
from typing import Optional

from mitmproxy import ctx, http

from authgate.rules.credentials import fingerprint
from authgate.rules.key_headers import KEY_HEADERS

BEARER = "Bearer"


def sent_form(value: str) -> str:
    """A key header's value with the key as its fingerprint: `Bearer sk-…5678 (33 chars)`, and
    `Bearer` glued to the fingerprint when the client left out the space."""
    if value.startswith(BEARER + " "):
        return BEARER + " " + fingerprint(value[len(BEARER) + 1:])
    if value.startswith(BEARER):
        return BEARER + fingerprint(value[len(BEARER):])
    return fingerprint(value)


def record(flow: http.HTTPFlow) -> dict:
    decision = flow.metadata.get("auth") or {}
    sent = {name: sent_form(flow.request.headers[name]) for name in KEY_HEADERS if name in flow.request.headers}
    return {"time": time.time(), "method": flow.request.method, "path": flow.request.path.partition("?")[0],
            "status": flow.response.status_code if flow.response else None, "sent": sent,
            **{k: decision.get(k) for k in ("outcome", "winner", "reason", "shadowed")}}


class DecisionsLog:
    def load(self, loader) -> None:
        loader.add_option("decisions_log", Optional[str], None, "append each flow's decision to this JSON-lines file")

    def _write(self, flow: http.HTTPFlow) -> None:
        if ctx.options.decisions_log:
            with open(ctx.options.decisions_log, "a", encoding="utf-8") as f:
                f.write(json.dumps(record(flow)) + "\n")  # one line per write: read() takes whole lines only

    def response(self, flow: http.HTTPFlow) -> None:
        self._write(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._write(flow)


def read(path, skip: int = 0) -> list[dict]:
    """The decisions logged in `path` after the first `skip` (none when the file is not there yet;
    a line still being written is left for the next read)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()[skip:]]



def settled(path, skip: int = 0, quiet: float = 0.3, limit: float = 5.0) -> list[dict]:
    """The decisions after `skip` once none came for `quiet` seconds (at most `limit`): a streamed
    answer is logged when its stream ends, which can be just after the client has exited."""
    deadline = time.monotonic() + limit
    seen = read(path, skip)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = read(path, skip)
        if len(now) == len(seen):
            break
        seen = now
    return seen


addons = [DecisionsLog()]

