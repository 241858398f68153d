"""Theoretical ceilings for the DP report overlay: Gaussian DP and (eps, delta)-DP trade-offs.

Dong, Roth & Su, "Gaussian Differential Privacy" (JRSS-B 2022): a mechanism is mu-GDP when no
test separates neighbouring datasets better than two unit Gaussians ``mu`` apart, i.e. every
attack satisfies ``TPR <= Phi(Phi^-1(FPR) + mu)``. DP-SGD is close to mu-GDP (their CLT), which is
why the curve is the natural overlay on an audit's log-log ROC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from .._errors import InputError
from ._checks import check_probability
from ._epsilon import EpsilonBound

__all__ = ["DpCheck", "NEIGHBOURING", "dp_check", "substitution_guarantee", "gdp_tradeoff_tpr", "gdp_mu_from_epsilon", "gdp_delta", "dp_tpr_bound", "gdp_mu_estimate"]


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
    from scipy import optimize  # here, not at the top: most audits never solve for mu, and the import takes 0.1 s

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


def substitution_guarantee(epsilon: float, delta: float) -> tuple[float, float]:
    """The replace-one guarantee implied by an add/remove-one (epsilon, delta)-DP guarantee: ``(2 eps, (1 + e^eps) delta)``.

    Group privacy for two steps (remove one example, add another; Dwork & Roth 2014, Thm. 2.2 and its
    (eps, delta) form): ``P[M(D) in S] <= e^eps (e^eps P[M(D'') in S] + delta) + delta``. Accountants such as
    Opacus's bound add/remove-one neighbours; miaudit's game trains every model on a random half of fixed
    size, so a member and a non-member differ by a *replacement*, and its empirical bounds are compared
    with this guarantee. ``delta`` is capped at 1.
    """
    eps = _nonneg(epsilon, "epsilon", "4.0")
    d = check_probability(delta, "delta", low_open=False, high_open=False, example="1e-5")
    if math.isinf(eps):
        return math.inf, min(1.0, d) if d == 0 else 1.0
    return 2.0 * eps, min(1.0, (1.0 + math.exp(min(eps, 700.0))) * d)


NEIGHBOURING = ("add_remove", "substitution")


@dataclass(frozen=True)
class DpCheck:
    """Does the audit contradict a claimed (epsilon, delta)-DP guarantee? (:func:`dp_check`)

    ``claimed_*`` as the accountant states them, for ``neighbouring`` datasets ("add_remove": one example
    added or removed, what Opacus's accountants bound; "substitution": one replaced). miaudit's game replaces
    an example (every model trains on a random half of fixed size), so the claim is first turned into the
    guarantee it implies for the game, ``game_epsilon`` / ``game_delta`` (:func:`substitution_guarantee`
    for add/remove claims), and every attack's split-half bound is computed *at* ``game_delta``, at
    confidence ``1 - (1 - confidence) / n_attacks`` (Bonferroni over the attacks tried). The claim is
    contradicted when the largest of these bounds exceeds ``game_epsilon``: with a correct training and
    audit that happens with probability at most ``1 - confidence``.
    """

    claimed_epsilon: float
    claimed_delta: float
    neighbouring: str
    game_epsilon: float
    game_delta: float
    attack: str | None
    bound: EpsilonBound | None
    confidence: float
    n_attacks: int
    contradicted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "claimed_epsilon": self.claimed_epsilon,
            "claimed_delta": self.claimed_delta,
            "neighbouring": self.neighbouring,
            "game_relation": "substitution",
            "game_epsilon": self.game_epsilon,
            "game_delta": self.game_delta,
            "attack": self.attack,
            "epsilon_lower_bound": None if self.bound is None else self.bound.value,
            "bound": None if self.bound is None else self.bound.to_dict(),
            "confidence": self.confidence,
            "n_attacks": self.n_attacks,
            "contradicted": self.contradicted,
        }


def dp_check(
    is_member: Any,
    scores: Mapping[str, Any],
    *,
    epsilon: float,
    delta: float,
    neighbouring: str = "add_remove",
    strata: Mapping[str, Any] | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> DpCheck:
    """Compare every attack's empirical epsilon bound with a claimed guarantee, at the claim's delta and
    relation (see :class:`DpCheck`). ``strata[attack]`` as in :func:`miaudit.metrics.evaluate_scores`."""
    from ._checks import check_confidence, check_scores
    from ._epsilon import epsilon_bound_strata

    if neighbouring not in NEIGHBOURING:
        raise InputError(f"neighbouring: expected one of {', '.join(NEIGHBOURING)}, got {neighbouring!r}")
    eps = _nonneg(epsilon, "epsilon", "4.0")
    d = check_probability(delta, "delta", low_open=False, high_open=True, example="1e-5")
    conf = check_confidence(confidence)
    g_eps, g_delta = substitution_guarantee(eps, d) if neighbouring == "add_remove" else (eps, d)
    names = list(scores)
    conf_each = 1.0 - (1.0 - conf) / max(1, len(names))
    best_name, best = None, None
    if g_delta < 1.0:
        for name in names:
            m, s = check_scores(is_member, scores[name])
            st = None if strata is None or strata.get(name) is None else np.asarray(strata[name])
            b, _ = epsilon_bound_strata(m, s, strata=st, delta=g_delta, confidence=conf_each, seed=seed)
            if best is None or b.value > best.value:
                best_name, best = name, b
    contradicted = best is not None and math.isfinite(g_eps) and best.value > g_eps
    return DpCheck(claimed_epsilon=eps, claimed_delta=d, neighbouring=neighbouring, game_epsilon=g_eps,
                   game_delta=g_delta, attack=best_name, bound=best, confidence=conf_each, n_attacks=len(names),
                   contradicted=bool(contradicted))
