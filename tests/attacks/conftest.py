"""Attack tests run their classifiers single-threaded.

Attacks do not pin threads themselves (that is the caller's job: the training runner's, or the
audit pipeline's); on shared or oversubscribed cores multi-threaded OpenMP boosting spins (measured:
the trained and shokri tests take 34 s instead of 5 s on two loaded cores), so the harness pins
them here, as a runner would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_thread_per_test_process() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield
