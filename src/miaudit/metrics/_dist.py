"""Beta quantiles and binomial tails without importing :mod:`scipy.stats`.

Importing ``scipy.stats`` takes about half a second (it loads every distribution); the metrics need two
of them, through functions :mod:`scipy.special` already has:

* :func:`beta_ppf`: ``scipy.stats.beta.ppf(q, a, b)`` is the inverse of the regularized incomplete beta
  function, ``scipy.special.betaincinv(a, b, q)`` (the Clopper-Pearson bounds);
* :func:`binom_cdf`, :func:`binom_sf`, :func:`binom_ppf`: ``scipy.stats.binom``'s ``cdf``, ``sf`` and ``ppf``
  at integer ``k``, with its values outside the support (``cdf`` 0 below it and 1 from ``n`` on, ``sf`` the
  opposite). Inside the support they are the scipy.special ufuncs that ``scipy.stats.binom`` itself calls
  (Boost's binomial distribution), so the values are the same bit for bit. A scipy that no longer has those
  ufuncs gets ``scipy.stats.binom`` itself (imported on first use).

Scalar inputs only (the callers' counts and probabilities are checked before).
"""

from __future__ import annotations

from typing import Any

from scipy import special

__all__ = ["beta_ppf", "binom_cdf", "binom_ppf", "binom_sf"]

try:  # the ufuncs behind scipy.stats.binom (private names, present in every scipy miaudit supports)
    from scipy.special._ufuncs import _binom_cdf, _binom_ppf, _binom_sf
except ImportError:  # pragma: no cover - a scipy that moved them: the distribution itself
    _binom_cdf = _binom_ppf = _binom_sf = None


def _binom() -> Any:  # pragma: no cover - only without the ufuncs above
    from scipy import stats

    return stats.binom


def beta_ppf(q: float, a: float, b: float) -> float:
    """``scipy.stats.beta.ppf(q, a, b)`` for ``0 < q < 1``, ``a, b > 0``: ``betaincinv(a, b, q)``."""
    return float(special.betaincinv(a, b, q))


def _binom_tail(k: int, n: int, p: float, ufunc: Any, name: str, below: float, above: float) -> float:
    if k < 0:
        return below
    if k >= n:
        return above
    if ufunc is None:  # pragma: no cover
        return float(getattr(_binom(), name)(k, n, p))
    return min(max(float(ufunc(float(k), float(n), float(p))), 0.0), 1.0)


def binom_cdf(k: int, n: int, p: float) -> float:
    """``P(Bin(n, p) <= k)``, as ``scipy.stats.binom.cdf(k, n, p)``."""
    return _binom_tail(k, n, p, _binom_cdf, "cdf", 0.0, 1.0)


def binom_sf(k: int, n: int, p: float) -> float:
    """``P(Bin(n, p) > k)``, as ``scipy.stats.binom.sf(k, n, p)``."""
    return _binom_tail(k, n, p, _binom_sf, "sf", 1.0, 0.0)


def binom_ppf(q: float, n: int, p: float) -> float:
    """The smallest ``k`` with ``P(Bin(n, p) <= k) >= q`` for ``0 < q < 1``, as ``scipy.stats.binom.ppf``."""
    if _binom_ppf is None:  # pragma: no cover
        return float(_binom().ppf(q, n, p))
    return float(_binom_ppf(float(q), float(n), float(p)))
