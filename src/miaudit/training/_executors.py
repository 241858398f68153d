"""Executors: where the tasks of a :class:`~miaudit.training._plan.Plan` run.

One interface, :class:`Executor`: ``run(state, tasks, on_model)`` runs every task and calls
``on_model(index, error)`` once per model as soon as it is finished (``error`` None) or failed (a
one-line message). Three implementations:

* :class:`InlineExecutor`: this process, one task after the other (``jobs=1``);
* :class:`PoolExecutor`: ``jobs`` concurrent trainers, worker processes plus optionally a thread of
  this process (``local_worker``);
* :class:`~miaudit.training._ray.RayExecutor`: Ray tasks on a local Ray or a cluster, outputs returned to
  this process (``pip install "miaudit[ray]"``; :mod:`miaudit.training._ray`).

:class:`ExecutorName` names the user-facing choices; :func:`make_executor` maps each to its
implementation through one table.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor as _Pool
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from .._errors import ConfigError, InputError
from ._plan import Task, WorkState
from ._work import Outcome, init_worker, one_line, ready, run_task, worker_task

__all__ = [
    "Executor",
    "ExecutorName",
    "ExecutorOptions",
    "InlineExecutor",
    "ModelCallback",
    "PoolExecutor",
    "EXECUTORS",
    "make_executor",
    "mp_context",
]

#: Called once per model: ``(model index, None or a one-line error)``.
ModelCallback = Callable[[int, "str | None"], None]


class Executor(Protocol):
    """Runs tasks and reports every model to ``on_model`` as soon as it is finished or failed."""

    def run(self, state: WorkState, tasks: Sequence[Task], on_model: ModelCallback) -> None: ...


def _report(on_model: ModelCallback, outcomes: Iterable[Outcome]) -> None:
    for i, err in outcomes:
        on_model(i, err)


class ExecutorName(StrEnum):
    """The ``executor`` choices of :func:`~miaudit.training.train_models`."""

    PROCESS = "process"
    RAY = "ray"

    @classmethod
    def parse(cls, value: Any) -> ExecutorName:
        try:
            return cls(value)
        except ValueError:
            choices = " or ".join(repr(m.value) for m in cls)
            raise InputError(f"executor: expected {choices}, got {value!r}") from None


@dataclass(frozen=True)
class ExecutorOptions:
    """How to run: ``n_workers`` concurrent trainers; the process pool's start method, whether this process
    trains too, and the modules its forkserver imports once; for ray, the cluster's address and each
    task's resources and retries (:class:`~miaudit.training._execution.Execution`)."""

    n_workers: int
    mp_context: str | None = None
    local_worker: bool = True
    preload: Sequence[str] = field(default_factory=tuple)
    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 3


def mp_context(name: str | None, preload: Sequence[str] = ()) -> Any:
    """The multiprocessing context; a forkserver imports ``preload`` once, so forked workers need not.

    Only what the recipe names (``preload_modules``): the first worker waits for the forkserver's imports,
    so a module the workers never use (scikit-learn for a torch recipe: over a second) delays training.

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
        ctx.set_forkserver_preload(list(dict.fromkeys(["miaudit.training._work", *preload])))
    return ctx


# ---------------------------------------------------------------------------------------------------
# inline
# ---------------------------------------------------------------------------------------------------


class InlineExecutor:
    """Every task in this process, one after the other, BLAS pinned to one thread."""

    def run(self, state: WorkState, tasks: Sequence[Task], on_model: ModelCallback) -> None:
        from threadpoolctl import threadpool_limits

        for task in tasks:
            with threadpool_limits(limits=1):
                outcomes = run_task(state, task)
            _report(on_model, outcomes)


# ---------------------------------------------------------------------------------------------------
# local process pool
# ---------------------------------------------------------------------------------------------------


class PoolExecutor:
    """``n_workers`` concurrent trainers: worker processes, and with ``local_worker`` a thread of this process.

    With ``local_worker``, one trainer is a thread of this process (BLAS pinned to one thread) and
    ``n_workers - 1`` are worker processes: this process starts training at once while the workers
    start up (seconds on a loaded machine), which keeps the time outside training small. Tasks are
    handed out one at a time from a shared queue, so fast trainers take more of them. ``False``: only
    worker processes train, isolating hard crashes of the recipe from this process.
    """

    def __init__(self, n_workers: int, ctx: Any, *, local_worker: bool = True) -> None:
        self.n_workers = n_workers
        self.ctx = ctx
        self.local_worker = local_worker

    def run(self, state: WorkState, tasks: Sequence[Task], on_model: ModelCallback) -> None:
        n_procs = self.n_workers - 1 if self.local_worker else self.n_workers
        ctx, local_worker = self.ctx, self.local_worker
        queue_lock = threading.Lock()
        todo = deque(tasks)
        results: queue.Queue[tuple[str, Task | None, Any]] = queue.Queue()
        stop = threading.Event()

        def next_task() -> Task | None:
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
                            outcomes = run_task(state, task)
                        except BaseException as exc:  # noqa: BLE001 - reported per model
                            outcomes = [(i, one_line(exc)) for i in task.indices]
                        results.put(("local", task, outcomes))
            finally:
                if torch is not None and torch_threads is not None:
                    torch.set_num_threads(torch_threads)
                results.put(("local-done", None, None))

        # Worker processes are started by a helper thread: starting them can block for seconds (the
        # forkserver imports numpy and the recipe's modules before it forks anything), while the local trainer
        # already works and this thread collects results. Workers announce themselves with a probe before
        # they get a model, so no model waits on a process that is still starting.
        pool_box: dict[str, _Pool] = {}
        pool_lock = threading.Lock()

        def put_probe(f: Future[bool]) -> None:
            results.put(("probe", None, f))

        def start_pool() -> None:
            try:
                new_pool = _Pool(max_workers=n_procs, mp_context=ctx, initializer=init_worker, initargs=(state,))
                with pool_lock:
                    if stop.is_set():
                        new_pool.shutdown(wait=False, cancel_futures=True)
                        return
                    pool_box["pool"] = new_pool
                for _ in range(n_procs):
                    if stop.is_set():
                        break
                    new_pool.submit(ready).add_done_callback(put_probe)
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
                fut = pool.submit(worker_task, task)
            except (BrokenProcessPool, RuntimeError):  # the pool died: the local trainer takes over
                with queue_lock:
                    todo.appendleft(task)
                return False

            def put_result(f: Future[list[Outcome]], t: Task = task) -> None:
                results.put(("pool", t, f))

            fut.add_done_callback(put_result)
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
                    _report(on_model, payload)
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
                        outcomes = [(i, "the worker process died (killed, or out of memory)") for i in task.indices]
                    except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
                        outcomes = [(i, one_line(exc)) for i in task.indices]
                    _report(on_model, outcomes)
                    if submit():
                        in_flight += 1
            while todo:  # only when every worker process died and there is no local trainer
                t = todo.popleft()
                _report(on_model, [(i, "not trained: the worker processes died") for i in t.indices])
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


def _stop_pool(stop: threading.Event, lock: threading.Lock, box: dict[str, _Pool], *, wait: bool) -> None:
    """Shut the pool down, unless its starter thread still holds it (then the starter does it)."""
    with lock:
        stop.set()
        pool = box.get("started")
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)


# ---------------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------------


def _local(options: ExecutorOptions) -> Executor:
    """``process``: in this process for one trainer, else a process pool."""
    if options.n_workers == 1:
        return InlineExecutor()
    return PoolExecutor(options.n_workers, mp_context(options.mp_context, options.preload),
                               local_worker=options.local_worker)


def _ray(options: ExecutorOptions) -> Executor:
    from ._ray import RayExecutor

    return RayExecutor(options.n_workers, address=options.address, num_cpus=options.num_cpus,
                       num_gpus=options.num_gpus, max_retries=options.max_retries)


#: Every :class:`ExecutorName` and its implementation (``tests/training`` checks that none is missing).
EXECUTORS: dict[ExecutorName, Callable[[ExecutorOptions], Executor]] = {
    ExecutorName.PROCESS: _local,
    ExecutorName.RAY: _ray,
}


def make_executor(name: ExecutorName, options: ExecutorOptions) -> Executor:
    """The executor called ``name``, configured by ``options`` (validates ``options.mp_context``)."""
    return EXECUTORS[name](options)
