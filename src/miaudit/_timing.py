"""Where a run's time goes: wall seconds per phase, for results.json ``run`` (``docs/results-schema.md``).

A :class:`RunClock` is started by a command (``miaudit audit``, ``demo``, ``score``) once its imports are done;
what came before is the ``startup`` phase, measured from the process's start (:func:`process_age`). While
the clock is active (:meth:`RunClock.active`), the code of each phase marks it with :func:`phase`, which does
nothing when no clock is active (the Python API, tests), so timing never changes what a run computes.
Repeated phases add up (the config is read by the command, the data by the flow: both are ``load``).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

__all__ = ["PHASES", "RunClock", "phase", "process_age"]

#: The phases, in the order a run goes through them.
PHASES = ("startup", "load", "train", "score", "metrics", "report")

_ACTIVE: ContextVar[RunClock | None] = ContextVar("miaudit_run_clock", default=None)
_IMPORTED = time.perf_counter()  # fallback origin: when miaudit's first module that needs it was imported


def process_age() -> tuple[float, str]:
    """Seconds since this process started, and where that start comes from.

    ``"process_start"``: from the kernel's start time of the process (Linux ``/proc/self/stat``, in clock
    ticks of 10 ms, against ``/proc/uptime``), so interpreter start-up and every import count. Elsewhere
    ``"miaudit_import"``: since :mod:`miaudit._timing` was imported, a lower bound that misses the
    interpreter's start and the imports before miaudit's.
    """
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            stat = f.read()
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        start_ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, after the command name
        age = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
        if 0.0 <= age < 1e7:
            return age, "process_start"
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    return time.perf_counter() - _IMPORTED, "miaudit_import"


class RunClock:
    """Wall seconds per phase of one run (see the module docstring); started when the run's work begins."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        startup, self.startup_from = process_age()
        self.seconds: dict[str, float] = {"startup": max(0.0, startup)}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + max(0.0, float(seconds))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the block as (part of) phase ``name``."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t)

    @contextlib.contextmanager
    def active(self) -> Iterator[RunClock]:
        """Make this the clock :func:`phase` records into for the duration of the block."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def total(self) -> float:
        """Seconds from the process's start (``startup_from``) until now."""
        return self.seconds["startup"] + time.perf_counter() - self._t0

    def to_dict(self) -> dict[str, Any]:
        """results.json ``run``: ``timings_s`` (every phase of :data:`PHASES`, 0 for one the run did not go
        through), ``total_s`` (from the process's start until now) and ``startup_from``."""
        total = self.total()  # phases are disjoint parts of it: microseconds rounded down, the total up
        timings = {name: math.floor(self.seconds.get(name, 0.0) * 1e6) / 1e6 for name in PHASES}
        return {"timings_s": timings, "total_s": math.ceil(total * 1e6) / 1e6, "startup_from": self.startup_from}


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as phase ``name`` of the active :class:`RunClock`; nothing happens without one."""
    clock = _ACTIVE.get()
    if clock is None:
        yield
        return
    with clock.phase(name):
        yield
