"""The layers import one way only (docs/DESIGN.md), and no module imports a module that imports it back,
not even lazily inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import miaudit

SRC = Path(miaudit.__file__).parent

#: Layers, lowest first: a module may import its own layer (within its own package) and the layers below.
LAYERS: list[set[str]] = [
    {"_errors"},
    {"_seeds", "_imports", "_atomic", "_counts", "_timing"},
    {"signals"},
    {"data"},
    {"models"},
    {"training"},
    {"attacks"},
    {"metrics"},
    {"report"},
    {"config"},
    {"audit"},
    {"api", "levers"},
    {"cli"},
    {"__main__"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """miaudit modules imported anywhere in ``path`` (module level, inside functions, under TYPE_CHECKING),
    absolute names; ``from pkg import sub`` counts as importing the submodule ``pkg.sub`` only."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("miaudit")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.startswith("miaudit"):
                subs = {f"{mod}.{a.name}" for a in node.names} & modules
                out |= subs
                if len(subs) < len(node.names):
                    out.add(mod)
    return out


def _graph() -> dict[str, set[str]]:
    files = {(_module_name(p)): p for p in SRC.rglob("*.py")}
    graph = {}
    for mod, path in files.items():
        graph[mod] = {m for m in _imports(path, set(files)) if m in files and m != mod}
    return graph


def _top(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_top_level_module_has_a_layer() -> None:
    tops = {_top(m) for m in _graph()} - {"__init__"}
    assert tops <= set(LEVEL), sorted(tops - set(LEVEL))


def test_imports_flow_one_way() -> None:
    bad = []
    for mod, deps in _graph().items():
        src = _top(mod)
        if src == "__init__":
            continue
        for dep in deps:
            dst = _top(dep)
            if dst == "__init__" or dst == src:
                continue
            if LEVEL[dst] >= LEVEL[src]:
                bad.append(f"{mod} -> {dep}")
    assert not bad, bad


def test_no_import_cycles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            # a package's __init__ re-exporting its submodules is not a loop
            real = [c for c in comp if not any(c != d and d.startswith(c + ".") for d in comp)]
            if len(comp) > 1 and len(real) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, cycles
