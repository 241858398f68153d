"""What a task does, wherever it runs: train its models, query them on the pool, write their files.

Every executor (inline, process pool, ray) runs :func:`run_task` under the same conditions: BLAS/OpenMP
(and torch) pinned to one thread, so a model does not depend on where or next to what it was trained.
:func:`compute_task` trains and queries; :func:`run_task` (inline and process workers, on this machine)
writes each model's file the moment it is done (:func:`~miaudit.training._cache.write_model_file`:
temporary file + :func:`os.replace`), so a killed run loses at most the models in flight. Ray workers
return the outputs to the driver instead, which writes them the same way (:mod:`._ray`).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import TrainingError
from .._imports import add_import_paths
from ..models.torch import model_slot
from ._cache import model_path, write_model_file
from ._lifeline import watch_parent
from ._plan import Task, WorkState

__all__ = ["ModelOutputs", "ModelResult", "Outcome", "THREAD_ENV", "compute_task", "init_worker", "one_line", "pin_threads",
           "ready", "run_task", "worker_task", "write_outputs"]

#: What a task reports per model: (model index, None or a one-line error).
Outcome = tuple[int, str | None]

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

_STATE: dict[str, WorkState] = {}  # a worker process's WorkState, set once by init_worker
_LIMITER: Any = None


def pin_threads() -> None:
    global _LIMITER
    for var in THREAD_ENV:
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    _LIMITER = threadpool_limits(limits=1)
    if "torch" in sys.modules:  # pragma: no cover - torch recipes
        try:
            sys.modules["torch"].set_num_threads(1)
        except Exception:
            pass


def init_worker(state: WorkState) -> None:
    """Pool initializer: end with the process that started this worker, pin threads, keep the recipe and data."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid is not None:  # a pool worker (not ray, not this process)
        watch_parent(parent.pid)
    pin_threads()
    add_import_paths(state.import_paths)
    _STATE["state"] = state


def _take(X: Any, mask: np.ndarray) -> Any:
    idx = np.flatnonzero(mask)
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    return X[idx]


def one_line(exc: BaseException) -> str:
    """``"Type: message"`` on one line, at most 500 characters: how a failed model is reported."""
    text = f"{type(exc).__name__}: {exc}".replace("\r", " ").replace("\n", " ").strip()
    return text if len(text) <= 500 else text[:497] + "..."


def _check_logits(logits: Any, n_examples: int, n_classes: int) -> np.ndarray:
    arr = np.asarray(logits)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3 or arr.shape[0] != n_examples or arr.shape[2] != n_classes:
        raise TrainingError(
            f"recipe.predict_logits returned shape {np.shape(logits)}, expected ({n_examples}, A, {n_classes}); "
            "make it return one row per example and one column per class"
        )
    return arr


def _extras(recipe: Any, model: Any, X: Any) -> dict[str, np.ndarray] | None:
    """Further answers of the model a recipe asks for (``recipe.label_outputs``: label-only queries)."""
    fn = getattr(recipe, "label_outputs", None)
    return fn(model, X) if callable(fn) else None


def _meta(seed: int, state: WorkState, started: float, cpu0: float, *, group: int = 1) -> dict[str, Any]:
    """Provenance stored with a model file (not part of its key): seed, recipe, who trained it, when, and
    the CPU seconds its thread spent (train + predict; BLAS is pinned to that thread)."""
    return {"seed": int(seed), "recipe": state.spec, "pid": os.getpid(), "thread": threading.get_ident(),
            "group": group, "started": started, "finished": time.time(), "cpu_seconds": time.thread_time() - cpu0,
            "process_cpu_seconds": time.process_time()}


#: One model's outputs, as a task computes them: what :func:`~miaudit.training._cache.write_model_file` stores.
ModelOutputs = dict[str, Any]

#: What :func:`compute_task` yields per model: (model index, cache key, None or a one-line error, outputs or None).
ModelResult = tuple[int, str, "str | None", "ModelOutputs | None"]


def _outputs(logits: np.ndarray, fit_seconds: float, predict_seconds: float, meta: dict[str, Any],
             extras: dict[str, np.ndarray] | None = None) -> ModelOutputs:
    return {"logits": np.asarray(logits, dtype=np.float32), "fit_seconds": float(fit_seconds),
            "predict_seconds": float(predict_seconds), "meta": meta, "extras": extras}


def _compute_group(state: WorkState, task: Task) -> Iterator[ModelResult]:
    """Many models at once through ``recipe.train_group``; then query each."""
    recipe, X = state.recipe, state.X
    n, c = len(state.y), int(recipe.n_classes)
    try:
        started, cpu0 = time.time(), time.thread_time()
        t0 = time.perf_counter()
        with model_slot(task.indices[0]):  # a torch recipe's GPU: the group's first model's
            models = recipe.train_group(X, state.y, task.masks, list(task.seeds))
        fit_each = (time.perf_counter() - t0) / len(task.indices)
        if len(models) != len(task.indices):
            raise TrainingError(f"recipe.train_group returned {len(models)} models for {len(task.indices)} masks")
    except Exception as exc:  # noqa: BLE001 - reported per model
        for i, key in zip(task.indices, task.keys):
            yield i, key, one_line(exc), None
        return
    for i, key, seed, model in zip(task.indices, task.keys, task.seeds, models):
        try:
            t1 = time.perf_counter()
            with model_slot(task.indices[0]):
                logits = _check_logits(recipe.predict_logits(model, X), n, c)
                extras = _extras(recipe, model, X)
            t2 = time.perf_counter()
            yield i, key, None, _outputs(logits, fit_each, t2 - t1,
                                         _meta(seed, state, started, cpu0, group=len(task.indices)), extras)
        except Exception as exc:  # noqa: BLE001
            yield i, key, one_line(exc), None


def compute_task(state: WorkState, task: Task) -> Iterator[ModelResult]:
    """Train and query the models of one task, yielding each model's outputs (or error) as it is done.

    Nothing is written: :func:`run_task` writes each result into ``state.run_dir`` (inline and process
    workers, which share this machine's disk); the ray executor returns them to the driver, which writes them.
    """
    add_import_paths(state.import_paths)  # every executor: the config's folder, for estimators next to it
    if task.group:
        yield from _compute_group(state, task)
        return
    recipe, X, y = state.recipe, state.X, state.y
    n, c = len(y), int(recipe.n_classes)
    for i, key, mask, seed in zip(task.indices, task.keys, task.masks, task.seeds):
        try:
            started, cpu0 = time.time(), time.thread_time()
            t0 = time.perf_counter()
            with model_slot(i):  # a torch recipe with device "cuda"/"auto": GPU i mod n_gpus
                model = recipe.train(_take(X, mask), y[mask], seed=int(seed))
                t1 = time.perf_counter()
                logits = _check_logits(recipe.predict_logits(model, X), n, c)
                extras = _extras(recipe, model, X)
            t2 = time.perf_counter()
            yield i, key, None, _outputs(logits, t1 - t0, t2 - t1, _meta(seed, state, started, cpu0), extras)
        except Exception as exc:  # noqa: BLE001 - reported per model, the others go on
            yield i, key, one_line(exc), None


def write_outputs(run_dir: str | os.PathLike[str], key: str, outputs: ModelOutputs) -> None:
    """Store one model's outputs in the cache of ``run_dir`` (atomically)."""
    write_model_file(model_path(Path(run_dir), key), logits=outputs["logits"], fit_seconds=outputs["fit_seconds"],
                     predict_seconds=outputs["predict_seconds"], meta=outputs["meta"],
                     extras=outputs.get("extras"))


def run_task(state: WorkState, task: Task) -> list[Outcome]:
    """Train the models of one task, write each model's file the moment it is done, return (index, error or None)."""
    out: list[Outcome] = []
    for i, key, err, outputs in compute_task(state, task):
        if err is None and outputs is not None:
            try:
                write_outputs(state.run_dir, key, outputs)
            except Exception as exc:  # noqa: BLE001 - e.g. a full disk: reported per model
                err = one_line(exc)
        out.append((i, err))
    return out


def worker_task(task: Task) -> list[Outcome]:
    """One task in a worker process, with the state :func:`init_worker` stored."""
    try:
        return run_task(_STATE["state"], task)
    except BaseException as exc:  # pragma: no cover - last resort, keep the pool alive
        return [(i, one_line(exc) + " " + traceback.format_exc(limit=1).replace("\n", " ")) for i in task.indices]


def ready() -> bool:
    """A probe: a worker process that answers it has started."""
    return True
