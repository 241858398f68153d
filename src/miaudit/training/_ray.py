"""The ray executor: every task a Ray task, its outputs returned to the driver, which caches them.

* **Data once.** The recipe and the pool (:class:`~miaudit.training._plan.WorkState`) go to the object
  store once (``ray.put``); every task gets a reference, and NumPy arrays are read zero-copy on each node.
* **Outputs travel to the driver.** A task trains and queries its models (:func:`~._work.compute_task`)
  and *returns* their outputs through the object store; the driver writes each one into its own cache
  (``run_dir/models/<key>.npz``, atomically) as soon as it arrives. Workers never touch the run folder,
  so no shared filesystem is needed.
* **Faults.** A task is idempotent: its models depend only on (recipe, data, membership row, seed), which
  is also their cache key, so running it twice gives the same bytes. Ray re-runs a task whose worker or
  node died up to ``max_retries`` times (system failures only, ``retry_exceptions=False``). A model that
  fails for a reason of its own (the recipe raised) fails the run at once with that error: the remaining
  tasks are cancelled, the finished models stay cached, and a re-run trains only the missing ones, as
  after a driver killed mid-run.
* **Connection.** ``address=None`` starts a local Ray for the run (on 127.0.0.1, no dashboard, quiet) and
  stops it afterwards; ``"auto"`` follows ``RAY_ADDRESS``; anything else is passed to ``ray.init``. A
  Ray session this process already has is used as it is (and left running).
* **Resources.** Each task asks for ``num_cpus`` and ``num_gpus`` (fractions allowed: ``num_gpus = 0.25``
  puts four models on one GPU; Ray sets ``CUDA_VISIBLE_DEVICES`` for the task, which a torch recipe with
  ``device = "auto"`` follows). BLAS/OpenMP stay pinned to one thread per task whatever ``num_cpus`` is,
  so results do not depend on it.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from .._errors import InputError, TrainingError
from .._imports import import_optional
from ._cache import _library_versions
from ._plan import Task, WorkState
from ._work import ModelResult, compute_task, one_line, pin_threads, write_outputs

__all__ = ["RayExecutor", "connect_ray", "ray_entry"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def ray_entry(state: WorkState, task: Task) -> tuple[dict[str, str], list[ModelResult]]:
    """One task on a Ray worker: pin threads, train and query its models, return their outputs and this
    worker's library versions (the driver checks them against its own: they are part of the cache key)."""
    pin_threads()
    return _library_versions(), list(compute_task(state, task))


def _resolve_address(address: str | None) -> str | None:
    if address == "auto":
        env = os.environ.get("RAY_ADDRESS", "").strip()
        return env or "auto"
    return address


def _host(address: str) -> str:
    rest = address.split("://", 1)[-1]
    return rest.rsplit(":", 1)[0].strip("[]") if ":" in rest else rest


def _reachable(address: str, timeout: float = 5.0) -> str | None:
    """Why nothing answers at ``HOST:PORT`` (a TCP connect), or None; Ray itself retries for minutes."""
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        return None  # not HOST:PORT: let Ray judge it
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _cannot_connect(address: str | None, target: str, why: str) -> InputError:
    shown = address if address == target else f"{address} ({target})"
    return InputError(
        f"--address {shown}: cannot connect to a Ray cluster ({why}); pass the address `ray status` prints on "
        "the head node (HOST:PORT or ray://HOST:PORT), or leave --address out to start a local Ray"
    )


def connect_ray(address: str | None, *, num_cpus: float) -> tuple[Any, bool]:
    """``(ray, started)``: ray connected to the cluster at ``address`` (module docstring); ``started``
    says whether this call connected (and the caller should ``ray.shutdown()``)."""
    target = _resolve_address(address)
    if target is None and "ray" not in sys.modules:
        # a local Ray only: keep the driver on loopback too (read once, when ray is imported)
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_optional("ray", "ray")
    if ray.is_initialized():
        return ray, False
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if target is None:
        kw.update(address="local", num_cpus=max(1, math.ceil(num_cpus)), _node_ip_address="127.0.0.1")
    else:
        if target != "auto" and (why := _reachable(target)) is not None:
            raise _cannot_connect(address, target, why)
        kw["address"] = target
        if not target.startswith("ray://"):
            del kw["include_dashboard"]  # a setting of the cluster's head, not of a driver joining it
            if target != "auto" and _host(target) in _LOOPBACK:
                kw["_node_ip_address"] = "127.0.0.1"
    try:
        ray.init(**kw)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        if target is None:
            raise
        raise _cannot_connect(address, target, one_line(exc)) from None
    return ray, True


def _check_resources(ray: Any, num_cpus: float, num_gpus: float) -> None:
    """Refuse requests no node of the cluster can ever meet (the tasks would wait forever)."""
    try:
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    except Exception:  # noqa: BLE001 - a client connection may not list nodes: Ray schedules as it can
        return
    if not nodes:
        return
    if num_gpus > 0 and not any(r.get("GPU", 0) >= min(num_gpus, 1) for r in nodes):
        total = sum(r.get("GPU", 0) for r in nodes)
        raise InputError(
            f"num_gpus: each model asks for {num_gpus:g} GPU but no node of the Ray cluster has one "
            f"({total:g} GPUs in all); set [execution] num_gpus = 0 to train on CPUs, or add GPU nodes"
        )
    if not any(r.get("CPU", 0) >= num_cpus for r in nodes):
        best = max(r.get("CPU", 0) for r in nodes)
        raise InputError(
            f"num_cpus: each model asks for {num_cpus:g} CPUs but the largest node of the Ray cluster has "
            f"{best:g}; lower [execution] num_cpus or add a larger node"
        )


def _error_of(exc: BaseException) -> str:
    """A one-line error for a task Ray could not run: the recipe's own exception when there is one."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return one_line(cause)
    text = one_line(exc).split(" traceback: ", 1)[0]
    return text if "ray" in text.lower() else f"ray: {text}"


class RayExecutor:
    """Every task as a Ray task (module docstring); ``n_workers`` CPUs for a local Ray started here."""

    def __init__(self, n_workers: int, *, address: str | None = None, num_cpus: float = 1.0,
                 num_gpus: float = 0.0, max_retries: int = 3) -> None:
        self.n_workers = n_workers
        self.address = address
        self.num_cpus = float(num_cpus)
        self.num_gpus = float(num_gpus)
        self.max_retries = int(max_retries)

    def run(self, state: WorkState, tasks: Sequence[Task], on_model: Any) -> None:
        ray, started = connect_ray(self.address, num_cpus=self.n_workers * self.num_cpus)
        try:
            _check_resources(ray, self.num_cpus, self.num_gpus)
            self._run(ray, state, tasks, on_model)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, state: WorkState, tasks: Sequence[Task], on_model: Any) -> None:
        driver_versions = _library_versions()
        state_ref = ray.put(state)  # once: every task reads the same object
        remote = ray.remote(ray_entry).options(num_cpus=self.num_cpus, num_gpus=self.num_gpus,
                                               max_retries=self.max_retries, retry_exceptions=False)
        refs = {remote.remote(state_ref, task): task for task in tasks}
        remaining = list(refs)
        try:
            while remaining:
                done, remaining = ray.wait(remaining, num_returns=1)
                failed = False
                for ref in done:
                    task = refs[ref]
                    try:
                        versions, results = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - retries spent, or the task could not start
                        err = _error_of(exc)
                        results = [(i, key, err, None) for i, key in zip(task.indices, task.keys)]
                        versions = driver_versions
                    if versions != driver_versions:
                        raise TrainingError(
                            f"a Ray worker has {_versions(versions)}, this process {_versions(driver_versions)}: "
                            "its models would not match their cache keys; install the same versions on every node"
                        )
                    for i, key, err, outputs in results:
                        if err is None and outputs is not None:
                            write_outputs(state.run_dir, key, outputs)
                        failed = failed or err is not None
                        on_model(i, err)
                if failed:  # the recipe's own error: no point in training the rest
                    break
        finally:
            for ref in remaining:
                ray.cancel(ref)


def _versions(v: dict[str, str]) -> str:
    return ", ".join(f"{k} {v[k]}" for k in sorted(v))
