"""What differential privacy allows an attacker: the curves drawn on the report's ROC.

Two bounds for a training run with an accountant's ``(epsilon, delta)``:

* the **(epsilon, delta) region** (Kairouz, Oh, Viswanath 2015; field notes §4): any test between
  neighbouring datasets satisfies ``FNR + e^eps FPR >= 1 - delta`` and ``FPR + e^eps FNR >= 1 - delta``, so

      TPR <= min(1, e^eps FPR + delta, 1 - e^-eps (1 - delta - FPR)).

  This holds for every (epsilon, delta)-DP mechanism.
* the **Gaussian-DP trade-off** (Dong, Roth, Su 2022, "Gaussian differential privacy", JRSS-B, eq. (2.4) and
  Corollary 2.13): a mu-GDP mechanism admits no test above ``TPR = Phi(Phi^-1(FPR) + mu)``; it is
  (epsilon, delta(epsilon))-DP with ``delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)``. DP-SGD is
  asymptotically GDP (their Theorem 3.5), so the mu that matches the accountant's (epsilon, delta) gives the
  tighter curve theory expects for DP-SGD; it is an approximation, the (epsilon, delta) region is the guarantee.

The metrics layer may provide the same functions (``miaudit.metrics.gdp_tradeoff_tpr`` ...); these local,
dependency-free versions keep the report working on its own.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtr, ndtri

from .._errors import InputError

__all__ = ["dp_tpr_bound", "gdp_delta", "gdp_mu_from_epsilon", "gdp_tradeoff_tpr"]


def _check_epsilon_delta(epsilon: float, delta: float) -> None:
    if not (isinstance(epsilon, (int, float)) and math.isfinite(epsilon) and epsilon >= 0):
        raise InputError(
            f"epsilon: expected a finite number >= 0, got {epsilon!r}; pass the accountant's epsilon "
            "(use no DP section for non-private training)"
        )
    if not (isinstance(delta, (int, float)) and 0 <= delta < 1):
        raise InputError(f"delta: expected a number in [0, 1), got {delta!r}; pass the accountant's delta (e.g. 1e-5)")


def dp_tpr_bound(fpr: np.ndarray, *, epsilon: float, delta: float) -> np.ndarray:
    """Largest TPR any attack can reach at ``fpr`` against an (epsilon, delta)-DP mechanism.

    ``TPR <= min(1, e^eps FPR + delta, 1 - e^-eps (1 - delta - FPR))`` (Kairouz et al. 2015, Theorem 2.1).
    """
    _check_epsilon_delta(epsilon, delta)
    fpr = np.clip(np.asarray(fpr, dtype=np.float64), 0.0, 1.0)
    a = math.exp(epsilon) * fpr + delta
    b = 1.0 - math.exp(-epsilon) * (1.0 - delta - fpr)
    return np.clip(np.minimum(a, b), 0.0, 1.0)


def gdp_tradeoff_tpr(fpr: np.ndarray, *, mu: float) -> np.ndarray:
    """Largest TPR at ``fpr`` against a mu-GDP mechanism: ``Phi(Phi^-1(FPR) + mu)`` (Dong, Roth, Su, eq. 2.4)."""
    if not (isinstance(mu, (int, float)) and math.isfinite(mu) and mu >= 0):
        raise InputError(f"mu: expected a finite number >= 0, got {mu!r}; pass the GDP parameter of the mechanism")
    fpr = np.clip(np.asarray(fpr, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        return ndtr(ndtri(fpr) + mu)


def gdp_delta(epsilon: float, *, mu: float) -> float:
    """delta(epsilon) of a mu-GDP mechanism (Dong, Roth, Su, Corollary 2.13), computed in log space."""
    if mu <= 0:
        return 0.0
    a = log_ndtr(-epsilon / mu + mu / 2.0)
    b = epsilon + log_ndtr(-epsilon / mu - mu / 2.0)
    return float(math.exp(a) * -math.expm1(min(b - a, 0.0))) if a > -np.inf else 0.0


def gdp_mu_from_epsilon(epsilon: float, *, delta: float) -> float:
    """The mu for which a mu-GDP mechanism is exactly (epsilon, delta)-DP (root of :func:`gdp_delta`).

    ``delta(eps; mu)`` increases with mu, so the root is unique; returns 0 when ``delta >= 1`` is not needed.
    """
    _check_epsilon_delta(epsilon, delta)
    if delta <= 0:
        raise InputError(
            f"delta: expected a number in (0, 1) to convert (epsilon, delta) to Gaussian DP, got {delta!r}; "
            "pass the accountant's delta (e.g. 1e-5)"
        )
    hi = 1.0
    while gdp_delta(epsilon, mu=hi) < delta:
        hi *= 2.0
        if hi > 1e4:  # pragma: no cover - only for absurd epsilon/delta
            return hi
    return float(brentq(lambda m: gdp_delta(epsilon, mu=m) - delta, 1e-12, hi, xtol=1e-12, rtol=1e-12))
