"""The documentation names only what exists: README.md and docs/*.md, every `just` recipe, every
flag of every command they show (`just run`, `mitmdump`, `python3 addon/run.py`, ...), every
`--set` option and `auth_*` name, every `auth.*` command, every repository path, every link and
anchor between the pages; and docs/architecture.md's layout lists every module there is.

The options and commands are the ones mitmproxy and the gate declare when their addons load
(mitmproxy's own masters, the gate's addons under taddons), the flags those of the programs' own
argument parsers: nothing here is a list kept by hand, except the few names a newer mitmproxy
adds (NEWER) and the pages other branches are writing (PENDING)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import shlex
import sys
from pathlib import Path

import pytest
from mitmproxy import options as moptions
from mitmproxy import version as mversion
from mitmproxy.addons import proxyserver
from mitmproxy.test import taddons
from mitmproxy.tools import cmdline
from mitmproxy.tools.dump import DumpMaster
from mitmproxy.tools.web.master import WebMaster

import auth
from authgate.config.paths import REPO

README_LIMIT = 250  # lines: the "a newcomer reads it in five minutes (at most about 250 lines)"
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Pages linked from these ones that another branch is writing; each leaves this set when it lands.
PENDING: set[str] = set()
# Option names of a newer mitmproxy than the one running (checked where the running one has them).
NEWER = {"web_password": (11, 1, 2)}
# The user's own file: made on first start, never tracked (so never in the repository).
UNTRACKED = {"config.yaml"}

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
_SPAN = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_PROGRAM = re.compile(r"^(?:\$ )?(?:[A-Z_]+=\S+ )*(just|mitmdump|mitmweb|python3)(?:\s|$)")
_REPO_PATH = re.compile(r"(?<![\w./<-])((?:addon|tests|docs|constraints|\.ci)/[\w./*<>-]*|requirements\.txt|justfile"
                        r"|pyproject\.toml|config\.yaml)(?![\w/-])")
_AUTH_NAME = re.compile(r"(?<![\w.-])auth_[a-z_]+\b")
_COMMAND = re.compile(r"(?<![\w./])auth\.(?!rs\b|py\b)[a-z]+\b")


# ---------------------------------------------------------------------------- the pages, read


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def fences(text: str) -> list[str]:
    return _FENCE.findall(text)


def spans(text: str) -> list[str]:
    return _SPAN.findall(_FENCE.sub("", text))


def code_of(path: Path) -> list[str]:
    """Every piece of code on a page: each inline span, and each line of each fenced block
    (a line ending in a backslash joined with the next, as a shell reads it)."""
    text = path.read_text(encoding="utf-8")
    lines = [line.strip() for block in fences(text) for line in block.replace("\\\n", " ").splitlines()]
    return spans(text) + [line for line in lines if line]


def commands_of(path: Path) -> list[list[str]]:
    """The command lines a page shows, as the shell splits them (comments off, `$ ` off,
    leading VAR=value off, `a && b` as two commands)."""
    out = []
    for code in code_of(path):
        if not _PROGRAM.match(code) or code.startswith("python3 -c "):
            continue  # not a command; or an SDK line, which tests/live/test_sdk_answers.py runs
        words = shlex.split(code.removeprefix("$ "), comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", ";", "&"):
                if command:
                    out.append(command)
                command = []
            elif command or not re.fullmatch(r"[A-Z_]+=\S*", word):
                command.append(word)
    return out


# ---------------------------------------------------------------------------- what exists


def recipes() -> set[str]:
    text = (REPO / "justfile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*)(?:[ \t][^:\n=]*)?:(?!=)", text, re.M))


class _Parser(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


@contextlib.contextmanager
def _no_stray_handlers():
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)


def flags_of(main, *args) -> set[str]:
    """The option strings of the parser a program's main() builds (caught as it parses)."""
    def caught(self, *a, **k):
        raise _Parser(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_known_args", caught)
        mp.setattr(sys, "argv", ["prog"])
        try:
            main(*args)
        except _Parser as got:
            return set(got.parser._option_string_actions)
    raise AssertionError(f"{main} parsed no arguments")


@pytest.fixture(scope="module")
def mitmproxy_tools():
    """mitmproxy's own options and each tool's command-line flags, as its masters declare them."""
    async def build():
        tools = {}
        for name, master, parser in (("mitmdump", DumpMaster, cmdline.mitmdump),
                                     ("mitmweb", WebMaster, cmdline.mitmweb)):
            opts = moptions.Options()
            m = master(opts, with_termlog=False)
            tools[name] = (set(opts.keys()), set(parser(opts)._option_string_actions))
            with contextlib.suppress(Exception):
                await m.done()
        return tools

    with _no_stray_handlers():
        return asyncio.run(build())


@pytest.fixture(scope="module")
def gate_names(tmp_path_factory):
    """The gate's options and commands, as its addons declare them when they load (on a config
    file of this test's own: never the repository's config.yaml)."""
    config = tmp_path_factory.mktemp("docs") / "config.yaml"
    config.write_text("proxy:\n  auth_mode: strict\n  api_key: sk-docs\n", encoding="utf-8")
    with _no_stray_handlers(), taddons.context(proxyserver.Proxyserver(), *auth.make_addons(str(config))) as tctx:
        return set(tctx.options.keys()), set(tctx.master.commands.commands)


@pytest.fixture(scope="module")
def programs(mitmproxy_tools):
    """The flags each program the pages run takes."""
    import bench
    import demo_upstream
    import faq_lesson
    import run
    from authgate.cli import explain

    run_flags = flags_of(run.main, ["x"])
    return {
        "mitmdump": mitmproxy_tools["mitmdump"][1],
        "mitmweb": mitmproxy_tools["mitmweb"][1],
        "addon/run.py": run_flags | mitmproxy_tools["mitmdump"][1],
        "addon/run.py --web": run_flags | mitmproxy_tools["mitmweb"][1],
        "addon/demo_upstream.py": flags_of(demo_upstream.main),
        "addon/faq_lesson.py": flags_of(faq_lesson.main),
        "tests/bench.py": flags_of(bench.parse_args, ["x"]),
        "authgate.cli.explain": set(explain.parser()._option_string_actions),
    }


# The program each `just` recipe runs (justfile), its arguments passed on; None: pytest's.
RECIPE_PROGRAM = {"run": "addon/run.py", "web": "addon/run.py --web", "explain": "authgate.cli.explain",
                  "demo": "addon/faq_lesson.py", "bench": "tests/bench.py", "test": None, "test-fast": None,
                  "install": None}


def _program(command: list[str]) -> tuple[str | None, list[str]]:
    """(the program a command line runs, its arguments)."""
    tool, args = command[0], command[1:]
    if tool == "just":
        recipe = args[0] if args else None
        args = args[1:]
        if recipe == "explain" and args[:1] == ["--"]:
            args = args[1:]
            if args[:1] == ["curl"]:  # a pasted curl line: curl's flags, read by curl_line.py
                return None, []
        return RECIPE_PROGRAM.get(recipe), args
    if tool == "python3":
        if args[:2] == ["-m", "authgate.cli.explain"]:
            return "authgate.cli.explain", args[2:]
        if args[:1] and args[0].endswith(".py"):
            script, args = args[0], args[1:]
            return (f"{script} --web" if script == "addon/run.py" and "--web" in args else script), args
        return None, []  # python3 -m pip, venv, pytest: not ours
    return (tool if tool in ("mitmdump", "mitmweb") else None), args


# ---------------------------------------------------------------------------- the tests


def test_the_readme_is_read_in_five_minutes():
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_LIMIT, f"README.md has {lines} lines (at most {README_LIMIT}): move the detail to docs/"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_just_recipe_named_exists(page):
    known = recipes()
    named = {m for code in code_of(page) for m in re.findall(r"(?<![\w-])just ([a-z][a-z0-9-]*)", code)}
    assert named <= known, f"{_rel(page)} names recipes the justfile lacks: {sorted(named - known)}"
    assert known >= set(RECIPE_PROGRAM) - {"install"}, "a recipe this test knows is gone from the justfile"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_flag_of_every_command_shown_exists(page, programs):
    wrong = []
    for command in commands_of(page):
        program, args = _program(command)
        if program is None:
            continue
        assert program in programs, f"{_rel(page)}: {shlex.join(command)}: no parser known for {program}"
        for arg in args:
            flag = arg.split("=", 1)[0]
            if flag.startswith("-") and flag not in ("-", "--") and flag not in programs[program]:
                wrong.append(f"{shlex.join(command)}: {flag}")
    assert not wrong, f"{_rel(page)} shows flags its programs do not take: {wrong}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_option_named_exists(page, mitmproxy_tools, gate_names):
    gate_options, _ = gate_names
    known = gate_options | mitmproxy_tools["mitmdump"][0] | mitmproxy_tools["mitmweb"][0]
    running = tuple(int(x) for x in re.findall(r"\d+", mversion.VERSION)[:3])
    newer = {name for name, since in NEWER.items() if running < since}
    wrong = set()
    for code in code_of(page):
        for name in re.findall(r"--set[ =]([a-z_]+)=", code) + re.findall(r"^--set ([a-z_]+)", code):
            if name not in known and name not in newer:
                wrong.add(f"--set {name}")
        for name in _AUTH_NAME.findall(code):
            if name not in gate_options and not _used_in_the_gate(name):
                wrong.add(name)
    assert not wrong, f"{_rel(page)} names options the gate and mitmproxy lack: {sorted(wrong)}"


def _used_in_the_gate(name: str) -> bool:
    """A name that is not an option but that the gate's code uses or cites: a JSON field it writes
    (auth_gate), a flow.metadata key (auth_bind), the original's function it reproduces
    (auth_middleware)."""
    word = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)")
    return any(word.search(p.read_text(encoding="utf-8")) for p in (REPO / "addon").rglob("*.py"))


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_command_named_exists(page, gate_names):
    _, commands = gate_names
    named = {m for code in code_of(page) for m in _COMMAND.findall(code)}
    assert named <= commands, f"{_rel(page)} names commands the gate lacks: {sorted(named - commands)}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_repository_path_named_exists(page):
    missing = []
    for code in code_of(page):
        for path in _REPO_PATH.findall(code):
            path = path.rstrip(".")
            if "<" in path or path in UNTRACKED:
                continue  # a placeholder (static/index-<hash>.css), or the user's own file
            if not (list(REPO.glob(path)) if "*" in path else (REPO / path).exists()):
                missing.append(path)
    assert not missing, f"{_rel(page)} names paths the repository lacks: {missing}"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation out, spaces to hyphens."""
    out = set()
    for heading in re.findall(r"^#+ (.+)$", _FENCE.sub("", page.read_text(encoding="utf-8")), re.M):
        out.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return out


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_every_link_between_the_pages_leads_somewhere(page):
    broken = []
    for target in _LINK.findall(_FENCE.sub("", page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):
            continue  # https://..., mailto:
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        rel = str(dest.relative_to(REPO)) if dest.is_relative_to(REPO) else str(dest)
        if rel in PENDING:
            assert not dest.exists(), f"{rel} has landed: take it out of PENDING in {_rel(Path(__file__))}"
            continue
        if not dest.exists():
            broken.append(target)
        elif anchor and anchor not in _anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{_rel(page)} links to what does not exist: {broken}"


def test_the_layout_lists_every_module():
    """docs/architecture.md's layout: every entry exists, and every module of addon/ is there."""
    block = next(b for b in fences((REPO / "docs" / "architecture.md").read_text(encoding="utf-8"))
                 if b.startswith("addon/auth.py"))
    listed, missing, top = set(), [], None
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if not line.strip() or indent > 2:
            continue  # a description carried onto the next line
        indented = indent == 2
        names = re.split(r"\s{2,}", line.strip())[0]
        items = [x.strip() for x in names.split(",")]
        if not indented:
            top = items[0]
            items = [top] + [str(Path(top).parent / x) if not top.endswith("/") else top + x for x in items[1:]]
        else:
            items = [top + x for x in items]
        for item in items:
            found = list(REPO.glob(item))
            if not found and item not in UNTRACKED:
                missing.append(item)
            listed.update(p.resolve() for p in found)
    assert not missing, f"docs/architecture.md's layout names what does not exist: {missing}"
    modules = {p.resolve() for p in (REPO / "addon").rglob("*.py") if p.name != "__init__.py"}
    mentioned = {p for p in modules if p in listed or re.search(rf"(?<![\w/.]){re.escape(p.name)}(?!\w)", block)}
    assert modules <= mentioned, ("docs/architecture.md's layout lacks: "
                                  f"{sorted(_rel(p) for p in modules - mentioned)}")
