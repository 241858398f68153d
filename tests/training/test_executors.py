"""The runner's parts: planning (keys, cache look-up, tasks), the executor interface and its name table,
the seed alias, and the one-way import rule between ``miaudit.models`` and ``miaudit.training``."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import miaudit
from miaudit import InputError
from miaudit._seeds import child_seeds
from miaudit.training import Execution, model_seeds, train_models
from miaudit.training._executors import (
    EXECUTORS,
    ExecutorName,
    ExecutorOptions,
    InlineExecutor,
    PoolExecutor,
    make_executor,
)
from miaudit.training._plan import check_jobs, plan_run
from miaudit.training._ray import RayExecutor, _host, _resolve_address

from ._helpers import GroupRecipe, balanced, digits, lr_recipe

K = 4


def test_every_executor_name_has_an_implementation() -> None:
    assert set(EXECUTORS) == set(ExecutorName)
    assert isinstance(make_executor(ExecutorName.PROCESS, ExecutorOptions(n_workers=1)), InlineExecutor)
    pool = make_executor(ExecutorName.PROCESS, ExecutorOptions(n_workers=2, mp_context="spawn", local_worker=False))
    assert isinstance(pool, PoolExecutor) and pool.n_workers == 2 and not pool.local_worker
    assert isinstance(make_executor(ExecutorName.RAY, ExecutorOptions(n_workers=1)), RayExecutor)
    ray = make_executor(ExecutorName.RAY, ExecutorOptions(n_workers=3, address="10.0.0.1:6379", num_cpus=0.5,
                                                          num_gpus=0.25, max_retries=5))
    assert isinstance(ray, RayExecutor)
    assert (ray.n_workers, ray.address, ray.num_cpus, ray.num_gpus, ray.max_retries) == (3, "10.0.0.1:6379", 0.5, 0.25, 5)


def test_ray_addresses_auto_follows_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert _resolve_address(None) is None and _resolve_address("auto") == "auto"
    assert _resolve_address("10.1.2.3:6379") == "10.1.2.3:6379"
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:7000")
    assert _resolve_address("auto") == "127.0.0.1:7000" and _resolve_address("h:1") == "h:1"
    assert _resolve_address(None) is None  # no address: a local Ray, whatever RAY_ADDRESS says
    assert [_host(a) for a in ("127.0.0.1:6379", "ray://localhost:10001", "[::1]:6379", "head")] == [
        "127.0.0.1", "localhost", "::1", "head"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"executor": "dask"}, r"\[execution\] executor: expected 'process' or 'ray', got 'dask'"),
    ({"executor": "ray", "address": ""}, r"\[execution\] address: expected 'auto', 'HOST:PORT'"),
    ({"num_cpus": 0}, r"\[execution\] num_cpus: expected a number > 0"),
    ({"num_cpus": True}, r"\[execution\] num_cpus: expected a number > 0"),
    ({"num_gpus": -0.5}, r"\[execution\] num_gpus: expected a number >= 0"),
    ({"num_gpus": float("nan")}, r"\[execution\] num_gpus: expected a number >= 0"),
    ({"max_retries": 1.5}, r"\[execution\] max_retries: expected an integer >= 0"),
    ({"address": "h:1"}, r"\[execution\] address: a Ray cluster's address needs the ray executor"),
])
def test_execution_settings_are_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InputError, match=match):
        Execution(**kwargs)  # type: ignore[arg-type]


def test_execution_accepts_fractions_and_round_trips() -> None:
    e = Execution(executor="ray", address="auto", num_cpus=0.5, num_gpus=0.25, max_retries=0)
    assert Execution(**e.to_dict()) == e
    assert Execution().to_dict() == {"executor": "process", "num_cpus": 1.0, "num_gpus": 0.0, "max_retries": 3}


def test_executor_names_parse_and_refuse_others() -> None:
    assert ExecutorName.parse("process") is ExecutorName.PROCESS and ExecutorName.parse("ray") is ExecutorName.RAY
    for bad in ("inline", "threads", None, ["ray"]):
        with pytest.raises(InputError, match=r"executor: expected 'process' or 'ray', got "):
            ExecutorName.parse(bad)


def test_check_jobs() -> None:
    assert check_jobs(3) == 3 and check_jobs(np.int64(2)) == 2 and check_jobs(None) >= 1
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(InputError, match=r"jobs: expected an int >= 1"):
            check_jobs(bad)


def test_plan_then_inline_executor_reports_each_model_once(tmp_path: Path) -> None:
    X, y = digits(120)
    m = balanced(120, K)
    seeds = model_seeds(0, K)
    plan = plan_run(lr_recipe(), X, y, m, seeds, tmp_path)
    assert plan.pending == list(range(K)) and plan.n_cached == 0 and len(plan.tasks) == K
    assert [t.indices for t in plan.tasks] == [[k] for k in range(K)] and len(set(plan.keys)) == K
    seen: list[tuple[int, str | None]] = []
    InlineExecutor().run(plan.state, plan.tasks, lambda i, err: seen.append((i, err)))
    assert seen == [(k, None) for k in range(K)]
    assert {p.stem for p in (tmp_path / "models").glob("*.npz")} == set(plan.keys)
    again = plan_run(lr_recipe(), X, y, m, seeds, tmp_path)  # everything cached now
    assert again.keys == plan.keys and again.pending == [] and again.tasks == [] and again.n_cached == K
    # the runner on the same folder trains nothing and agrees with the files
    out = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path, jobs=1)
    assert out.n_trained == 0 and out.keys == tuple(plan.keys)


def test_duplicate_models_are_planned_once_and_groups_cut_by_group_size(tmp_path: Path) -> None:
    X, y = digits(80)
    m = balanced(80, K)
    m[3] = m[0]
    seeds = model_seeds(1, K)
    seeds[3] = seeds[0]  # model 3 is model 0
    recipe = GroupRecipe("sklearn.linear_model.LogisticRegression", {"max_iter": 100}, n_classes=10,
                         log_path=str(tmp_path / "groups.log"))
    plan = plan_run(recipe, X, y, m, seeds, tmp_path)
    assert plan.keys[3] == plan.keys[0] and plan.pending == [0, 1, 2] and plan.n_cached == 0
    (task,) = plan.tasks  # group_size 3
    assert task.group and task.indices == [0, 1, 2] and task.seeds == seeds[:3]
    assert np.array_equal(task.masks, m[:3])


def test_model_seeds_is_child_seeds_with_the_same_values() -> None:
    for seed in (0, 7, 2**32 - 1):
        old = [int(c.generate_state(1, dtype=np.uint32)[0]) for c in np.random.SeedSequence(seed).spawn(6)]
        assert model_seeds(seed, 6) == child_seeds(seed, 6) == old
        # a SeedSequence spawns further children on every call, as before: pass a fresh one each time
        assert model_seeds(np.random.SeedSequence(seed), 6) == old
    assert model_seeds(3, 2) == model_seeds(3, 5)[:2]  # child k does not depend on K
    with pytest.raises(InputError, match=r"seed: expected an integer in \[0, 2\*\*32\)"):
        model_seeds(-1, 3)


def _imported_modules(path: Path) -> list[str]:
    """Absolute names of the miaudit modules ``path`` imports, wherever the import statement is."""
    package = "miaudit." + ".".join(path.relative_to(Path(miaudit.__file__).parent).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.append(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_models_never_import_training() -> None:
    models_dir = Path(miaudit.__file__).parent / "models"
    files = sorted(models_dir.glob("*.py"))
    assert files
    for f in files:
        bad = [n for n in _imported_modules(f) if n == "miaudit.training" or n.startswith("miaudit.training.")]
        assert not bad, f"{f.name} imports {bad}: models must not depend on training"
