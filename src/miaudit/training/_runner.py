"""Train K reference models in parallel processes, caching each model's logits the moment it finishes.

The game (Carlini et al. 2022, LiRA, Sec. IV-B; field notes §1): K models of one recipe, model k trained on
the pool examples where ``is_member[k]`` is True, each queried on *all* N pool examples. Each model is one
task; a task's output is written to ``run_dir/models/<key>.npz`` (temporary file + :func:`os.replace`) by
the worker itself, or with ray by this process when the outputs arrive, so killing the run at any moment loses at most the models in flight, and re-running
trains only the models whose file is missing.

:func:`train_models` orchestrates three steps: plan (:mod:`._plan`: check the inputs, key the models, look
them up in the cache, cut tasks), execute (:mod:`._executors`: inline, process pool or ray, behind one
interface) and collect (read every model's file into :class:`TrainedModels`).

Determinism: a model depends only on (recipe, data, membership row, seed); every worker (and the in-process
path of ``jobs=1``) pins BLAS/OpenMP to one thread, so results are identical whatever ``jobs`` is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import signals
from .._errors import TrainingError
from .._seeds import SeedLike, child_seeds
from ._cache import model_path, read_model_file
from ._execution import Execution
from ._executors import ExecutorName, ExecutorOptions, make_executor
from ._plan import Plan, check_inputs, check_jobs, default_jobs, plan_run
from ._recipe import Recipe

__all__ = ["ProgressCallback", "TrainedModels", "TrainingProgress", "train_models", "model_seeds", "default_jobs"]


@dataclass(frozen=True)
class TrainingProgress:
    """Passed to the ``progress`` callback after every finished (or failed) model.

    ``n_total`` counts the models this call has to train (cached ones excluded, reported in
    ``n_cached``), so a progress bar's rate and time left reflect real training.
    """

    n_done: int
    n_total: int
    n_cached: int
    n_failed: int = 0
    last_index: int | None = None


ProgressCallback = Callable[[TrainingProgress], None]


@dataclass(frozen=True, eq=False)
class TrainedModels:
    """Outputs of K models of one recipe on all N pool examples.

    ``logits`` (K, N, A, C) float32; ``membership`` (K, N) bool (the ``is_member`` matrix trained on); ``train_accuracy``/``test_accuracy`` (K,)
    float64 measured with :func:`miaudit.signals.correct` (query 0) on the pool examples each model did / did not train on (NaN if none);
    ``fit_seconds``/``predict_seconds`` (K,) as recorded when each model was trained (also for cached ones);
    ``trained_now`` (K,) bool: which models this call trained; ``wall_seconds``: this call's wall time.
    """

    logits: np.ndarray
    membership: np.ndarray
    seeds: tuple[int, ...]
    keys: tuple[str, ...]
    train_accuracy: np.ndarray
    test_accuracy: np.ndarray
    fit_seconds: np.ndarray
    predict_seconds: np.ndarray
    trained_now: np.ndarray
    wall_seconds: float
    jobs: int
    run_dir: Path = field(default_factory=Path)
    #: Further per-model answers the recipe asked for (``recipe.label_outputs``), each stacked (K, ...).
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_models(self) -> int:
        return int(self.logits.shape[0])

    @property
    def n_trained(self) -> int:
        """Models trained by this call (the rest came from the cache)."""
        return int(self.trained_now.sum())

    @property
    def n_cached(self) -> int:
        return self.n_models - self.n_trained

    @property
    def model_seconds(self) -> float:
        """Seconds spent inside ``train``/``predict_logits`` for the models trained by this call."""
        now = self.trained_now
        return float(self.fit_seconds[now].sum() + self.predict_seconds[now].sum())

    @property
    def overhead_fraction(self) -> float:
        """Fraction of ``wall_seconds * workers`` not spent inside model training or querying.

        ``workers`` is ``min(jobs, n_trained)``; NaN when nothing was trained.
        """
        if self.n_trained == 0 or self.wall_seconds <= 0:
            return float("nan")
        workers = max(1, min(self.jobs, self.n_trained))
        return float(max(0.0, 1.0 - self.model_seconds / (workers * self.wall_seconds)))


def model_seeds(seed: SeedLike, n_models: int) -> list[int]:
    """Per-model seeds derived from ``seed`` with :meth:`numpy.random.SeedSequence.spawn`
    (:func:`miaudit._seeds.child_seeds`).

    Child ``k`` does not depend on ``n_models``, so growing K keeps the first models' seeds.
    """
    return child_seeds(seed, n_models)


def _preload(recipe: Any) -> list[str]:
    """The modules the forkserver imports for ``recipe``'s workers: its ``preload_modules()``, or for a recipe
    without that method scikit-learn's base (most such recipes are scikit-learn estimators)."""
    fn = getattr(recipe, "preload_modules", None)
    if not callable(fn):
        return ["sklearn.base"]
    try:
        mods = list(fn())
    except Exception:  # noqa: BLE001 - an optimisation only
        mods = []
    return [m for m in mods if isinstance(m, str)]


def train_models(
    recipe: Recipe,
    X: Any,
    y: np.ndarray,
    is_member: np.ndarray,
    *,
    seeds: Sequence[int],
    run_dir: str | os.PathLike[str],
    jobs: int | None = None,
    progress: ProgressCallback | None = None,
    executor: str | Execution = "process",
    mp_context: str | None = None,
    local_worker: bool = True,
) -> TrainedModels:
    """Train model k of ``recipe`` on ``X[is_member[k]]`` with ``seeds[k]``; return all models' logits on X.

    Parameters
    ----------
    recipe:
        A :class:`~miaudit.training.Recipe`. If it has ``train_group`` and ``group_size``, models are
        trained ``group_size`` at a time through it (one task per group).
    X, y:
        The pool: an array or DataFrame of N examples and int labels in ``[0, recipe.n_classes)``.
    is_member:
        (K, N) bool; row k marks model k's training examples (see ``miaudit.audit.balanced_membership``).
    seeds:
        K ints, e.g. :func:`model_seeds` (audit seed, K).
    run_dir:
        Cache folder; model files go to ``run_dir/models/<key>.npz``. Existing files are reused.
    jobs:
        Worker processes (default: all cores). ``1`` trains in this process. BLAS/OpenMP use one thread
        per worker whatever ``jobs`` is, so results do not depend on it.
    progress:
        Called with a :class:`TrainingProgress` once before training and after every model
        (see :func:`miaudit.training.rich_progress`).
    executor:
        ``"process"`` (default) or ``"ray"`` (needs ``pip install "miaudit[ray]"``), or an
        :class:`~miaudit.training.Execution` that also names a Ray cluster's address and each model's
        resources (``num_cpus``, ``num_gpus``) and retries. With ray, each model's outputs come back to
        this process, which writes them into ``run_dir``: the workers need no shared disk.
    mp_context:
        ``"forkserver"`` (default on POSIX) or ``"spawn"``: workers start clean (about 2 s of CPU each to
        import scikit-learn, paid once per process by the forkserver). ``"fork"`` (opt-in): workers are
        copies of this process and start in milliseconds, which matters for short jobs; only safe when no
        other thread of this process holds a lock at that moment and the recipe does not use OpenMP both
        before and after the fork (e.g. torch, HistGradientBoosting), so it is not the default.
    local_worker:
        With ``jobs > 1``, this process trains models too (in a thread) while ``jobs - 1`` worker
        processes start, which hides their start-up time. ``False``: train only in ``jobs`` worker
        processes, isolating hard crashes (segfault, out-of-memory kill) of the recipe from this process.

    Raises
    ------
    TrainingError
        After all other models finished, when one or more models failed; names the first failed model
        and its exception. Finished models stay cached.
    """
    wall0 = time.perf_counter()
    y, is_member, seeds_list = check_inputs(recipe, X, y, is_member, seeds)
    n_jobs = check_jobs(jobs)
    execution = executor if isinstance(executor, Execution) else None
    name = ExecutorName.parse(execution.executor if execution is not None else executor)
    plan = plan_run(recipe, X, y, is_member, seeds_list, Path(run_dir))
    K = is_member.shape[0]

    failures: dict[int, str] = {}
    done = 0

    def report(last: int | None) -> None:
        if progress is not None:
            progress(TrainingProgress(n_done=done, n_total=len(plan.pending), n_cached=plan.n_cached,
                                      n_failed=len(failures), last_index=last))

    def on_model(index: int, error: str | None) -> None:
        nonlocal done
        if error is None:
            done += 1
        else:
            failures[index] = error
        report(index)

    report(None)
    n_workers = max(1, min(n_jobs, len(plan.tasks)))
    if plan.tasks:
        ray_opts = execution.to_dict() if execution is not None else {}
        ray_opts.pop("executor", None)
        options = ExecutorOptions(n_workers=n_workers, mp_context=mp_context, local_worker=local_worker,
                                  preload=_preload(recipe), **ray_opts)
        make_executor(name, options).run(plan.state, plan.tasks, on_model)

    if failures:
        _raise_failures(failures, plan, seeds_list)
    logits, fit_s, pred_s, extras = _collect(plan, is_member.shape[1], int(recipe.n_classes))
    correct = np.stack([signals.correct(logits[k], y) for k in range(K)])
    with np.errstate(invalid="ignore", divide="ignore"):
        train_acc = (correct & is_member).sum(1) / is_member.sum(1)
        n_out = (~is_member).sum(1)
        test_acc = np.where(n_out > 0, (correct & ~is_member).sum(1) / np.maximum(n_out, 1), np.nan)
    pending_set = set(plan.pending)
    trained_now = np.array([k in pending_set for k in range(K)], dtype=bool)
    return TrainedModels(
        logits=logits,
        membership=is_member,
        seeds=tuple(seeds_list),
        keys=tuple(plan.keys),
        train_accuracy=train_acc.astype(np.float64),
        test_accuracy=test_acc.astype(np.float64),
        fit_seconds=fit_s,
        predict_seconds=pred_s,
        trained_now=trained_now,
        wall_seconds=time.perf_counter() - wall0,
        jobs=n_workers,
        run_dir=Path(run_dir),
        extras=extras,
    )


def _raise_failures(failures: dict[int, str], plan: Plan, seeds: Sequence[int]) -> None:
    """The :class:`TrainingError` naming the first failed model, how many others failed, what is cached."""
    K = len(plan.keys)
    first = min(failures)
    n_ok = sum(1 for k in range(K) if model_path(Path(plan.state.run_dir), plan.keys[k]).exists())
    others = sorted(failures)[1:]
    more = f" ({len(others)} more failed: models {', '.join(map(str, others[:10]))}{'...' if len(others) > 10 else ''})" if others else ""
    raise TrainingError(
        f"model {first} (seed {seeds[first]}) failed: {failures[first]}{more}; "
        f"{n_ok} of {K} models are finished and cached in {plan.models_dir}; fix the recipe and re-run to train only the missing ones"
    )


def _collect(plan: Plan, n_examples: int, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                   dict[str, np.ndarray]]:
    """Every model's logits (K, N, A, C) float32, fit and predict seconds (K,) and extras (each (K, ...)),
    read from its file."""
    run_dir, K = Path(plan.state.run_dir), len(plan.keys)
    logits: np.ndarray | None = None  # filled in place: peak memory one (K, N, A, C) float32 array
    fit_s, pred_s = np.zeros(K), np.zeros(K)
    extras: list[dict[str, np.ndarray]] = []
    for k, key in enumerate(plan.keys):
        res = read_model_file(model_path(run_dir, key), n_examples=n_examples, n_classes=n_classes)
        if res is None:  # pragma: no cover - deleted under our feet
            raise TrainingError(f"model {k}: its file {model_path(run_dir, key)} vanished or is unreadable; re-run")
        if logits is None:
            logits = np.empty((K, *res["logits"].shape), dtype=np.float32)
        elif res["logits"].shape != logits.shape[1:]:
            raise TrainingError(
                f"model {k}: logits of shape {res['logits'].shape}, model 0 gave {logits.shape[1:]}; the recipe "
                "must give every model the same number of queries"
            )
        logits[k] = res["logits"]
        fit_s[k], pred_s[k] = res["fit_seconds"], res["predict_seconds"]
        extras.append(res.get("extras") or {})
    if logits is None:  # pragma: no cover - check_inputs demands K >= 1
        raise TrainingError("no model to collect; pass a membership matrix with at least one row")
    names = set(extras[0]) if extras else set()
    stacked = {name: np.stack([e[name] for e in extras]) for name in sorted(names)
               if all(name in e and e[name].shape == extras[0][name].shape for e in extras)}
    return logits, fit_s, pred_s, stacked
