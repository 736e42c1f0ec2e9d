"""The gate's modules import one another without a circle: the rules, the settings, the words
and the addons each depend one way (faq.py and v4.py are peers on rules/common.py; snapshots.py
sees GateState through a Protocol). Read from the source (every import statement, those inside
functions too), so a circle is caught before anything imports it."""

import ast
from pathlib import Path

import auth

ADDON = Path(auth.__file__).resolve().parent
ROOT = "authgate"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ADDON).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(p): p for p in (ADDON / ROOT).rglob("*.py")}
    found["auth"] = ADDON / "auth.py"
    return found


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The gate's modules that `name` imports (a `from package import submodule` names the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == ROOT)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != ROOT:
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return out & known


def graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, name, known) - {name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_the_gate_has_no_import_circle():
    edges = graph()
    assert "authgate.rules.decide" in edges and "authgate.addons.dispatcher" in edges["auth"]
    assert cycles(edges) == []


def test_the_walk_finds_a_circle_when_there_is_one():
    edges = graph()
    edges["authgate.rules.v4"] = edges["authgate.rules.v4"] | {"authgate.rules.decide"}  # as before the restructure
    assert ["authgate.rules.decide", "authgate.rules.v4"] in cycles(edges)


def test_the_pure_core_imports_no_addon():
    """rules/, config/ and words/ never import the mitmproxy addons (which import them)."""
    edges = graph()
    core = [m for m in edges if m.split(".")[1:2] and m.split(".")[1] in ("rules", "config", "words")]
    assert core and not [(m, d) for m in core for d in edges[m] if d.startswith("authgate.addons")]
