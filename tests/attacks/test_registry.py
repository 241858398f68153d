"""The attack registry: explicit, ordered, and imports that flow one way (registry -> attacks -> _base)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import miaudit.attacks as attacks_pkg
from miaudit._errors import InputError
from miaudit.attacks import Attack, attack_class, available_attacks, get_attack, register_attack, registry

PACKAGE = Path(attacks_pkg.__file__).parent

BUILTIN_ORDER = [
    "loss", "confidence", "entropy", "modified_entropy", "scaled_logit",
    "max_score", "score_spread", "score_extremity",
    "lira_online", "lira_offline", "rmia", "rmia_offline", "base", "base_offline", "attack_r", "calibrated_loss",
    "trained_lr", "trained_gb", "shokri",
    "gap", "augment_count", "boundary_distance", "label_augment", "label_boundary",
]


def test_builtin_names_and_order():
    assert available_attacks()[: len(BUILTIN_ORDER)] == BUILTIN_ORDER
    assert list(registry.BUILTIN) == BUILTIN_ORDER
    for name, cls in registry.BUILTIN.items():
        assert cls.name == name and attack_class(name) is cls


def test_public_names():
    assert sorted(attacks_pkg.__all__) == sorted(
        ["Attack", "attack_class", "available_attacks", "get_attack", "missing_requirements", "register_attack"]
    )


def test_register_user_attack():
    @register_attack
    class Constant(Attack):
        name: ClassVar[str] = "test_constant_attack"
        description: ClassVar[str] = "always 0"

        def score(self, bundle):
            return np.zeros(bundle.n_examples)

    try:
        assert available_attacks()[-1] == "test_constant_attack"
        assert available_attacks()[: len(BUILTIN_ORDER)] == BUILTIN_ORDER
        assert isinstance(get_attack("test_constant_attack"), Constant)
        assert register_attack(Constant) is Constant  # idempotent

        class Clash(Constant):
            pass

        with pytest.raises(TypeError, match="registered twice"):
            register_attack(Clash)

        class Nameless(Attack):
            def score(self, bundle):  # pragma: no cover
                return np.zeros(0)

        with pytest.raises(TypeError, match="has no name"):
            register_attack(Nameless)

        class BadRequires(Constant):
            name: ClassVar[str] = "test_bad_requires"
            requires: ClassVar[frozenset[str]] = frozenset({"oracle"})

        with pytest.raises(TypeError, match="unknown entries"):
            register_attack(BadRequires)
    finally:
        registry._REGISTRY.pop("test_constant_attack", None)
    assert available_attacks() == BUILTIN_ORDER


def test_unknown_attack():
    with pytest.raises(InputError, match="unknown attack 'nope'; expected one of: loss, confidence"):
        attack_class("nope")


def _imports(path: Path) -> set[str]:
    """Modules of the package imported anywhere in ``path`` (module level or inside functions)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from . import x / from .x import y
                if node.module:
                    out.add(node.module.split(".")[0])
                else:
                    out.update(a.name for a in node.names)
            elif node.level == 0 and node.module and node.module.startswith("miaudit.attacks"):
                rest = node.module[len("miaudit.attacks"):].lstrip(".")
                out.add(rest.split(".")[0] if rest else "__init__")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("miaudit.attacks"):
                    rest = a.name[len("miaudit.attacks"):].lstrip(".")
                    out.add(rest.split(".")[0] if rest else "__init__")
    return out


def _graph() -> dict[str, set[str]]:
    return {p.stem: _imports(p) for p in PACKAGE.glob("*.py")}


def test_imports_flow_one_way():
    graph = _graph()
    attack_modules = {"population", "lira", "rmia", "calibration", "trained", "shokri"}
    assert attack_modules <= set(graph)
    assert graph["_base"] == set()  # the contract imports no attack module
    assert graph["registry"] >= attack_modules | {"_base"}
    for mod, deps in graph.items():
        assert "registry" not in deps or mod == "__init__", f"{mod} imports the registry"
        assert "__init__" not in deps, f"{mod} imports the package"

    # no cycles, not even through helpers
    state: dict[str, int] = {}

    def visit(mod: str, path: list[str]) -> None:
        if state.get(mod) == 2:
            return
        assert state.get(mod) != 1, f"import cycle: {' -> '.join(path + [mod])}"
        state[mod] = 1
        for dep in graph.get(mod, ()):
            visit(dep, path + [mod])
        state[mod] = 2

    for mod in graph:
        visit(mod, [])


def test_attack_modules_do_not_register_on_import():
    for p in PACKAGE.glob("*.py"):
        if p.stem in {"registry", "__init__"}:
            continue
        assert "register_attack" not in p.read_text(), f"{p.name} uses register_attack"
