"""Explain one request's auth decision without a running proxy.

    just explain -- -H 'Authorization: Bearer<key>' [-X METHOD] [PATH or URL]
    just explain -- curl -i http://127.0.0.1:8045/v1/models -H 'x-api-key: sk-...'
    PYTHONPATH=addon python3 -m authgate.cli.explain -H 'x-api-key: sk-...' /v1/models

Flags read like curl's, and a pasted curl line works as it is (curl_line.py:
its display flags are ignored, a full URL gives its path). The settings come
from config.yaml (the repository's, or --config), with --mode, --lan/--no-lan,
--key and --profile on top; or from the app's gui_config.json (--config
antigravity, a .json path, or config.yaml's app_config), as the gate reads it
(sources.py). The last line says which settings were assumed. Where they turn
auth off, it also says what the request gets once auth is on (strict), as a
real proxy that answered 401 has it. The words are the ones the gate's 401 body
uses. Nothing is written anywhere.

With --profile v4 (v4.5.8): --admin-password, the user tokens of config.yaml's
`tokens:` list or of the app's own database (--tokens-db, read-only), and
--now for token expiry and curfew; X-Forwarded-For / X-Real-IP headers give
the client IP, as in the original.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import datetime
from pathlib import Path

from authgate.cli import curl_line
from authgate.config import sources
from authgate.config.appconfig import read_app_config
from authgate.config.paths import TEMPLATE, USER_CONFIG
from authgate.config.read import merge, read_config
from authgate.config.settings import ConfigError, Overrides
from authgate.config.token_db import SqliteTokenStore
from authgate.rules.common import MODES, PROFILES, RequestView, is_health_path
from authgate.rules.credentials import fingerprint
from authgate.rules.decide import decide
from authgate.rules.tokens import MemoryTokenStore
from authgate.words import answers, explain

# The user's config.yaml; before the first start made it, the shipped defaults (nothing is written).
DEFAULT_CONFIG = USER_CONFIG if USER_CONFIG.exists() else TEMPLATE


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="just explain --", description=__doc__.split("\n\n")[0])
    p.add_argument("path", nargs="?", default="/v1/models",
                   help="request path or full URL (default /v1/models)")
    p.add_argument("-H", "--header", action="append", default=[], metavar="'Name: value'",
                   help="a request header, as with curl (repeat for several, in order)")
    p.add_argument("-X", "--request", default="GET", metavar="METHOD", help="HTTP method (default GET)")
    p.add_argument("--config", default=str(DEFAULT_CONFIG),
                   help="config.yaml to read (default: the repository's), or the app's gui_config.json "
                        "(antigravity: the app's own)")
    p.add_argument("--mode", choices=MODES, help="override proxy.auth_mode")
    lan = p.add_mutually_exclusive_group()
    lan.add_argument("--lan", dest="lan", action="store_true", default=None, help="allow_lan_access: true")
    lan.add_argument("--no-lan", dest="lan", action="store_false", help="allow_lan_access: false")
    p.add_argument("--key", help="override proxy.api_key (use \"\" for an empty key)")
    p.add_argument("--profile", choices=PROFILES, help="override proxy.profile")
    p.add_argument("--admin-password", help="v4: override proxy.admin_password (\"\" for none)")
    p.add_argument("--tokens-db", metavar="PATH",
                   help="v4: the app's user_tokens.db (read-only) instead of config.yaml's tokens: list")
    p.add_argument("--now", type=parse_now, metavar="TIME",
                   help="v4: the time for token expiry and curfew: Unix seconds or ISO 8601 (default: now)")
    p.add_argument("--lang", default="en", choices=explain.LANGUAGES, help="language of the explanation")
    return p


def parse_now(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected Unix seconds or ISO 8601, e.g. "
                                         "2026-12-01T23:30+08:00") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a time zone, e.g. +08:00 (Beijing time) or Z")
    return when.timestamp()


def parse_header(text: str) -> tuple[bytes, bytes]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"-H {text!r}: expected 'Name: value'")
    # As on the wire: UTF-8 bytes, so a smart quote is the non-ASCII it really is.
    return name.strip().encode(), value.strip(" ").encode("utf-8", "surrogateescape")


def run(argv: list[str]) -> str:
    if argv[:1] == ["--"]:  # `just explain -- ...` passes the separator through
        argv = argv[1:]
    argv, read = curl_line.normalize(argv)  # a pasted curl line reads as these flags
    args = parser().parse_args(argv)
    headers = tuple(parse_header(h) for h in args.header)
    method = args.request.upper()
    source = sources.source_for(args.config, str(DEFAULT_CONFIG))
    cfg = read_config(source.config)
    over = Overrides(auth_mode=args.mode, api_key=args.key, allow_lan_access=args.lan, profile=args.profile,
                     admin_password=args.admin_password)
    app_file = sources.app_path(source, cfg)
    app = read_app_config(app_file) if app_file else None
    if app is not None:  # the app's file gives the auth fields, its database the user tokens
        settings = sources.rebuild(sources.Snapshot(None, cfg, app, ()), source, over).settings
        args.config = app.path
        if args.tokens_db is None and Path(app.token_db).exists():
            args.tokens_db = app.token_db
    else:
        settings = merge(cfg, over, args.config)
    lang = args.lang
    words = lambda phrase, **kw: explain.phrase(lang, phrase, **kw)  # noqa: E731
    notes = [f"note: {line}" for line in read]
    if "#" in args.path:  # as the gate decides (wire.cut_fragment): the original's http crate drops it
        notes.append(f"note: {args.path}: the gate decides on {args.path.partition('#')[0]} (the fragment is cut)")
        args.path = args.path.partition("#")[0]
    ungenerated = args.key is None and cfg.api_key is None and app is None
    if ungenerated:
        notes.append(words("cli_no_key", file=args.config))
        settings = dataclasses.replace(settings, api_key="\x00")  # a key no header can carry
    store = None
    if settings.profile == "v4":
        store = SqliteTokenStore(args.tokens_db) if args.tokens_db else MemoryTokenStore(settings.tokens)

    def explained(s, indent: str = "") -> list[str]:
        d = decide(RequestView(method, args.path, headers), s, store, args.now)
        lines = explain.trace(d, method, args.path, lang).splitlines()
        lines += ["", words("cli_comment", comment=explain.comment(d, lang))]
        if not d.allowed:
            lines.append(f"{d.status}: {explain.message(d, lang)}")
            if s.profile == "v4":
                bare = answers.denial(d, args.path, lang, explained=False)
                lines.append(f"the original's answer: {bare.status} " + (bare.body.decode() or "(empty body)"))
        return [indent + line if line else line for line in lines]

    lines = explained(settings)
    if settings.effective_mode == "off":
        # The person asking may have a 401 from a proxy whose auth is on: say what this request gets
        # there (on a health path the two modes that turn auth on differ).
        on = ("strict", "all_except_health") if is_health_path(args.path, settings.profile) else ("strict",)
        for mode in on:
            lines += ["", words("cli_once_on", mode=mode)]
            lines += explained(dataclasses.replace(settings, auth_mode=mode), "  ")[1:]
    if settings.profile == "v4":
        for level, line in settings.startup_log:
            lines.append(f"headless start ({level}): {line}")
    flags = [f"{flag} {value}" for flag, value in (("--mode", args.mode), ("--key", fingerprint(args.key)
             if args.key is not None else None), ("--profile", args.profile)) if value is not None]
    if args.lan is not None:
        flags.append("--lan" if args.lan else "--no-lan")
    lines += ["", words("cli_assumed", file=args.config,
                        overrides=words("cli_assumed_overrides", flags=" ".join(flags)) if flags else "",
                        mode=settings.auth_mode, lan=str(settings.allow_lan_access).lower(),
                        effective=settings.effective_mode,
                        fingerprint=fingerprint(None if ungenerated else settings.api_key), profile=settings.profile)]
    return "\n".join(lines + notes)


def main(argv: list[str] | None = None) -> int:
    try:
        print(run(sys.argv[1:] if argv is None else argv))
    except (ConfigError, ValueError) as e:
        print(f"explain: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
