"""Seeds: one rule for what a seed is, and one derivation of every seed miaudit uses from it.

A seed is a non-negative integer below 2**32 (what numpy, scikit-learn and torch all accept), or a
:class:`numpy.random.SeedSequence`. Every other seed of an audit is derived from the audit seed by
:meth:`numpy.random.SeedSequence.spawn`, so the streams are independent and a child does not change when
more children are drawn after it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._errors import InputError

__all__ = ["MAX_SEED", "SeedLike", "check_seed", "child_seeds", "rng", "seed_sequence"]

#: Seeds are integers in [0, MAX_SEED).
MAX_SEED = 2**32

SeedLike = int | np.integer | np.random.SeedSequence


def check_seed(seed: Any, name: str = "seed") -> int:
    """``seed`` as an ``int`` in ``[0, 2**32)``, or :class:`InputError` naming ``name``."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < MAX_SEED:
        raise InputError(f"{name}: expected an integer in [0, 2**32), got {seed!r}; pass e.g. {name}=0")
    return int(seed)


def seed_sequence(seed: SeedLike, name: str = "seed") -> np.random.SeedSequence:
    """The :class:`numpy.random.SeedSequence` of ``seed`` (checked)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    return np.random.SeedSequence(check_seed(seed, name))


def rng(seed: SeedLike, name: str = "seed") -> np.random.Generator:
    """A numpy generator for ``seed`` (checked)."""
    return np.random.default_rng(seed_sequence(seed, name))


def child_seeds(seed: SeedLike, n: int) -> list[int]:
    """``n`` integer seeds derived from ``seed``; child ``k`` does not depend on ``n``."""
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in seed_sequence(seed).spawn(int(n))]
