"""Planning a training run: check the inputs, key every model, look the keys up in the cache, cut tasks.

Nothing here trains: :func:`plan_run` returns a :class:`Plan` (every model's cache key, which models
are missing, and the :class:`Task` list that trains them) that an executor of
:mod:`miaudit.training._executors` carries out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import InputError
from .._imports import import_paths
from ._cache import data_fingerprint, model_key, model_path, read_model_file, remove_stale_temporaries

__all__ = ["Plan", "Task", "WorkState", "check_inputs", "check_jobs", "default_jobs", "make_tasks", "plan_run"]


@dataclass(frozen=True, eq=False)
class Task:
    """Models trained together by one worker call: one model, or a group through ``recipe.train_group``.

    ``indices`` are the models' rows in the membership matrix; ``masks`` (G, N) bool their rows.
    """

    indices: list[int]
    keys: list[str]
    masks: np.ndarray
    seeds: list[int]
    group: bool


@dataclass(frozen=True, eq=False)
class WorkState:
    """What every task of a run needs, shipped once to each worker: the recipe and the pool."""

    recipe: Any
    X: Any
    y: np.ndarray
    run_dir: str
    spec: dict[str, Any]
    import_paths: tuple[str, ...] = ()  # config folders the worker puts on sys.path (miaudit._imports)


@dataclass(frozen=True, eq=False)
class Plan:
    """Every model's cache key, the models this run trains (``pending``, first model of each missing key)
    and the tasks that train them; ``n_cached`` models already have a complete file."""

    keys: list[str]
    pending: list[int]
    tasks: list[Task]
    n_cached: int
    state: WorkState

    @property
    def models_dir(self) -> Path:
        return Path(self.state.run_dir) / "models"


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_jobs(jobs: Any) -> int:
    """``jobs`` (``None``: :func:`default_jobs`) as an int >= 1, or :class:`InputError`."""
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise InputError(f"jobs: expected an int >= 1, got {jobs!r}; use --jobs 1 to train in this process")
    return int(jobs)


def check_inputs(recipe: Any, X: Any, y: Any, is_member: Any, seeds: Any) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The labels as int64, the (K, N) bool membership matrix and K int seeds, or :class:`InputError`."""
    for attr in ("spec", "train", "predict_logits", "n_classes"):
        if not hasattr(recipe, attr):
            raise InputError(
                f"recipe: expected an object with spec(), train(), predict_logits() and n_classes, "
                f"got {type(recipe).__name__} without {attr!r}; use miaudit.training.SklearnRecipe"
            )
    try:
        n = len(X)
    except TypeError:
        raise InputError(f"X: expected an array or DataFrame of examples, got {type(X).__name__}") from None
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise InputError(f"y: expected shape ({n},) to match X, got {y.shape}; pass one label per example")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"y: expected integer class labels, got dtype {y.dtype}; encode the labels as 0..C-1")
    if n and (y.min() < 0 or y.max() >= recipe.n_classes):
        raise InputError(f"y: expected labels in [0, {recipe.n_classes}), got range [{y.min()}, {y.max()}]; "
                         "encode the labels as 0..C-1 or raise n_classes")
    m = np.asarray(is_member)
    if m.ndim != 2 or m.shape[1] != n or m.shape[0] < 1:
        raise InputError(f"membership: expected a bool array of shape (K, {n}), got shape {m.shape}; "
                         "build it with miaudit.audit.balanced_membership")
    if m.dtype != bool:
        raise InputError(f"membership: expected dtype bool, got {m.dtype}; pass a boolean (K, N) matrix")
    empty = np.flatnonzero(~m.any(axis=1))
    if empty.size:
        raise InputError(f"membership: model {int(empty[0])} has no training example; every row needs a True")
    seeds_list = [int(s) for s in seeds]
    if len(seeds_list) != m.shape[0]:
        raise InputError(f"seeds: expected {m.shape[0]} seeds (one per model), got {len(seeds_list)}; "
                         "derive them with miaudit.training.model_seeds(seed, K)")
    return y.astype(np.int64, copy=False), m, seeds_list


def make_tasks(recipe: Any, pending: Sequence[int], keys: Sequence[str], is_member: np.ndarray,
               seeds: Sequence[int]) -> list[Task]:
    """One task per pending model, or per ``recipe.group_size`` of them when the recipe has ``train_group``."""
    grouped = callable(getattr(recipe, "train_group", None))
    group_size = max(1, int(getattr(recipe, "group_size", 1) or 1)) if grouped else 1
    tasks = []
    for start in range(0, len(pending), group_size):
        idx = list(pending[start:start + group_size])
        tasks.append(Task(indices=idx, keys=[keys[i] for i in idx], masks=is_member[idx],
                          seeds=[seeds[i] for i in idx], group=grouped))
    return tasks


def plan_run(recipe: Any, X: Any, y: np.ndarray, is_member: np.ndarray, seeds: Sequence[int],
             run_dir: Path) -> Plan:
    """Key the K models, reuse the complete files under ``run_dir/models`` and plan the missing ones.

    Creates ``run_dir/models`` and removes temporaries left there by killed writers. Models with the
    same key (same recipe, data, membership row and seed) are trained once.
    """
    K, N = is_member.shape
    models_dir = run_dir / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(models_dir)

    spec = recipe.spec()
    fp = data_fingerprint(X, y)
    keys = [model_key(spec, fp, is_member[k], seeds[k]) for k in range(K)]
    C = int(recipe.n_classes)

    loaded: set[str] = set()  # keys whose file is complete and of the right shape
    for key in dict.fromkeys(keys):
        if read_model_file(model_path(run_dir, key), n_examples=N, n_classes=C) is not None:
            loaded.add(key)
    first_of_key: dict[str, int] = {}
    for k, key in enumerate(keys):
        first_of_key.setdefault(key, k)
    pending = sorted(k for key, k in first_of_key.items() if key not in loaded)
    n_cached = K - sum(1 for k in range(K) if keys[k] not in loaded)
    return Plan(keys=keys, pending=pending, tasks=make_tasks(recipe, pending, keys, is_member, seeds),
                n_cached=n_cached, state=WorkState(recipe=recipe, X=X, y=y, run_dir=str(run_dir), spec=spec,
                                 import_paths=import_paths()))
