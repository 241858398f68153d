"""Exact binomial intervals (Clopper & Pearson, 1934)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy import special

from .._errors import InputError
from ._checks import check_confidence
from ._dist import beta_ppf

__all__ = ["clopper_pearson", "cp_lower", "cp_upper", "cp_upper_one"]


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}: expected a non-negative integer count, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return int(float(value))
    raise InputError(f"{name}: expected a non-negative integer count, got {value!r}")


def clopper_pearson(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper-Pearson) interval for a binomial proportion ``k / n``.

    ``lo = Beta(alpha/2; k, n - k + 1)`` and ``hi = Beta(1 - alpha/2; k + 1, n - k)`` quantiles,
    with the exact edge cases ``lo = 0`` when ``k = 0`` and ``hi = 1`` when ``k = n``
    (Clopper & Pearson, Biometrika 1934). Coverage is at least ``confidence`` for every true
    proportion; it equals ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``.
    """
    k_i = _check_count(k, "k")
    n_i = _check_count(n, "n")
    conf = check_confidence(confidence)
    if n_i < 1:
        raise InputError(f"n: expected at least 1 trial, got {n!r}; an interval needs a sample")
    if not 0 <= k_i <= n_i:
        raise InputError(f"k: expected a count between 0 and n={n_i}, got {k!r}")
    alpha = 1.0 - conf
    return cp_lower(k_i, n_i, alpha / 2.0), cp_upper_one(k_i, n_i, alpha / 2.0)


def cp_lower(k: int, n: int, alpha: float) -> float:
    """One-sided exact lower bound: ``P(p >= cp_lower) >= 1 - alpha``: ``Beta(alpha; k, n - k + 1)``, 0 when ``k = 0``."""
    return 0.0 if k == 0 else beta_ppf(alpha, k, n - k + 1)


def cp_upper_one(k: int, n: int, alpha: float) -> float:
    """One-sided exact upper bound (scalar): ``Beta(1 - alpha; k + 1, n - k)``, 1 when ``k = n``."""
    return 1.0 if k >= n else beta_ppf(1.0 - alpha, k + 1, n - k)


def cp_upper(k: np.ndarray | int, n: np.ndarray | int, alpha: float) -> np.ndarray:
    """One-sided exact upper bound: ``P(p <= cp_upper) >= 1 - alpha`` (vectorised, no checks).

    ``Beta(1 - alpha; k + 1, n - k)``, and 1 when ``k = n``.
    """
    k_a = np.asarray(k, dtype=np.float64)
    n_a = np.asarray(n, dtype=np.float64)
    full = k_a >= n_a
    b = np.where(full, 1.0, n_a - k_a)
    out = special.betaincinv(k_a + 1.0, b, 1.0 - alpha)  # scipy.stats.beta.ppf(1 - alpha, k + 1, b)
    return np.where(full, 1.0, out)
