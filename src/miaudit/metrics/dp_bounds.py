"""Epsilon lower bounds for canary audits of a DP claim: pure functions on counts and scores.

Three bounds, each a ``confidence``-level lower bound on the epsilon of an (epsilon, delta)-DP mechanism with
respect to the neighbouring relation of the canary (one canary added or removed: the relation Opacus'
accountants bound for Poisson sampling). Every bound returns a :class:`DpBound` with the largest value its
sample size could ever certify (``ceiling``): an audit whose bound equals its ceiling says "at least this",
not "this is the epsilon".

* :func:`cp_threshold_bound` -- many runs, a *pre-declared* threshold, Clopper-Pearson on FPR and FNR
  (Jagielski, Ullman & Oprea 2020; Nasr et al. 2021); :func:`cp_bonferroni_bound` for a pre-declared list of
  thresholds at ``alpha / K`` each.
* :func:`one_run_bound` -- one run with m canaries (Steinke, Nasr & Jagielski 2023, Theorem 3.1 with the exact
  tail of their Appendix D).
* :func:`gdp_bound` -- Gaussian-DP (Dong, Roth & Su 2022): valid *only if* the mechanism is mu-GDP for some
  mu (e.g. the Gaussian mechanism, or full-batch DP-SGD whose only randomness is its noise); labelled so.

Validated against randomised response (exactly eps-DP) and the Gaussian mechanism in
``tests/metrics/test_dp_bounds.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import optimize, special, stats

from .._errors import InputError
from ._checks import check_confidence, check_probability
from ._dp import gdp_delta
from ._intervals import cp_upper_one

__all__ = [
    "DpBound",
    "NEIGHBOURING_ADD_REMOVE",
    "epsilon_from_rates",
    "cp_threshold_bound",
    "cp_bonferroni_bound",
    "cp_ceiling",
    "one_run_tail",
    "one_run_bound",
    "one_run_from_scores",
    "one_run_ceiling",
    "gdp_epsilon",
    "gdp_bound",
]

#: The relation every bound here is stated for: the canary is added to or removed from the training data.
NEIGHBOURING_ADD_REMOVE = "add_remove"
GDP_ASSUMPTION = ("assumes the mechanism is mu-GDP (Gaussian trade-off curve); not a valid bound for other "
                  "mechanisms (e.g. Poisson-subsampled DP-SGD is only asymptotically GDP)")


@dataclass(frozen=True)
class DpBound:
    """A lower bound ``epsilon_lower`` on epsilon at ``delta``, valid with probability ``confidence``.

    ``ceiling``: the largest value this method could return with this sample size (every guess right);
    ``assumption``: None for bounds that hold for every (epsilon, delta)-DP mechanism, else what it assumes.
    ``details``: the counts and intermediate figures (JSON-able).
    """

    method: str
    epsilon_lower: float
    confidence: float
    ceiling: float
    delta: float
    neighbouring: str = NEIGHBOURING_ADD_REMOVE
    assumption: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("epsilon_lower", "ceiling"):
            if not math.isfinite(out[key]):
                out[key] = None
        out["details"] = {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                          for k, v in out["details"].items()}
        return out


def _count(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"{name}: expected a non-negative integer, got {value!r}")
    return int(value)


def _delta(delta: Any) -> float:
    return check_probability(delta, "delta", low_open=False, high_open=True, example="1e-5")


def _scores(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)):
        raise InputError(f"{name}: expected a non-empty 1-d array of finite scores, got shape {a.shape}")
    return a


def epsilon_from_rates(fpr_upper: float, fnr_upper: float, delta: float) -> float:
    """The epsilon (eps, delta)-DP must have for a test with these false positive/negative rates.

    (eps, delta)-DP implies ``FPR + e^eps FNR >= 1 - delta`` and ``FNR + e^eps FPR >= 1 - delta`` for every
    test (Kairouz, Oh & Viswanath 2015, Thm. 2.1), so with upper bounds on both rates
    ``eps >= max(ln[(1 - delta - FPR) / FNR], ln[(1 - delta - FNR) / FPR], 0)``.
    """
    def side(num: float, den: float) -> float:
        if num <= 0.0:
            return 0.0
        return math.inf if den <= 0.0 else math.log(num) - math.log(den)

    return max(side(1.0 - delta - fpr_upper, fnr_upper), side(1.0 - delta - fnr_upper, fpr_upper), 0.0)


def cp_ceiling(n_in: int, n_out: int, *, delta: float, confidence: float = 0.95, n_thresholds: int = 1) -> float:
    """Largest :func:`cp_threshold_bound` with ``n_in`` / ``n_out`` runs (no false positive or negative),
    at ``alpha / n_thresholds`` per threshold. About ``ln(n / 3.7)`` per side at 95% for large n."""
    alpha = (1.0 - check_confidence(confidence)) / max(1, int(n_thresholds))
    if n_in < 1 or n_out < 1:
        return 0.0
    return epsilon_from_rates(cp_upper_one(0, n_out, alpha / 2.0), cp_upper_one(0, n_in, alpha / 2.0), _delta(delta))


def _cp_at(s_in: np.ndarray, s_out: np.ndarray, threshold: float, delta: float, alpha: float) -> dict[str, Any]:
    tp = int((s_in >= threshold).sum())
    fp = int((s_out >= threshold).sum())
    n_in, n_out = s_in.size, s_out.size
    fpr_hi = cp_upper_one(fp, n_out, alpha / 2.0)
    fnr_hi = cp_upper_one(n_in - tp, n_in, alpha / 2.0)
    return {"threshold": float(threshold), "n_in": n_in, "n_out": n_out, "true_positives": tp,
            "false_positives": fp, "fpr_upper": fpr_hi, "fnr_upper": fnr_hi,
            "epsilon": epsilon_from_rates(fpr_hi, fnr_hi, delta)}


def cp_threshold_bound(scores_in: Any, scores_out: Any, *, threshold: float, delta: float = 1e-5,
                       confidence: float = 0.95) -> DpBound:
    """Many-runs bound at one threshold fixed before the runs (Jagielski et al. 2020; Nasr et al. 2021).

    ``scores_in``: the canary's score in each run that included it, ``scores_out`` in each run that did not;
    the test says "included" when ``score >= threshold``. One-sided Clopper-Pearson (1934) upper bounds on
    FPR and FNR at ``alpha / 2`` each (Bonferroni), then :func:`epsilon_from_rates`. Valid for every
    (eps, delta)-DP training provided ``threshold`` does not depend on these runs (choose it from the
    recipe, or on other runs).
    """
    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    d = _delta(delta)
    conf = check_confidence(confidence)
    if not math.isfinite(float(threshold)):
        raise InputError(f"threshold: expected a finite number, got {threshold!r}")
    info = _cp_at(s_in, s_out, float(threshold), d, 1.0 - conf)
    return DpBound(method="clopper_pearson", epsilon_lower=info.pop("epsilon"), confidence=conf,
                   ceiling=cp_ceiling(s_in.size, s_out.size, delta=d, confidence=conf), delta=d, details=info)


def cp_bonferroni_bound(scores_in: Any, scores_out: Any, *, thresholds: Sequence[float], delta: float = 1e-5,
                        confidence: float = 0.95) -> DpBound:
    """:func:`cp_threshold_bound` at each of K pre-declared thresholds at ``alpha / K`` (Bonferroni); the
    largest of the K bounds holds at ``confidence``. Use it when no single threshold can be justified in
    advance (e.g. order statistics of a calibration set that is not part of these runs)."""
    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    d = _delta(delta)
    conf = check_confidence(confidence)
    ts = [float(t) for t in thresholds]
    if not ts or not all(math.isfinite(t) for t in ts):
        raise InputError("thresholds: expected a non-empty list of finite numbers")
    alpha = (1.0 - conf) / len(ts)
    infos = [_cp_at(s_in, s_out, t, d, alpha) for t in ts]
    best = max(infos, key=lambda i: i["epsilon"])
    eps = best.pop("epsilon")
    best["n_thresholds"] = len(ts)
    return DpBound(method="clopper_pearson_bonferroni", epsilon_lower=eps, confidence=conf,
                   ceiling=cp_ceiling(s_in.size, s_out.size, delta=d, confidence=conf, n_thresholds=len(ts)),
                   delta=d, details=best)


# -- one run (Steinke, Nasr & Jagielski 2023) -------------------------------------------------------------


def one_run_tail(epsilon: float, delta: float, m: int, r: int, v: int) -> float:
    """Upper bound on ``P[W >= v]`` for v correct guesses out of r, m canaries, under (eps, delta)-DP.

    Steinke, Nasr & Jagielski (NeurIPS 2023), Theorem 3.1 with the exact tail of their Appendix D: with
    ``p = e^eps / (1 + e^eps)`` and ``B ~ Binomial(r, p)``,
    ``P[W >= v] <= P[B >= v] + 2 m delta max_{1 <= i <= v} P[v - i <= B < v] / i``.
    """
    if v <= 0:
        return 1.0
    p = 1.0 / (1.0 + math.exp(-epsilon))
    beta = float(stats.binom.sf(v - 1, r, p))
    if delta == 0.0:
        return min(1.0, beta)
    i = np.arange(1, v + 1)
    below = np.cumsum(stats.binom.pmf(v - i, r, p))  # P[v - i <= B < v]
    return min(1.0, beta + 2.0 * m * delta * float(np.max(below / i)))


def _largest_rejected(tail: Any, alpha: float) -> float:
    """Largest eps with ``tail(eps) <= alpha`` (the tail bound decreases in eps); 0 if none."""
    if tail(0.0) > alpha:
        return 0.0
    hi = 1.0
    while tail(hi) <= alpha:
        hi *= 2.0
        if hi > 1e3:
            return math.inf
    lo = hi / 2.0 if hi > 1.0 else 0.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if tail(mid) <= alpha:
            lo = mid
        else:
            hi = mid
    return lo


def one_run_bound(m: int, r: int, v: int, *, delta: float = 1e-5, confidence: float = 0.95) -> DpBound:
    """One-run bound (Steinke, Nasr & Jagielski 2023, Theorem 3.1): m canaries, each included independently
    with probability 1/2; the auditor guesses the inclusion of r of them (abstains on the rest) and v guesses
    are right. Returns the largest eps whose tail bound (:func:`one_run_tail`) is below ``1 - confidence``:
    every (eps', delta)-DP training with eps' below it gives v or more right with probability < alpha.
    The guesses may be any function of the output (a score's top and bottom k), not of the inclusion bits."""
    m_i, r_i, v_i = _count(m, "canaries"), _count(r, "guesses"), _count(v, "correct guesses")
    if not v_i <= r_i <= m_i:
        raise InputError(f"one run: expected correct <= guesses <= canaries, got {v_i}, {r_i}, {m_i}")
    d = _delta(delta)
    conf = check_confidence(confidence)
    alpha = 1.0 - conf
    eps = _largest_rejected(lambda e: one_run_tail(e, d, m_i, r_i, v_i), alpha)
    return DpBound(method="one_run_steinke2023", epsilon_lower=eps, confidence=conf,
                   ceiling=one_run_ceiling(m_i, r_i, delta=d, confidence=conf), delta=d,
                   details={"canaries": m_i, "guesses": r_i, "correct": v_i})


def one_run_ceiling(m: int, r: int | None = None, *, delta: float, confidence: float = 0.95) -> float:
    """The one-run bound when all ``r`` guesses are right (default: the best r for m canaries)."""
    alpha = 1.0 - check_confidence(confidence)
    rs = [int(r)] if r is not None else sorted({max(1, int(x)) for x in np.unique(np.geomspace(1, m, 40).astype(int))})
    return max(_largest_rejected(lambda e, rr=rr: one_run_tail(e, delta, m, rr, rr), alpha) for rr in rs)


def one_run_from_scores(scores: Any, included: Any, *, k_pos: int, k_neg: int = 0, delta: float = 1e-5,
                        confidence: float = 0.95) -> DpBound:
    """:func:`one_run_bound` for the guesses "included" for the ``k_pos`` highest scores and "excluded" for the
    ``k_neg`` lowest (``k_pos`` and ``k_neg`` fixed before the run; ties broken by position)."""
    s = _scores(scores, "scores")
    inc = np.asarray(included, dtype=bool)
    if inc.shape != s.shape:
        raise InputError(f"included: expected one flag per canary, shape {s.shape}, got {inc.shape}")
    kp, kn = _count(k_pos, "k_pos"), _count(k_neg, "k_neg")
    if kp + kn > s.size or kp + kn == 0:
        raise InputError(f"k_pos + k_neg: expected between 1 and the number of canaries ({s.size}), got {kp + kn}")
    order = np.argsort(-s, kind="stable")
    v = int(inc[order[:kp]].sum()) + int((~inc[order[s.size - kn:]]).sum() if kn else 0)
    b = one_run_bound(s.size, kp + kn, v, delta=delta, confidence=confidence)
    b.details.update({"k_pos": kp, "k_neg": kn})
    return b


# -- Gaussian DP ------------------------------------------------------------------------------------------


def gdp_epsilon(mu: float, delta: float) -> float:
    """The epsilon of a mu-GDP mechanism at ``delta``: the root of ``gdp_delta(eps, mu) = delta``
    (Dong, Roth & Su 2022, Cor. 2.13; delta(eps) decreases in eps). 0 when mu is so small that delta(0) <= delta."""
    if not mu > 0.0:
        return 0.0
    if math.isinf(mu):
        return math.inf
    if gdp_delta(0.0, mu) <= delta:
        return 0.0
    hi = 1.0
    while gdp_delta(hi, mu) > delta:
        hi *= 2.0
    return float(optimize.brentq(lambda e: gdp_delta(e, mu) - delta, 0.0, hi, xtol=1e-10))


def gdp_bound(scores_in: Any, scores_out: Any, *, threshold: float, delta: float = 1e-5,
              confidence: float = 0.95) -> DpBound:
    """Gaussian-DP bound at a pre-declared threshold: Clopper-Pearson upper bounds on FPR and FNR (alpha/2
    each), ``mu_lower = Phi^-1(1 - FPR_hi) - Phi^-1(FNR_hi)`` (the smallest mu whose trade-off curve passes
    below the certified point; Dong, Roth & Su 2022, Def. 2.6), and its epsilon at ``delta``
    (:func:`gdp_epsilon`). Valid only if the mechanism is mu-GDP for some mu: then it is mu_true-GDP with
    mu_true >= mu_lower at ``confidence``, and eps is increasing in mu. Labelled with that assumption."""
    s_in, s_out = _scores(scores_in, "scores_in"), _scores(scores_out, "scores_out")
    d = _delta(delta)
    conf = check_confidence(confidence)
    info = _cp_at(s_in, s_out, float(threshold), d, 1.0 - conf)
    info.pop("epsilon")
    mu = max(0.0, float(-special.ndtri(info["fpr_upper"]) - special.ndtri(info["fnr_upper"])))
    alpha = 1.0 - conf
    mu_ceiling = float(-special.ndtri(cp_upper_one(0, s_out.size, alpha / 2))
                       - special.ndtri(cp_upper_one(0, s_in.size, alpha / 2)))
    info["mu_lower"] = mu
    return DpBound(method="gaussian_dp", epsilon_lower=gdp_epsilon(mu, d), confidence=conf,
                   ceiling=gdp_epsilon(mu_ceiling, d), delta=d, assumption=GDP_ASSUMPTION, details=info)

