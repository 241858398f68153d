"""Where and how reference models train: the ``[execution]`` settings of an audit.

:class:`Execution` holds the executor (``"process"`` or ``"ray"``), the Ray cluster's address and what
each model asks of the cluster (``num_cpus``, ``num_gpus``, fractions allowed, and ``max_retries``
after a node or worker failure). None of it changes a result: a model depends only on its recipe, data,
membership row and seed (the cache key), so the same audit gives the same bytes on any executor.

Addresses: ``None`` starts a local Ray on 127.0.0.1 for the run (as ``ray.init()`` on a laptop);
``"auto"`` follows ``RAY_ADDRESS`` (or a cluster started with ``ray start`` on this machine);
``"HOST:PORT"`` or ``"ray://HOST:PORT"`` connects to that cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .._errors import InputError

__all__ = ["EXECUTION_KEYS", "Execution", "execution_problems"]

#: The keys of the config's ``[execution]`` section.
EXECUTION_KEYS = ("executor", "address", "num_cpus", "num_gpus", "max_retries")

_EXECUTORS = ("process", "ray")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def execution_problems(values: dict[str, Any], *, flag: bool = False) -> list[str]:
    """Why ``values`` (a subset of :data:`EXECUTION_KEYS`) are not valid settings; empty when they are.

    Messages name the config key (``[execution] num_gpus``), or with ``flag`` the CLI option.
    """
    def where(key: str) -> str:
        return f"--{key.replace('_', '-')}" if flag else f"[execution] {key}"

    out = []
    for key, v in values.items():
        if key not in EXECUTION_KEYS:
            out.append(f"unknown key {key!r} in [execution]; valid keys: {', '.join(EXECUTION_KEYS)}")
        elif v is None:
            continue
        elif key == "executor" and v not in _EXECUTORS:
            out.append(f"{where(key)}: expected 'process' or 'ray', got {v!r}")
        elif key == "address" and not (isinstance(v, str) and v.strip()):
            out.append(f"{where(key)}: expected 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got {v!r}")
        elif key == "num_cpus" and not (_number(v) and v > 0):
            out.append(f"{where(key)}: expected a number > 0 (CPUs per model, e.g. 1 or 0.5), got {v!r}")
        elif key == "num_gpus" and not (_number(v) and v >= 0):
            out.append(f"{where(key)}: expected a number >= 0 (GPUs per model; 0.25 lets 4 models share one), "
                       f"got {v!r}")
        elif key == "max_retries" and not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            out.append(f"{where(key)}: expected an integer >= 0 (re-runs of a model after a node failure), got {v!r}")
    if values.get("address") is not None and values.get("executor", "process") == "process":
        fix = "--executor ray" if flag else '[execution] executor = "ray"'
        out.append(f"{where('address')}: a Ray cluster's address needs the ray executor ({fix})")
    return out


@dataclass(frozen=True)
class Execution:
    """How the reference models train (see the module docstring); validated on construction."""

    executor: str = "process"
    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        problems = execution_problems({k: getattr(self, k) for k in EXECUTION_KEYS})
        if problems:
            raise InputError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in EXECUTION_KEYS if getattr(self, k) is not None}
