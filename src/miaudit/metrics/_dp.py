"""Theoretical ceilings for the DP report overlay: Gaussian DP and (eps, delta)-DP trade-offs.

Dong, Roth & Su, "Gaussian Differential Privacy" (JRSS-B 2022): a mechanism is mu-GDP when no
test separates neighbouring datasets better than two unit Gaussians ``mu`` apart, i.e. every
attack satisfies ``TPR <= Phi(Phi^-1(FPR) + mu)``. DP-SGD is close to mu-GDP (their CLT), which is
why the curve is the natural overlay on an audit's log-log ROC.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, special

from .._errors import InputError
from ._checks import check_probability

__all__ = ["gdp_tradeoff_tpr", "gdp_mu_from_epsilon", "gdp_delta", "dp_tpr_bound", "gdp_mu_estimate"]


def _rates(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if not np.all((a >= 0.0) & (a <= 1.0)):  # also catches NaN
        raise InputError(f"{name}: expected rates in [0, 1], got values outside it (or NaN); pass fractions, not percent")
    return a


def _nonneg(x: Any, name: str, example: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        v = math.nan
    if not v >= 0.0:
        raise InputError(f"{name}: expected a non-negative number (e.g. {example}), got {x!r}")
    return v


def gdp_tradeoff_tpr(fpr: Any, mu: float) -> np.ndarray:
    """Largest TPR any attack can reach at ``fpr`` against a mu-GDP mechanism.

    ``Phi(Phi^-1(fpr) + mu)`` (Dong, Roth & Su 2022, eq. 2.5 / Def. 2.6). ``mu = inf`` gives 1
    for every ``fpr > 0``. Returns an array shaped like ``fpr`` (0-d for a scalar).
    """
    f = _rates(fpr, "fpr")
    m = _nonneg(mu, "mu", "1.0")
    if math.isinf(m):
        return np.where(f > 0.0, 1.0, 0.0)
    return special.ndtr(special.ndtri(f) + m)


def gdp_delta(epsilon: float, mu: float) -> float:
    """delta(eps) of a mu-GDP mechanism: ``Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)``.

    Dong, Roth & Su (2022), Corollary 2.13; computed in log space (no overflow for large eps).
    """
    eps = _nonneg(epsilon, "epsilon", "4.0")
    m = _nonneg(mu, "mu", "1.0")
    if m == 0.0:
        return 0.0
    if math.isinf(m):
        return 1.0
    la = float(special.log_ndtr(-eps / m + m / 2.0))
    lb = eps + float(special.log_ndtr(-eps / m - m / 2.0))
    if lb >= la:
        return 0.0
    return math.exp(la + math.log1p(-math.exp(lb - la)))


def gdp_mu_from_epsilon(epsilon: float, delta: float) -> float:
    """The mu whose GDP curve passes through (eps, delta): solves ``gdp_delta(eps, mu) = delta``.

    delta(eps; mu) increases from 0 to 1 with mu (Dong, Roth & Su 2022, Cor. 2.13), so the root
    is unique; found with Brent's method on ``log delta``. Use it to draw the ceiling for a
    DP-SGD model whose accountant reports (eps, delta): DP-SGD is asymptotically GDP (their
    Thm. 5.1), so this curve is the usual overlay, tighter than the pure (eps, delta) region
    (:func:`dp_tpr_bound`). ``epsilon = inf`` gives ``inf``.
    """
    eps = _nonneg(epsilon, "epsilon", "4.0")
    d = check_probability(delta, "delta", low_open=True, high_open=True, example="1e-5")
    if math.isinf(eps):
        return math.inf
    target = math.log(d)

    def g(mu: float) -> float:
        la = float(special.log_ndtr(-eps / mu + mu / 2.0))
        lb = eps + float(special.log_ndtr(-eps / mu - mu / 2.0))
        if lb >= la:
            return -math.inf if target > -math.inf else 0.0
        return la + math.log1p(-math.exp(lb - la)) - target

    lo, hi = 1e-3, 1.0
    while g(lo) > 0.0:
        lo /= 10.0
        if lo < 1e-12:  # delta so large that almost any mu reaches it
            return 0.0
    while g(hi) < 0.0:
        hi *= 2.0
        if hi > 1e6:  # pragma: no cover - unreachable for finite eps
            return math.inf
    return float(optimize.brentq(g, lo, hi, xtol=1e-12, rtol=1e-12))


def dp_tpr_bound(fpr: Any, epsilon: float, delta: float) -> np.ndarray:
    """Largest TPR at ``fpr`` allowed by (eps, delta)-DP (Kairouz, Oh & Viswanath 2015).

    ``min(1, e^eps fpr + delta, 1 - e^-eps (1 - delta - fpr))``; returns an array shaped like ``fpr``.
    """
    f = _rates(fpr, "fpr")
    eps = _nonneg(epsilon, "epsilon", "4.0")
    d = check_probability(delta, "delta", low_open=False, high_open=False, example="1e-5")
    if math.isinf(eps):
        return np.where(f > 0.0, 1.0, min(1.0, d)) + 0.0 * f
    a = np.exp(eps) * f + d
    b = 1.0 - np.exp(-eps) * (1.0 - d - f)
    return np.clip(np.minimum(np.minimum(a, b), 1.0), 0.0, 1.0)


def gdp_mu_estimate(fpr: Any, fnr: Any) -> np.ndarray:
    """mu of the GDP curve through an attack's (FPR, FNR): ``Phi^-1(1 - FPR) - Phi^-1(FNR)``.

    Dong, Roth & Su (2022): the tightest mu-GDP trade-off curve passing through one operating point;
    clipped at 0 (a point below the chance line says nothing). ``inf`` when FPR or FNR is 0.
    Plug in upper confidence bounds on FPR and FNR for a conservative estimate.
    """
    f = _rates(fpr, "fpr")
    n = _rates(fnr, "fnr")
    with np.errstate(invalid="ignore"):
        mu = -special.ndtri(f) - special.ndtri(n)  # Phi^-1(1 - f) = -Phi^-1(f), exact in the tail
    return np.maximum(np.nan_to_num(mu, nan=0.0, posinf=np.inf), 0.0)
