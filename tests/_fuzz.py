"""Shared helper of the fuzz tests: run a hypothesis strategy through a check function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def run_fuzz(strategy: st.SearchStrategy[Any], check: Callable[[Any], None], n: int, *, fast: bool) -> None:
    """Feed ``n`` generated cases to ``check`` (derandomised in the fast CI variants)."""

    @settings(max_examples=n, deadline=None, database=None, derandomize=fast, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(case: Any) -> None:
        check(case)

    run()
