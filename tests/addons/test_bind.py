"""Bind (authgate/addons/bind.py): where the gate listens, following the snapshot; the user's flags win."""

import logging

from gate_harness import config, default_config, gate, running_gate, upstream, write  # noqa: F401


def test_listens_where_the_config_says(gate):
    assert gate.settings.auth_mode == "strict"
    opts = gate.tctx.options
    assert opts.mode == [f"reverse:http://127.0.0.1:{gate.settings.upstream.port}@127.0.0.1:8045"]
    assert opts.connection_strategy == "lazy"


def test_lan_access_binds_all_interfaces_and_port_change_rebinds(gate, config, upstream):
    write(config, lan=True, port=9000, upstream_port=upstream)
    gate.state.files.reload_if_changed()
    assert gate.tctx.options.mode == [f"reverse:http://127.0.0.1:{upstream}@0.0.0.0:9000"]


async def test_explicit_flags_win_over_the_file(config):
    # async: both contexts share the running loop (12's taddons closes a loop it made itself)
    with running_gate(config, listen_host="127.0.0.2", listen_port=7000) as g:
        assert g.tctx.options.mode[0].endswith("@127.0.0.2:7000")
    with running_gate(config, mode=["reverse:http://127.0.0.1:1@5555"]) as g:
        assert g.tctx.options.mode == ["reverse:http://127.0.0.1:1@5555"]


async def test_headless_listens_on_all_interfaces_and_says_so_loudly(tmp_path, upstream, monkeypatch, caplog):
    # lib.rs:255-338: the headless start sets allow_lan_access unless ABV_BIND_LOCAL_ONLY
    caplog.set_level(logging.INFO)
    for name in ("ABV_BIND_LOCAL_ONLY", "ABV_API_KEY", "API_KEY", "ABV_WEB_PASSWORD", "WEB_PASSWORD",
                 "ABV_AUTH_MODE", "AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    path = write(tmp_path / "config.yaml", mode="off", upstream_port=upstream)
    path.write_text(path.read_text() + "headless: true\n")
    with running_gate(path) as g:
        assert g.tctx.options.mode[0].endswith("@0.0.0.0:8045") and g.settings.effective_mode == "all_except_health"
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert any(w.startswith("headless: true: the gate listens on 0.0.0.0:8045, every network interface")
                   for w in warnings), warnings
        assert ("headless start, as the original logs it: Headless mode: Forcing auth_mode to AllExceptHealth "
                "for Web UI security") in caplog.messages
    monkeypatch.setenv("ABV_BIND_LOCAL_ONLY", "1")
    caplog.clear()
    with running_gate(path) as g:
        assert g.tctx.options.mode[0].endswith("@127.0.0.1:8045")
        assert "every network interface" not in caplog.text
