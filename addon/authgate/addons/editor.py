"""One truth for the settings: what the auth_* options read (and mitmweb's
Options editor shows) is the value in force.

* An option nobody set follows config.yaml: its default is the file's value,
  renewed with every snapshot, so the editor shows it (and `auth_mode` no
  longer shows its first choice while the gate runs strict).
* A change made while the gate runs (the Options editor, the console,
  `PUT /options`) is saved into config.yaml, comments kept, as the original's
  GUI saves its settings, and applies to the next request; with
  `auth_save=false` it is a throwaway override instead, config.yaml untouched.
  Options given at start (`--set`) are throwaway overrides.
* Back to the file: empty the field, or pick the value the file holds (mitmweb
  shows it as "Default" under an override). The help under each field says
  what is in force and where it comes from, as auth.status does (both read
  fields.py). The key is never shown in full: its field stays empty
  and its help names the key's fingerprint.
"""

from __future__ import annotations

import contextlib
import logging
import os

from mitmproxy import ctx, exceptions

from authgate import mitmproxy_compat
from authgate.addons.config_file import overrides
from authgate.addons.state import GateAddon, GateState
from authgate.config import edit as config_edit
from authgate.config.fields import BY_OPTION, FIELDS, Field, file_of, in_force
from authgate.config.settings import ConfigError, Settings
from authgate.words import explain

log = logging.getLogger("authgate")


class OptionsEditor(GateAddon):
    name = "authgate.editor"

    def __init__(self, state: GateState) -> None:
        super().__init__(state)
        self._live = False  # after start: a change is a person's (saved, or a throwaway override)
        self._known: dict[str, object] = {}  # option -> the value set for it that the gate has taken in
        state.on_change(self._show)

    def load(self, loader) -> None:
        loader.add_option("auth_save", bool, True,
                          "Save a change of the auth_* options made while the gate runs (Options editor, "
                          "console, PUT /options) into config.yaml, comments kept, as the original's GUI "
                          "saves; false: such changes are throwaway overrides. --set at start never saves.")

    def running(self) -> None:
        # From now on a change is a person's; what was set at start (--set) is known.
        self._known = {f.option: mitmproxy_compat.explicit(ctx.options, f.option) for f in FIELDS}
        self._live = True

    def configure(self, updated: set[str]) -> None:
        state = self.state
        if state.inert or state.announcing or state.settings is None:
            return
        changed = [BY_OPTION[name] for name in sorted(updated) if name in BY_OPTION]
        if self._live and changed:
            self._apply(changed)
        elif updated & {"auth_save", "auth_lang"}:
            self._show(state.settings)

    def _apply(self, changed: list[Field]) -> None:
        """A person changed these options: save them to the file (or keep them
        as overrides), and let the ones equal to the file's value follow it.
        A value the gate already knows (mitmproxy's rollback after a refused
        change puts the old one back) is nobody's new change."""
        opts, file, known = ctx.options, self.state.files.as_read, self._known
        follow, save, keep = [], {}, {}
        for f in changed:
            value = mitmproxy_compat.explicit(opts, f.option)
            if value is not None and value == known.get(f.option):
                continue
            if value is None or value == f.of_file(file):
                follow.append(f)  # emptied, or the file's own value: follow the file
            elif opts.auth_save and self.state.writable:  # never the app's files (sources.py)
                try:
                    save[f] = f.for_file(value)
                except ValueError as e:
                    raise exceptions.OptionsError(str(e)) from None
            else:
                keep[f.option] = value  # a throwaway override (ConfigFile applies it)
        path = self.state.settings.config_path
        if save:
            try:
                config_edit.save(path, {f.key: value for f, value in save.items()})
            except ConfigError as e:
                raise exceptions.OptionsError(f"{e} (nothing saved)") from None
            except OSError as e:
                raise exceptions.OptionsError(
                    f"{path}: cannot save {', '.join(f.key for f in save)} ({e}). Fix: make the file "
                    f"writable, or set auth_save=false for a throwaway override") from None
            follow += save
        known.update(keep)
        known.update((f.option, None) for f in follow)
        if not follow:
            return
        with self._announcing():
            for f in follow:
                mitmproxy_compat.follow_default(opts, f.option)
            if save:
                names = ", ".join(f.key for f in save)
                self.state.files.reload_if_changed(
                    why=explain.phrase(self.state.lang, "why_saved", names=names, file=os.path.basename(path)),
                    over=overrides())
            mitmproxy_compat.announce(opts, [f.option for f in follow])

    def _show(self, s: Settings) -> None:
        """Every field reads (and shows) the value in force; its help says where it comes from."""
        file = self.state.files.as_read
        if file is None or self.state.inert:
            return
        opts = ctx.options
        if "auth_save" not in opts:  # before this addon's options exist
            return
        rows = in_force(s, file)
        changed = [f.option for f in FIELDS
                   if f.option in opts and mitmproxy_compat.show_option(
                       opts, f.option, None if f.secret else f.of_file(file), self._help(rows[f.option], s))]
        if changed:
            with self._announcing():
                mitmproxy_compat.announce(opts, changed)

    def _help(self, row, s: Settings) -> str:
        lang, f = self.state.lang, row.field
        name = file_of(f, s)
        words = lambda phrase, **kw: explain.phrase(lang, phrase, **kw)  # noqa: E731
        if f.secret:
            source = words("src_option") if row.overridden else words("src_file", file=name)
            what = "help_password" if f.option == "auth_admin_password" else "help_key"
            text = words(what, fingerprint=row.value, source=source, file=name)
        elif row.overridden:
            text = words("help_override", value=row.value, file=name, file_value=row.in_file)
        else:
            saving = ("help_file_app" if not self.state.writable
                      else "help_file" if ctx.options.auth_save else "help_file_throwaway")
            where = words("help_in_file" if row.given else "help_not_in_file", key=f.key, file=name, value=row.value)
            text = words(saving, where=where, file=name)
        if f.option == "auth_mode":
            text += " " + words("help_effective", mode=s.effective_mode,
                                why=explain.mode_why(s.auth_mode, s.allow_lan_access, lang))
        return text

    @contextlib.contextmanager
    def _announcing(self):
        """The gate's own option updates are no one's change: configure hooks let them by."""
        before, self.state.announcing = self.state.announcing, True
        try:
            yield
        finally:
            self.state.announcing = before
