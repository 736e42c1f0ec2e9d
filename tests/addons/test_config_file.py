"""ConfigFile (authgate/addons/config_file.py) and GateState (authgate/addons/state.py): the options, config.yaml
read at start and on every change, the generated key, bad values refused or kept out."""

import logging
import os
import re
import shutil

import pytest
from mitmproxy import exceptions
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons

import auth
from authgate.config.read import read_config
from gate_harness import KEY, config, default_config, gate, req_flow, running_gate, send, upstream, write  # noqa: F401


def test_options_override_live_and_bad_values_roll_back(gate):
    gate.configure(auth_mode="off")
    assert gate.settings.auth_mode == "off" and gate.settings.overridden == ("auth_mode",)
    with pytest.raises(exceptions.OptionsError, match="auth_mode: 'bogus'.*off, strict"):
        gate.configure(auth_mode="bogus")
    assert gate.settings.auth_mode == "off" and gate.tctx.options.auth_mode == "off"
    with pytest.raises(exceptions.OptionsError, match="auth_allow_lan_access"):
        gate.configure(auth_allow_lan_access="yes")
    gate.configure(auth_allow_lan_access="true", auth_mode="auto")
    assert gate.settings.effective_mode == "all_except_health"
    gate.configure(auth_api_key="sk-other")
    assert gate.settings.api_key == "sk-other"


def test_invalid_config_at_start_says_so_once_and_never_listens(tmp_path, caplog):
    path = tmp_path / "config.yaml"
    path.write_text("proxy:\n  auth_mode: sometimes\n")
    with running_gate(path) as g:
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [f"{path}: proxy.auth_mode: 'sometimes' is not an auth mode. "
                          "Fix: use one of off, strict, all_except_health, auto"]
        assert g.tctx.options.server is False  # not even mitmproxy's default proxy on *:8080
        assert g.settings is None


def test_missing_key_is_generated_written_back_and_kept(tmp_path, caplog):
    path = write(tmp_path / "config.yaml", key=None)
    caplog.set_level(logging.INFO)
    with running_gate(path) as g:
        key = g.settings.api_key
        assert re.fullmatch(r"sk-[0-9a-f]{32}", key)
        assert read_config(path).api_key == key
        g.state.files.reload_if_changed()
        assert g.settings.api_key == key  # kept, not generated again
    assert key not in caplog.text and key[-4:] in caplog.text


# ---- hot reload

async def test_edits_apply_to_the_next_request(gate, config, upstream):
    assert (await send(gate, headers=[("x-api-key", "sk-new")])).response.status_code == 401
    write(config, key="sk-new", upstream_port=upstream)
    assert (await send(gate, headers=[("x-api-key", "sk-new")])).response is None
    assert (await send(gate, headers=[("x-api-key", KEY)])).response.status_code == 401  # old key stops


async def test_invalid_edit_keeps_the_last_good_config_and_says_so_once(gate, config, caplog):
    caplog.set_level(logging.INFO)
    config.write_text("proxy:\n  auth_mode: offf\n")
    for _ in range(3):
        f = await send(gate)
        assert f.response.status_code == 401  # still strict
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith(f"{config}: proxy.auth_mode: 'offf' is not an auth mode")
    assert "keeping the last good config" in errors[0] and KEY not in errors[0]
    config.unlink()
    await send(gate)
    assert "the file is gone; keeping the last good config" in caplog.text
    assert gate.settings.auth_mode == "strict"


async def test_option_overrides_survive_a_reload(gate, config, upstream):
    gate.configure(auth_mode="off")
    write(config, mode="strict", key="sk-new", upstream_port=upstream)
    f = await send(gate)
    assert f.response is None and gate.settings.api_key == "sk-new" and gate.settings.auth_mode == "off"


def test_script_reads_config_yaml_beside_its_folder_by_default(tmp_path, upstream):
    # The script as mitmproxy loads it, in a copy of the repository layout, so
    # the default auth_config (<repo>/config.yaml) is the copy's, never ours.
    addon_dir = os.path.dirname(auth.__file__)
    (tmp_path / "addon").mkdir()
    shutil.copy(os.path.join(addon_dir, "auth.py"), tmp_path / "addon")
    config = write(tmp_path / "config.yaml", key=None, upstream_port=upstream)
    with taddons.context() as tctx:
        tctx.master.addons.add(proxyserver.Proxyserver())
        sc = tctx.script(str(tmp_path / "addon" / "auth.py"))
        assert tctx.options.auth_config == str(config)
        assert re.fullmatch(r"sk-[0-9a-f]{32}", read_config(config).api_key)  # generated into the copy
        assert sc.addons[0].state.settings.auth_mode == "strict"


async def test_the_edit_that_fixes_a_bad_one_says_the_file_is_valid_again(gate, config, upstream, caplog):
    caplog.set_level(logging.INFO)
    config.write_text("proxy:\n  auth_mode: offf\n")
    await send(gate)
    write(config, upstream_port=upstream)  # the same settings as before the bad edit
    assert (await send(gate)).response.status_code == 401
    lines = [r.getMessage() for r in caplog.records if "valid again" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("auth gate (config.yaml is valid again): mode strict")
    write(config, mode="off", upstream_port=upstream)  # an ordinary edit after that: no "valid again"
    await send(gate)
    assert sum("valid again" in r.getMessage() for r in caplog.records) == 1
    assert "auth gate (config.yaml changed): mode off" in caplog.text


# ---- read off the event loop; a watcher nothing ends (issue #11)

async def test_refresh_reads_in_a_thread_and_callers_share_one_read(gate, config, upstream, monkeypatch):
    import asyncio
    import threading

    from authgate.config import sources
    threads, real = [], sources.read

    def spy(source, over):
        threads.append(threading.current_thread())
        return real(source, over)

    monkeypatch.setattr(sources, "read", spy)
    write(config, key="sk-new", upstream_port=upstream)
    assert gate.state.files.stale()
    await asyncio.gather(*(gate.state.files.refresh() for _ in range(5)))
    assert len(threads) == 1 and threads[0] is not threading.main_thread()
    assert gate.settings.api_key == "sk-new" and not gate.state.files.stale()


async def test_a_read_that_hangs_holds_a_request_at_most_read_wait(gate, config, upstream, monkeypatch, caplog):
    import asyncio
    import time

    from authgate.addons import snapshots
    from authgate.config import sources
    monkeypatch.setattr(snapshots, "READ_WAIT", 0.2)
    release = asyncio.Event()
    real = sources.read

    def slow(source, over):  # (a file on a stalled network share, say)
        asyncio.run_coroutine_threadsafe(release.wait(), loop).result(5)
        return real(source, over)

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(sources, "read", slow)
    write(config, key="sk-new", upstream_port=upstream)
    for _ in range(3):
        t0 = time.monotonic()
        f = req_flow(headers=[("x-api-key", KEY)])
        waiting = gate.gatekeeper.requestheaders(f)
        assert waiting is not None  # the file changed: the hook waits for the read (mitmproxy awaits it)
        await waiting
        assert time.monotonic() - t0 < 0.5 and f.response is None  # decided under the last good config
    assert caplog.text.count("still being read after 0.2 s") == 1
    release.set()
    for _ in range(50):
        if gate.settings.api_key == "sk-new":
            break
        await asyncio.sleep(0.02)
    assert gate.settings.api_key == "sk-new"


async def test_the_watcher_survives_any_exception_and_says_so_once(gate, monkeypatch, caplog):
    import asyncio

    from authgate.addons import config_file
    monkeypatch.setattr(config_file, "RELOAD_INTERVAL", 0.01)
    calls = []

    async def refresh():
        calls.append(1)
        if len(calls) in (2, 3, 4, 6):
            raise MemoryError("no memory left") if len(calls) < 5 else RuntimeError("other")

    monkeypatch.setattr(gate.state.files, "refresh", refresh)
    await gate.config_file.running()
    for _ in range(200):
        if len(calls) >= 8:
            break
        await asyncio.sleep(0.01)
    gate.config_file.done()
    assert len(calls) >= 8  # still watching
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 2, failures  # once per run of failures
    assert "MemoryError: no memory left" in failures[0] and "RuntimeError: other" in failures[1]
