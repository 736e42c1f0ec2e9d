"""OptionsEditor (authgate/addons/editor.py): the auth_* options read, and show, the value in force; a
change made while the gate runs is saved into config.yaml (comments kept) or, with auth_save off, is
a throwaway override; auth.status, the start-up line and the options' help say the same.
A live mitmweb, its API and a browser: test_web_settings.py."""

import logging
from pathlib import Path

import pytest
from mitmproxy import exceptions, optmanager

from authgate.config import edit as config_edit
from authgate.config.paths import TEMPLATE
from authgate.config.read import read_config
from authgate.rules.credentials import fingerprint
from gate_harness import KEY, config, default_config, running_gate, send, upstream, write  # noqa: F401

SHIPPED = TEMPLATE


@pytest.fixture
def commented(tmp_path, upstream):
    """The shipped config.yaml, comments and all, with a key and this test's upstream."""
    path = tmp_path / "config.yaml"
    text = SHIPPED.read_text(encoding="utf-8").replace("http://127.0.0.1:8046", f"http://127.0.0.1:{upstream}")
    path.write_text(text.replace("proxy:\n", f"proxy:\n  api_key: {KEY}\n", 1), encoding="utf-8")
    return path


def shown(g, name: str) -> dict:
    """An option as mitmweb's Options editor gets it (GET /options)."""
    return optmanager.dump_dicts(g.tctx.options, [name])[name]


def live(g):
    g.editor.running()  # as mitmproxy calls it once the proxy runs: from now on a change is a person's
    return g


async def test_options_nobody_set_read_and_show_the_files_values(config, upstream):
    with running_gate(config) as g:
        opts = g.tctx.options
        assert (opts.auth_mode, opts.auth_allow_lan_access, opts.auth_port, opts.auth_profile) == (
            "strict", "false", 8045, "faq")
        assert opts.auth_upstream == f"http://127.0.0.1:{upstream}" and opts.auth_upstream_timeout == 300
        assert opts.auth_api_key is None  # the key is never shown in full...
        assert fingerprint(KEY) in shown(g, "auth_api_key")["help"]  # ...its fingerprint is
        mode = shown(g, "auth_mode")
        assert mode["value"] == mode["default"] == "strict"  # mitmweb shows no "Default:" line
        assert mode["help"].startswith("proxy.auth_mode in config.yaml: strict, in force. A change here is saved")
        assert "Effective mode now: strict (auth_mode=strict)" in mode["help"]
        # A field the file does not write out is its default, and the help says so, not "in config.yaml"
        assert shown(g, "auth_profile")["help"].startswith(
            "proxy.profile is not in config.yaml: the default, faq, in force.")
        assert shown(g, "auth_version")["help"].startswith(
            "proxy.version is not in config.yaml: the default, 4.5.8, in force.")
        password = shown(g, "auth_admin_password")["help"]
        assert password.startswith("The admin password in force: (none) (from config.yaml)") and " key" not in password
        write(config, mode="auto", lan=True, upstream_port=upstream)
        await send(g)
        assert (opts.auth_mode, opts.auth_allow_lan_access) == ("auto", "true")
        assert "Effective mode now: all_except_health" in shown(g, "auth_mode")["help"]


async def test_a_change_while_running_is_saved_comments_kept(commented, caplog):
    caplog.set_level(logging.INFO)
    with running_gate(commented) as g:
        live(g).configure(auth_mode="strict")
        text = commented.read_text(encoding="utf-8")
        assert "  auth_mode: strict          # off | strict | all_except_health | auto\n" in text
        assert text.count("#") == SHIPPED.read_text(encoding="utf-8").count("#")
        assert g.settings.auth_mode == "strict" and g.settings.overridden == ()
        assert g.tctx.options.auth_mode == "strict" and shown(g, "auth_mode")["default"] == "strict"
        assert "auth gate (proxy.auth_mode saved to config.yaml): mode strict" in caplog.text
        assert (await send(g)).response.status_code == 401  # the next request
        g.configure(auth_allow_lan_access="true", auth_port=8044)
        cfg = read_config(commented)
        assert (cfg.allow_lan_access, cfg.port) == (True, 8044) and g.settings.overridden == ()
        g.configure(auth_api_key="sk-typed-in-the-editor")
        assert read_config(commented).api_key == "sk-typed-in-the-editor"
        assert g.tctx.options.auth_api_key is None and "sk-…itor" in shown(g, "auth_api_key")["help"]


def test_a_refused_value_is_not_saved_and_the_start_override_stays(commented):
    before = commented.read_text(encoding="utf-8")
    with running_gate(commented, auth_mode="off", auth_port=0) as g:  # as --set at start
        live(g)
        with pytest.raises(exceptions.OptionsError, match="'bogus' is not an auth mode.*nothing saved"):
            g.configure(auth_mode="bogus")
        with pytest.raises(exceptions.OptionsError, match="'yes' is not true or false"):
            g.configure(auth_allow_lan_access="yes")
        # mitmproxy put the old values back (and said so to every addon): none of them is saved
        assert commented.read_text(encoding="utf-8") == before
        assert g.settings.auth_mode == "off" and set(g.settings.overridden) == {"auth_mode", "port"}
        assert "an option override, not saved" in g.commands.status()


def test_throwaway_overrides_and_the_way_back_to_the_file(commented):
    before = commented.read_text(encoding="utf-8")
    with running_gate(commented) as g:
        live(g).configure(auth_save=False)
        g.configure(auth_mode="strict")
        assert commented.read_text(encoding="utf-8") == before
        assert g.settings.auth_mode == "strict" and g.settings.overridden == ("auth_mode",)
        mode = shown(g, "auth_mode")
        assert (mode["value"], mode["default"]) == ("strict", "auto")  # mitmweb: "Default: auto"
        assert mode["help"].startswith("In force: strict, an option override, not saved. config.yaml says auto")
        g.configure(auth_mode="auto")  # picking the file's value: follow the file again
        assert g.settings.overridden == () and shown(g, "auth_mode")["help"].startswith("proxy.auth_mode in")
        g.configure(auth_upstream="http://127.0.0.1:1")
        assert g.settings.overridden == ("upstream",)
        g.configure(auth_upstream=None)  # an emptied field: follow the file again
        assert g.settings.overridden == () and g.tctx.options.auth_upstream == read_config(commented).upstream.url


def test_status_start_up_line_and_help_agree(commented, caplog):
    caplog.set_level(logging.INFO)
    with running_gate(commented, auth_port=0) as g:
        status = g.commands.status().splitlines()
        assert "port: 0 (an option override, not saved; config.yaml says 8045)" in status
        assert "auth_mode: auto (from config.yaml)" in status
        assert "config: %s (options override: port)" % commented in status
        assert status[-2].startswith("Options editor: a change is saved to config.yaml, comments kept")
        assert "port 0, options override port (not saved)" in caplog.text  # the start-up line
        assert shown(g, "auth_port")["help"] == ("In force: 0, an option override, not saved. config.yaml says 8045 "
                                                 "(shown as Default): pick that value, or empty the field, to follow "
                                                 "the file again.")


def test_the_start_up_line_speaks_auth_lang(commented, caplog):
    caplog.set_level(logging.INFO)
    with running_gate(commented, auth_lang="fr") as g:
        assert "auth gate (chargé) : mode auto → off (allow_lan_access=false)" in caplog.text
        assert g.commands.status().startswith("mode effectif : off")
        assert "en vigueur" in shown(g, "auth_mode")["help"]


def test_a_file_that_cannot_be_written_refuses_the_change_and_says_how(commented, monkeypatch):
    def read_only(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(config_edit, "replace_file", read_only)
    with running_gate(commented) as g:
        with pytest.raises(exceptions.OptionsError, match="cannot save proxy.auth_mode .*auth_save=false"):
            live(g).configure(auth_mode="strict")
        assert g.settings.auth_mode == "auto" and g.tctx.options.auth_mode == "auto"


def test_with_the_apps_file_in_force_nothing_is_written_and_the_editor_says_so(tmp_path):
    from appfiles import gui_config, snapshot_dir, write_gui_config
    data = tmp_path / "abv"
    data.mkdir()
    write_gui_config(data / "gui_config.json", gui_config(mode="all_except_health", key=KEY))
    before = snapshot_dir(data)
    with running_gate(data / "gui_config.json") as g:
        assert g.tctx.options.auth_mode == "all_except_health"  # the app's value, shown as in force
        assert shown(g, "auth_mode")["help"].startswith(
            "proxy.auth_mode in gui_config.json: all_except_health, in force. gui_config.json is the app's and "
            "never written: a change here is a throwaway override.")
        live(g).configure(auth_mode="strict")
        assert g.settings.auth_mode == "strict" and g.settings.overridden == ("auth_mode",)
        assert shown(g, "auth_mode")["help"].startswith("In force: strict, an option override, not saved. "
                                                        "gui_config.json says all_except_health")
        assert "auth_mode: strict (an option override, not saved; gui_config.json says all_except_health)" in \
            g.commands.status().splitlines()
        g.configure(auth_mode="all_except_health")  # the app's value again: follow the file
        assert g.settings.overridden == ()
    assert snapshot_dir(data) == before
