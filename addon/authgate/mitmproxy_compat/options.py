"""Options shown as in force (``explicit``, ``show_option``, ``follow_default``,
``announce``): no public way changes an option's default or help once added,
so the gate sets ``_Option._default`` and ``.help`` (11.0 to 12.3 alike): an
option nobody set reads, and mitmweb shows, config.yaml's value, and mitmweb
shows the file's value as "Default" under an override. ``_Option.value`` is
``optmanager.unset`` when nobody set it."""

from __future__ import annotations

from mitmproxy import optmanager


def _option(options, name: str):
    opts = getattr(options, "_options", None)
    return opts.get(name) if isinstance(opts, dict) else None


def explicit(options, name: str):
    """The value someone set for an option (--set, the Options editor, an addon);
    None when it follows its default (or was set to None)."""
    opt = _option(options, name)
    value = getattr(options, name, None) if opt is None else getattr(opt, "value", optmanager.unset)
    return None if value is optmanager.unset else value


def show_option(options, name: str, default, help: str | None) -> bool:
    """Give the option this default (what it reads and shows while nobody sets
    it) and help; True when either changed (False too on a mitmproxy without them)."""
    opt = _option(options, name)
    if opt is None or not hasattr(opt, "_default"):
        return False
    changed = (opt._default, opt.help) != (default, help)
    opt._default, opt.help = default, help
    return changed


def follow_default(options, name: str) -> None:
    """Forget the value set for an option: it reads (and shows) its default again."""
    if (opt := _option(options, name)) is not None:
        opt.reset()


def announce(options, names) -> None:
    """Tell whoever shows options (mitmweb, the console, every configure hook) that these changed."""
    options.changed.send(updated=set(names))
