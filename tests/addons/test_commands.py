"""Commands (authgate/addons/commands.py): auth.explain, auth.status, auth.regenerate."""

import re

from authgate.config.read import read_config
from gate_harness import KEY, config, default_config, gate, send, upstream  # noqa: F401


async def test_explain_and_status_commands(gate):
    f = await send(gate, headers=[("Authorization", "Bearer sk-old"), ("x-api-key", KEY)])
    out = gate.commands.explain_flow(f)
    assert "Authorization: present, read (first present key header)" in out
    assert "x-api-key holds the right key but is never read" in out and KEY not in out
    assert "recorded when the flow ran" not in out
    gate.configure(auth_mode="off")
    out = gate.commands.explain_flow(f)
    assert "effective mode: off" in out and "recorded when the flow ran: 401 · strict" in out
    status = gate.commands.status()
    assert "effective mode: off (auth_mode=off)" in status and "flows: 0 passed, 1 denied" in status
    assert "options override: auth_mode" in status and KEY not in status and "sk-…cdef" in status


async def test_regenerate_saves_a_new_key_that_wins_over_the_option(gate, config):
    gate.configure(auth_api_key="sk-option")
    out = gate.commands.regenerate()
    key = read_config(config).api_key
    assert re.fullmatch(r"sk-[0-9a-f]{32}", key) and key != KEY and key not in out
    assert "the auth_api_key option override was cleared" in out
    assert gate.settings.api_key == key and gate.tctx.options.auth_api_key is None
    assert (await send(gate, headers=[("x-api-key", KEY)])).response.status_code == 401  # the old key stops


async def test_explain_shows_a_query_key_as_its_fingerprint(gate):
    f = await send(gate, f"/v1beta/models?key={KEY}&alt=sse")
    out = gate.commands.explain_flow(f)
    assert out.startswith("GET /v1beta/models?key=<sk-…cdef (35 chars)>&alt=sse") and KEY not in out
