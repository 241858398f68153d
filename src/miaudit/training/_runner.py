"""Train K reference models in parallel processes, caching each model's logits the moment it finishes.

The game (Carlini et al. 2022, LiRA, Sec. IV-B; field notes §1): K models of one recipe, model k trained on
the pool examples where ``membership[k]`` is True, each queried on *all* N pool examples. Each model is one
task; a task's output is written to ``run_dir/models/<key>.npz`` by the worker itself (temporary file +
:func:`os.replace`), so killing the run at any moment loses at most the models in flight, and re-running
trains only the models whose file is missing.

Determinism: a model depends only on (recipe, data, membership row, seed); every worker (and the in-process
path of ``jobs=1``) pins BLAS/OpenMP to one thread, so results are identical whatever ``jobs`` is.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import threading
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import ConfigError, InputError, TrainingError
from ._cache import (
    data_fingerprint,
    model_key,
    model_path,
    read_model_file,
    remove_stale_temporaries,
    write_model_file,
)
from ._recipe import Recipe

__all__ = ["TrainedModels", "TrainingProgress", "train_models", "model_seeds", "default_jobs"]

_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


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

    ``logits`` (K, N, A, C) float32; ``membership`` (K, N) bool; ``train_accuracy``/``test_accuracy`` (K,)
    float64 measured with query 0 on the pool examples each model did / did not train on (NaN if none);
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


def model_seeds(seed: int | np.random.SeedSequence, n_models: int) -> list[int]:
    """Per-model seeds derived from ``seed`` with :meth:`numpy.random.SeedSequence.spawn`.

    Child ``k`` does not depend on ``n_models``, so growing K keeps the first models' seeds.
    """
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(int(seed))
    children = root.spawn(int(n_models))
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in children]


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# ---------------------------------------------------------------------------------------------------
# worker side
# ---------------------------------------------------------------------------------------------------

_STATE: dict[str, Any] = {}
_LIMITER: Any = None


def _pin_threads() -> None:
    global _LIMITER
    for var in _THREAD_ENV:
        os.environ[var] = "1"
    from threadpoolctl import threadpool_limits

    _LIMITER = threadpool_limits(limits=1)
    if "torch" in sys.modules:  # pragma: no cover - torch recipes
        try:
            sys.modules["torch"].set_num_threads(1)
        except Exception:
            pass


def _init_worker(state: dict[str, Any]) -> None:
    """Pool initializer: pin threads, keep the recipe and data for every task of this worker."""
    _pin_threads()
    _STATE.clear()
    _STATE.update(state)


def _take(X: Any, mask: np.ndarray) -> Any:
    idx = np.flatnonzero(mask)
    if hasattr(X, "iloc"):
        return X.iloc[idx]
    return X[idx]


def _one_line(exc: BaseException) -> str:
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


def _meta(seed: int, state: dict[str, Any], started: float, cpu0: float, *, group: int = 1) -> dict[str, Any]:
    """Provenance stored with a model file (not part of its key): seed, recipe, who trained it, when, and
    the CPU seconds its thread spent (train + predict; BLAS is pinned to that thread)."""
    return {"seed": int(seed), "recipe": state["spec"], "pid": os.getpid(), "thread": threading.get_ident(),
            "group": group, "started": started, "finished": time.time(), "cpu_seconds": time.thread_time() - cpu0,
            "process_cpu_seconds": time.process_time()}


def _run_task(state: dict[str, Any], task: dict[str, Any]) -> list[tuple[int, str | None]]:
    """Train the models of one task, write their files, return (index, error or None) per model."""
    recipe: Recipe = state["recipe"]
    X, y, run_dir = state["X"], state["y"], Path(state["run_dir"])
    n, c = len(y), int(recipe.n_classes)
    indices, keys, masks, seeds = task["indices"], task["keys"], task["masks"], task["seeds"]
    out: list[tuple[int, str | None]] = []
    if task.get("group"):  # many models at once through recipe.train_group
        try:
            started, cpu0 = time.time(), time.thread_time()
            t0 = time.perf_counter()
            models = recipe.train_group(X, y, masks, list(seeds))  # type: ignore[attr-defined]
            fit_each = (time.perf_counter() - t0) / len(indices)
            if len(models) != len(indices):
                raise TrainingError(f"recipe.train_group returned {len(models)} models for {len(indices)} masks")
        except Exception as exc:  # noqa: BLE001 - reported per model
            return [(i, _one_line(exc)) for i in indices]
        for i, key, seed, model in zip(indices, keys, seeds, models):
            try:
                t1 = time.perf_counter()
                logits = _check_logits(recipe.predict_logits(model, X), n, c)
                t2 = time.perf_counter()
                write_model_file(model_path(run_dir, key), logits=logits, fit_seconds=fit_each,
                                 predict_seconds=t2 - t1,
                                 meta=_meta(seed, state, started, cpu0, group=len(indices)))
                out.append((i, None))
            except Exception as exc:  # noqa: BLE001
                out.append((i, _one_line(exc)))
        return out
    for i, key, mask, seed in zip(indices, keys, masks, seeds):
        try:
            started, cpu0 = time.time(), time.thread_time()
            t0 = time.perf_counter()
            model = recipe.train(_take(X, mask), y[mask], seed=int(seed))
            t1 = time.perf_counter()
            logits = _check_logits(recipe.predict_logits(model, X), n, c)
            t2 = time.perf_counter()
            write_model_file(model_path(run_dir, key), logits=logits, fit_seconds=t1 - t0,
                             predict_seconds=t2 - t1, meta=_meta(seed, state, started, cpu0))
            out.append((i, None))
        except Exception as exc:  # noqa: BLE001 - reported per model, the others go on
            out.append((i, _one_line(exc)))
    return out


def _worker_task(task: dict[str, Any]) -> list[tuple[int, str | None]]:
    try:
        return _run_task(_STATE, task)
    except BaseException as exc:  # pragma: no cover - last resort, keep the pool alive
        return [(i, _one_line(exc) + " " + traceback.format_exc(limit=1).replace("\n", " ")) for i in task["indices"]]


# ---------------------------------------------------------------------------------------------------
# parent side
# ---------------------------------------------------------------------------------------------------


def _validate(recipe: Any, X: Any, y: Any, membership: Any, seeds: Any) -> tuple[np.ndarray, np.ndarray, list[int]]:
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
    m = np.asarray(membership)
    if m.ndim != 2 or m.shape[1] != n or m.shape[0] < 1:
        raise InputError(f"membership: expected a bool array of shape (K, {n}), got shape {m.shape}; "
                         "build it with miaudit.data.balanced_membership")
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


def _make_tasks(recipe: Any, pending: list[int], keys: list[str], membership: np.ndarray, seeds: list[int]) -> list[dict[str, Any]]:
    grouped = callable(getattr(recipe, "train_group", None))
    group_size = max(1, int(getattr(recipe, "group_size", 1) or 1)) if grouped else 1
    tasks = []
    for start in range(0, len(pending), group_size):
        idx = pending[start:start + group_size]
        tasks.append({
            "indices": idx,
            "keys": [keys[i] for i in idx],
            "masks": membership[idx],
            "seeds": [seeds[i] for i in idx],
            "group": grouped,
        })
    return tasks


def _mp_context(name: str | None, preload: Sequence[str] = ()) -> Any:
    """The multiprocessing context; a forkserver imports ``preload`` once, so forked workers need not.

    Preloading only takes effect before this process's forkserver starts (its first pool); later pools
    reuse the running server and start in milliseconds.
    """
    if name is None:
        name = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    if name not in ("spawn", "forkserver", "fork"):
        raise ConfigError(f"mp_context: expected 'forkserver', 'spawn' or 'fork', got {name!r}")
    if name not in mp.get_all_start_methods():
        raise ConfigError(f"mp_context: {name!r} is not available on this platform; use 'spawn'")
    ctx = mp.get_context(name)
    if name == "forkserver":
        ctx.set_forkserver_preload(list(dict.fromkeys(["miaudit.training._runner", "sklearn.base", *preload])))
    return ctx


def _preload(recipe: Any) -> list[str]:
    fn = getattr(recipe, "preload_modules", None)
    try:
        mods = list(fn()) if callable(fn) else []
    except Exception:  # noqa: BLE001 - an optimisation only
        mods = []
    return [m for m in mods if isinstance(m, str)]


def train_models(
    recipe: Recipe,
    X: Any,
    y: np.ndarray,
    membership: np.ndarray,
    *,
    seeds: Sequence[int],
    run_dir: str | os.PathLike[str],
    jobs: int | None = None,
    progress: ProgressCallback | None = None,
    executor: str = "process",
    mp_context: str | None = None,
    local_worker: bool = True,
) -> TrainedModels:
    """Train model k of ``recipe`` on ``X[membership[k]]`` with ``seeds[k]``; return all models' logits on X.

    Parameters
    ----------
    recipe:
        A :class:`~miaudit.training.Recipe`. If it has ``train_group`` and ``group_size``, models are
        trained ``group_size`` at a time through it (one task per group).
    X, y:
        The pool: an array or DataFrame of N examples and int labels in ``[0, recipe.n_classes)``.
    membership:
        (K, N) bool; row k marks model k's training examples (see ``miaudit.data.balanced_membership``).
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
        ``"process"`` (default) or ``"ray"`` (needs ``pip install "miaudit[ray]"``).
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
    y, membership, seeds_list = _validate(recipe, X, y, membership, seeds)
    if jobs is None:
        jobs = default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise InputError(f"jobs: expected an int >= 1, got {jobs!r}; use --jobs 1 to train in this process")
    if executor not in ("process", "ray"):
        raise InputError(f"executor: expected 'process' or 'ray', got {executor!r}")
    K, N = membership.shape
    run_dir = Path(run_dir)
    models_dir = run_dir / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(models_dir)

    spec = recipe.spec()
    fp = data_fingerprint(X, y)
    keys = [model_key(spec, fp, membership[k], seeds_list[k]) for k in range(K)]
    C = int(recipe.n_classes)

    loaded: set[str] = set()  # keys whose file is complete and of the right shape
    for key in dict.fromkeys(keys):
        if read_model_file(model_path(run_dir, key), n_examples=N, n_classes=C) is not None:
            loaded.add(key)
    first_of_key: dict[str, int] = {}
    for k, key in enumerate(keys):
        first_of_key.setdefault(key, k)
    pending = [k for key, k in first_of_key.items() if key not in loaded]
    pending.sort()
    tasks = _make_tasks(recipe, pending, keys, membership, seeds_list)
    n_cached = K - sum(1 for k in range(K) if keys[k] not in loaded)

    state = {"recipe": recipe, "X": X, "y": y, "run_dir": str(run_dir), "spec": spec}
    failures: dict[int, str] = {}
    done = 0

    def report(last: int | None) -> None:
        if progress is not None:
            progress(TrainingProgress(n_done=done, n_total=len(pending), n_cached=n_cached,
                                      n_failed=len(failures), last_index=last))

    report(None)
    n_workers = max(1, min(int(jobs), len(tasks)))
    if tasks:
        if executor == "ray":
            results_iter = _run_ray(state, tasks, n_workers)
        elif n_workers == 1:
            results_iter = _run_inline(state, tasks)
        else:
            results_iter = _run_pool(state, tasks, n_workers, _mp_context(mp_context, _preload(recipe)),
                                     local_worker)
        for outcomes in results_iter:
            for i, err in outcomes:
                if err is None:
                    done += 1
                else:
                    failures[i] = err
                report(i)

    if failures:
        first = min(failures)
        n_ok = sum(1 for k in range(K) if model_path(run_dir, keys[k]).exists())
        others = sorted(failures)[1:]
        more = f" ({len(others)} more failed: models {', '.join(map(str, others[:10]))}{'...' if len(others) > 10 else ''})" if others else ""
        raise TrainingError(
            f"model {first} (seed {seeds_list[first]}) failed: {failures[first]}{more}; "
            f"{n_ok} of {K} models are finished and cached in {models_dir}; fix the recipe and re-run to train only the missing ones"
        )

    logits: np.ndarray | None = None  # filled in place: peak memory one (K, N, A, C) float32 array
    fit_s, pred_s = np.zeros(K), np.zeros(K)
    for k, key in enumerate(keys):
        res = read_model_file(model_path(run_dir, key), n_examples=N, n_classes=C)
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
    assert logits is not None
    pred = logits[:, :, 0, :].argmax(axis=2)
    correct = pred == y[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        train_acc = (correct & membership).sum(1) / membership.sum(1)
        n_out = (~membership).sum(1)
        test_acc = np.where(n_out > 0, (correct & ~membership).sum(1) / np.maximum(n_out, 1), np.nan)
    pending_set = set(pending)
    trained_now = np.array([k in pending_set for k in range(K)], dtype=bool)
    return TrainedModels(
        logits=logits,
        membership=membership,
        seeds=tuple(seeds_list),
        keys=tuple(keys),
        train_accuracy=train_acc.astype(np.float64),
        test_accuracy=test_acc.astype(np.float64),
        fit_seconds=fit_s,
        predict_seconds=pred_s,
        trained_now=trained_now,
        wall_seconds=time.perf_counter() - wall0,
        jobs=n_workers,
        run_dir=run_dir,
    )


def _run_inline(state: dict[str, Any], tasks: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    from threadpoolctl import threadpool_limits

    for task in tasks:
        with threadpool_limits(limits=1):
            outcomes = _run_task(state, task)
        yield outcomes


def _run_pool(state: dict[str, Any], tasks: list[dict[str, Any]], n_workers: int, ctx: Any,
              local_worker: bool = True):  # type: ignore[no-untyped-def]
    """Yield each task's outcomes as it finishes, from ``n_workers`` concurrent trainers.

    With ``local_worker``, one trainer is a thread of this process (BLAS pinned to one thread) and
    ``n_workers - 1`` are worker processes: this process starts training at once while the workers
    start up (seconds on a loaded machine), which keeps the time outside training small. Tasks are
    handed out one at a time from a shared queue, so fast trainers take more of them.
    """
    n_procs = n_workers - 1 if local_worker else n_workers
    queue_lock = threading.Lock()
    todo = deque(tasks)
    results: queue.Queue[tuple[str, dict[str, Any] | None, Any]] = queue.Queue()
    stop = threading.Event()

    def next_task() -> dict[str, Any] | None:
        with queue_lock:
            return todo.popleft() if todo else None

    def local() -> None:
        from threadpoolctl import threadpool_limits

        torch = sys.modules.get("torch")  # the local trainer runs under a worker's conditions: one thread
        torch_threads = torch.get_num_threads() if torch is not None else None
        try:
            if torch is not None:
                torch.set_num_threads(1)
            with threadpool_limits(limits=1):
                while not stop.is_set():
                    task = next_task()
                    if task is None:
                        break
                    try:
                        outcomes = _run_task(state, task)
                    except BaseException as exc:  # noqa: BLE001 - reported per model
                        outcomes = [(i, _one_line(exc)) for i in task["indices"]]
                    results.put(("local", task, outcomes))
        finally:
            if torch is not None and torch_threads is not None:
                torch.set_num_threads(torch_threads)
            results.put(("local-done", None, None))

    # Worker processes are started by a helper thread: starting them can block for seconds (the
    # forkserver imports numpy and scikit-learn before it forks anything), while the local trainer
    # already works and this thread collects results. Workers announce themselves with a probe before
    # they get a model, so no model waits on a process that is still starting.
    pool_box: dict[str, ProcessPoolExecutor] = {}
    pool_lock = threading.Lock()

    def start_pool() -> None:
        try:
            new_pool = ProcessPoolExecutor(max_workers=n_procs, mp_context=ctx, initializer=_init_worker,
                                           initargs=(state,))
            with pool_lock:
                if stop.is_set():
                    new_pool.shutdown(wait=False, cancel_futures=True)
                    return
                pool_box["pool"] = new_pool
            for _ in range(n_procs):
                if stop.is_set():
                    break
                new_pool.submit(_ready).add_done_callback(lambda f: results.put(("probe", None, f)))
            with pool_lock:
                pool_box["started"] = new_pool
                if stop.is_set():  # the run ended while the workers were starting: we shut down
                    new_pool.shutdown(wait=False, cancel_futures=True)
        except Exception as exc:  # noqa: BLE001 - no workers: the local trainer (if any) does it all
            results.put(("pool-failed", None, exc))

    def submit() -> bool:
        task = next_task()
        pool = pool_box.get("pool")
        if task is None or pool is None:
            return False
        try:
            fut = pool.submit(_worker_task, task)
        except (BrokenProcessPool, RuntimeError):  # the pool died: the local trainer takes over
            with queue_lock:
                todo.appendleft(task)
            return False
        fut.add_done_callback(lambda f, t=task: results.put(("pool", t, f)))
        return True

    local_alive = local_worker
    starter = threading.Thread(target=start_pool, name="miaudit-pool-starter", daemon=True)
    if ctx.get_start_method() == "fork":
        # fork copies this process, imports included, so workers start in milliseconds; the forks
        # happen here, before this function starts any thread
        start_pool()
    if local_worker:
        threading.Thread(target=local, name="miaudit-local-trainer", daemon=True).start()
    if ctx.get_start_method() != "fork":
        starter.start()
    probes = n_procs
    in_flight = 0
    try:
        while in_flight or local_alive or (probes and todo):
            kind, task, payload = results.get()
            if kind == "local-done":
                local_alive = False
            elif kind == "local":
                yield payload
            elif kind == "pool-failed":
                probes = 0
            elif kind == "probe":
                probes -= 1
                if not payload.cancelled() and payload.exception() is None and submit():
                    in_flight += 1
            else:
                in_flight -= 1
                assert task is not None
                try:
                    outcomes = payload.result()
                except BrokenProcessPool:
                    outcomes = [(i, "the worker process died (killed, or out of memory)") for i in task["indices"]]
                except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
                    outcomes = [(i, _one_line(exc)) for i in task["indices"]]
                yield outcomes
                if submit():
                    in_flight += 1
        while todo:  # only when every worker process died and there is no local trainer
            t = todo.popleft()
            yield [(i, "not trained: the worker processes died") for i in t["indices"]]
    except BaseException:
        _stop_pool(stop, pool_lock, pool_box, wait=False)
        raise
    # If the run was shorter than the workers' start-up, wait for the starter (not for the workers):
    # a process started after this one exits would fail noisily. Workers still starting are shut
    # down in the background and joined at interpreter exit.
    stop.set()
    if starter.is_alive() or starter.ident is not None:
        starter.join()
    _stop_pool(stop, pool_lock, pool_box, wait=probes == 0)


def _stop_pool(stop: threading.Event, lock: threading.Lock, box: dict[str, ProcessPoolExecutor], *, wait: bool) -> None:
    """Shut the pool down, unless its starter thread still holds it (then the starter does it)."""
    with lock:
        stop.set()
        pool = box.get("started")
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)


def _ready() -> bool:
    return True


def _ray_entry(state: dict[str, Any], task: dict[str, Any]) -> list[tuple[int, str | None]]:
    """One task on a ray worker: pin threads, train, write the model files (same as a process worker)."""
    _init_worker(state)
    return _worker_task(task)


def _run_ray(state: dict[str, Any], tasks: list[dict[str, Any]], n_workers: int):  # type: ignore[no-untyped-def]
    from .._errors import import_optional

    ray = import_optional("ray", "ray")
    if not ray.is_initialized():
        ray.init(num_cpus=n_workers, include_dashboard=False, log_to_driver=False)
    state_ref = ray.put(state)  # stored once; numpy arrays are read zero-copy by every task
    remote = ray.remote(num_cpus=1)(_ray_entry)
    refs = {remote.remote(state_ref, task): task for task in tasks}
    remaining = list(refs)
    while remaining:
        ready, remaining = ray.wait(remaining, num_returns=1)
        for ref in ready:
            try:
                yield ray.get(ref)
            except Exception as exc:  # noqa: BLE001
                yield [(i, _one_line(exc)) for i in refs[ref]["indices"]]
