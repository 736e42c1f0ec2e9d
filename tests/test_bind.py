"""Bind (authgate/bind.py): where the gate listens, following the snapshot; the user's flags win."""

from gate_harness import config, default_config, gate, running_gate, upstream, write  # noqa: F401


def test_listens_where_the_config_says(gate):
    assert gate.settings.auth_mode == "strict"
    opts = gate.tctx.options
    assert opts.mode == [f"reverse:http://127.0.0.1:{gate.settings.upstream.port}@127.0.0.1:8045"]
    assert opts.connection_strategy == "lazy"


def test_lan_access_binds_all_interfaces_and_port_change_rebinds(gate, config, upstream):
    write(config, lan=True, port=9000, upstream_port=upstream)
    gate.state.reload_if_changed()
    assert gate.tctx.options.mode == [f"reverse:http://127.0.0.1:{upstream}@0.0.0.0:9000"]


async def test_explicit_flags_win_over_the_file(config):
    # async: both contexts share the running loop (12's taddons closes a loop it made itself)
    with running_gate(config, listen_host="127.0.0.2", listen_port=7000) as g:
        assert g.tctx.options.mode[0].endswith("@127.0.0.2:7000")
    with running_gate(config, mode=["reverse:http://127.0.0.1:1@5555"]) as g:
        assert g.tctx.options.mode == ["reverse:http://127.0.0.1:1@5555"]
