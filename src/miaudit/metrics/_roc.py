"""ROC analysis built on one primitive: confusion counts at every distinct threshold.

Convention: an example is flagged as a member when ``score >= threshold`` (higher = more
likely member). Every distinct score is a threshold (nothing is dropped, unlike scikit-learn's
default ``drop_intermediate=True``), and the curve starts at ``(0, 0)`` with threshold ``+inf``.
Tied scores form one threshold, so a tie between members and non-members gives one diagonal
step, never an order-dependent staircase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
from scipy import special

from ._checks import check_confidence, check_probability, check_scores
from ._dist import binom_cdf, binom_ppf, binom_sf
from ._intervals import clopper_pearson, cp_lower, cp_upper_one

__all__ = [
    "Confusion",
    "RocCurve",
    "TprAtFpr",
    "confusion_at_thresholds",
    "roc_curve",
    "auc_score",
    "auc_interval",
    "balanced_accuracy",
    "advantage",
    "ppv",
    "tpr_at_fpr",
    "target_tpr_interval",
    "tpr_lower_bound",
    "delong_sd",
    "n_needed_for_fpr",
]


@dataclass(frozen=True, eq=False)
class Confusion:
    """Cumulative confusion counts at every distinct threshold, in decreasing threshold order.

    ``thresholds[0] = +inf`` (nothing flagged); ``tp[i]`` / ``fp[i]`` = members / non-members with
    ``score >= thresholds[i]``. Arrays have length T + 1 for T distinct scores.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_members: int
    n_nonmembers: int


@dataclass(frozen=True, eq=False)
class RocCurve:
    """Receiver operating characteristic: ``fpr``, ``tpr`` increasing, ``thresholds`` decreasing.

    Point ``i`` flags ``score >= thresholds[i]``; ``thresholds[0] = +inf`` is the point (0, 0).
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray


@dataclass(frozen=True)
class TprAtFpr:
    """TPR of the best threshold whose FPR does not exceed ``fpr``, with a Clopper-Pearson interval.

    ``tpr``, ``ci_low``, ``ci_high``, ``achieved_fpr`` and ``threshold`` are None (with ``reason``
    saying why) when ``fpr * n_nonmembers < 1``: such an FPR cannot be resolved by the sample.
    ``threshold`` is ``inf`` when the best admissible point flags nothing.

    Two intervals, both at ``confidence``:

    * ``ci_low``/``ci_high``: Clopper-Pearson for ``n_true_positives`` out of ``n_members``. It
      covers the true TPR *of the selected operating point* (the threshold set by these
      non-members); it ignores that the threshold itself is estimated.
    * ``target_ci_low``/``target_ci_high``: covers the population TPR at FPR <= ``fpr`` (the
      figure a reader has in mind), threshold estimation included; distribution-free, see
      :func:`target_tpr_interval`. Wider, often much wider at low FPR.
    """

    fpr: float
    tpr: float | None
    ci_low: float | None
    ci_high: float | None
    achieved_fpr: float | None
    threshold: float | None
    n_members: int
    n_nonmembers: int
    n_true_positives: int | None
    n_false_positives: int | None
    confidence: float
    reason: str | None = None
    target_ci_low: float | None = None
    target_ci_high: float | None = None
    #: Strata (targets x folds) the figure is averaged over; 1 for one model's scores.
    n_strata: int = 1

    def to_dict(self) -> dict[str, Any]:
        """The results.json ``tpr_at_fpr_detail`` entry (JSON-safe: a non-finite threshold is null)."""
        thr = self.threshold if self.threshold is not None and math.isfinite(self.threshold) else None
        return {
            "tpr": self.tpr,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "achieved_fpr": self.achieved_fpr,
            "threshold": thr,
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "reason": self.reason,
            "target_ci_low": self.target_ci_low,
            "target_ci_high": self.target_ci_high,
            "n_strata": self.n_strata,
        }


# ----------------------------------------------------------------------------- primitive


def sort_desc(is_member: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores in decreasing order and the membership flags in the same order (the one sort)."""
    order = np.argsort(scores)[::-1]
    return scores[order], is_member[order]


def confusion_from_sorted(s_desc: np.ndarray, m_desc: np.ndarray) -> Confusion:
    """:class:`Confusion` from scores sorted in decreasing order (ties in any order)."""
    n = s_desc.shape[0]
    if n == 0:
        zero = np.zeros(1, dtype=np.int64)
        return Confusion(np.array([np.inf]), zero, zero.copy(), 0, 0)
    last = np.empty(n, dtype=bool)
    np.not_equal(s_desc[1:], s_desc[:-1], out=last[:-1])
    last[-1] = True
    idx = np.flatnonzero(last)
    tp = np.zeros(idx.size + 1, dtype=np.int64)
    tp[1:] = np.cumsum(m_desc, dtype=np.int64)[idx]
    fp = np.zeros_like(tp)
    fp[1:] = idx + 1 - tp[1:]
    thresholds = np.empty(idx.size + 1, dtype=np.float64)
    thresholds[0] = np.inf
    thresholds[1:] = s_desc[idx]
    return Confusion(thresholds, tp, fp, int(tp[-1]), int(fp[-1]))


def confusion_at_thresholds(is_member: Any, scores: Any) -> Confusion:
    """Confusion counts at every distinct threshold: the primitive every ROC metric derives from."""
    m, s = check_scores(is_member, scores)
    return confusion_from_sorted(*sort_desc(m, s))


# ----------------------------------------------------------------------------- derived (private)


def _auc(c: Confusion) -> float:
    # Trapezoid rule over the full ROC in exact integer arithmetic (= Mann-Whitney U with ties 1/2).
    dfp = np.diff(c.fp)
    twice = int(np.dot(dfp, c.tp[1:] + c.tp[:-1]))
    return twice / (2.0 * c.n_members * c.n_nonmembers)


def _delong_var(c: Confusion, auc: float) -> float:
    """DeLong, DeLong & Clarke-Pearson (1988) variance of the empirical AUC, from grouped counts.

    Structural components: a member with score s has V10 = P(non-member < s) + P(= s) / 2, a
    non-member V01 = P(member > s) + P(= s) / 2; var = S10 / n_members + S01 / n_nonmembers with
    the sample variances (ddof = 1) of the components. Computed per distinct score (no extra sort).
    """
    n_pos, n_neg = c.n_members, c.n_nonmembers
    tp_g = np.diff(c.tp).astype(np.float64)
    fp_g = np.diff(c.fp).astype(np.float64)
    v10 = (n_neg - c.fp[1:] + 0.5 * fp_g) / n_neg
    v01 = (c.tp[:-1] + 0.5 * tp_g) / n_pos
    s10 = float(np.dot(tp_g, (v10 - auc) ** 2)) / (n_pos - 1)
    s01 = float(np.dot(fp_g, (v01 - auc) ** 2)) / (n_neg - 1)
    return s10 / n_pos + s01 / n_neg


def _auc_interval(c: Confusion, auc: float, confidence: float) -> tuple[float, float]:
    n_pos, n_neg = c.n_members, c.n_nonmembers
    if n_pos < 2 or n_neg < 2:
        return 0.0, 1.0
    var = _delong_var(c, auc)
    if var <= 0.0 and auc in (0.0, 1.0):
        # Perfect separation: DeLong's variance is 0. Fall back to the exact interval from
        # min(P, N) disjoint member/non-member pairs, each an independent Bernoulli(AUC) trial.
        m = min(n_pos, n_neg)
        return clopper_pearson(int(round(auc * m)), m, confidence=confidence)
    z = float(special.ndtri(0.5 + confidence / 2.0))
    half = z * math.sqrt(max(var, 0.0))
    return max(0.0, auc - half), min(1.0, auc + half)


def _advantage(c: Confusion) -> float:
    d = c.tp * c.n_nonmembers - c.fp * c.n_members  # exact: (TPR - FPR) * P * N
    return float(d.max()) / (c.n_members * c.n_nonmembers)


def n_needed_for_fpr(fpr: float) -> int:
    """Smallest number of non-members n with ``fpr * n >= 1``."""
    n = max(1, math.ceil(1 / Fraction(fpr)))  # exact: 1.0 / fpr overflows for subnormal fpr
    if n >= 2**53:  # steps of 1 no longer change fpr * n in floating point (the loops below never ended)
        return n
    while fpr * n < 1.0:
        n += 1
    while n > 1 and fpr * (n - 1) >= 1.0:
        n -= 1
    return n


def tpr_at_fpr_from(c: Confusion, fpr: float, confidence: float) -> TprAtFpr:
    """:func:`tpr_at_fpr` on precomputed counts (``fpr`` and ``confidence`` already validated)."""
    n_pos, n_neg = c.n_members, c.n_nonmembers
    if fpr * n_neg < 1.0:
        need = n_needed_for_fpr(fpr)
        return TprAtFpr(
            fpr=fpr, tpr=None, ci_low=None, ci_high=None, achieved_fpr=None, threshold=None,
            n_members=n_pos, n_nonmembers=n_neg, n_true_positives=None, n_false_positives=None,
            confidence=confidence,
            reason=f"needs at least {need} non-members to resolve FPR <= {fpr:g}; have {n_neg}",
        )
    fpr_curve = c.fp / n_neg
    last = int(np.searchsorted(fpr_curve, fpr, side="right")) - 1  # last point with FPR <= target
    k = int(c.tp[last])
    i = int(np.searchsorted(c.tp, k, side="left"))  # the same TPR at the lowest FPR
    lo, hi = clopper_pearson(k, n_pos, confidence=confidence)
    t_lo, t_hi = target_tpr_interval(c, fpr, confidence)
    return TprAtFpr(
        fpr=fpr, tpr=k / n_pos, ci_low=lo, ci_high=hi, achieved_fpr=float(fpr_curve[i]),
        threshold=float(c.thresholds[i]), n_members=n_pos, n_nonmembers=n_neg,
        n_true_positives=k, n_false_positives=int(c.fp[i]), confidence=confidence, reason=None,
        target_ci_low=t_lo, target_ci_high=t_hi,
    )


def _order_stat_ranks(n: int, fpr: float, q: float) -> tuple[int, int]:
    """(a, b) for :func:`target_tpr_interval`: the smallest ``a`` with P(Bin(n, fpr) >= a) <= q and
    the largest ``b`` with P(Bin(n, fpr) <= b - 1) <= q."""
    a = int(binom_ppf(1.0 - q, n, fpr)) + 1
    while a > 0 and binom_sf(a - 2, n, fpr) <= q:
        a -= 1
    while binom_sf(a - 1, n, fpr) > q:
        a += 1
    b = int(binom_ppf(q, n, fpr)) + 1
    while b > 0 and binom_cdf(b - 1, n, fpr) > q:
        b -= 1
    while binom_cdf(b, n, fpr) <= q:
        b += 1
    return a, b


def _tpr_lower(c: Confusion, fpr: float, q: float) -> float:
    """Lower bound on the population TPR at FPR <= ``fpr``, failing with probability at most ``2 q``.

    With probability >= 1 - q the test ``score > y_(b)`` (``y_(j)`` the j-th largest non-member score,
    ``b`` from :func:`_order_stat_ranks`) is admissible, i.e. its population FPR is <= ``fpr``; a
    one-sided Clopper-Pearson bound at ``q`` on the members it flags bounds its TPR from below.
    """
    n_pos, n_neg = c.n_members, c.n_nonmembers
    _, b = _order_stat_ranks(n_neg, fpr, q)
    k_lo = 0 if b < 1 else int(c.tp[int(np.searchsorted(c.fp, b, side="left")) - 1])  # members > y_(b)
    return cp_lower(k_lo, n_pos, q)


def target_tpr_interval(c: Confusion, fpr: float, confidence: float) -> tuple[float, float]:
    """Distribution-free interval for the population TPR at FPR <= ``fpr``, threshold estimation included.

    Let ``y_(j)`` be the j-th largest non-member score. With probability >= 1 - alpha/4 fewer
    than ``a`` non-members fall in the largest admissible region (its rate is <= fpr), so every
    admissible test flags a subset of ``{score >= y_(a)}``; and with probability >= 1 - alpha/4
    the test ``score > y_(b)`` is admissible (quantile bounds from binomial counts of order
    statistics, e.g. David & Nagaraja, *Order Statistics*, §7.1). One-sided Clopper-Pearson bounds at
    alpha/4 on the members flagged by these two tests finish the interval (Bonferroni: total alpha).
    Valid for any score distribution, ties included.
    """
    alpha = 1.0 - confidence
    q = alpha / 4.0
    n_pos, n_neg = c.n_members, c.n_nonmembers
    a, _ = _order_stat_ranks(n_neg, fpr, q)
    if a > n_neg:
        k_hi = n_pos
    else:
        k_hi = int(c.tp[int(np.searchsorted(c.fp, a, side="left"))])  # members >= y_(a)
    hi = cp_upper_one(k_hi, n_pos, q)
    return _tpr_lower(c, fpr, q), hi


def tpr_lower_bound(c: Confusion, fpr: float, confidence: float) -> float:
    """One-sided ``confidence`` lower bound on the population TPR at FPR <= ``fpr`` (see :func:`_tpr_lower`).

    ``P(bound > TPR(fpr)) <= 1 - confidence`` for any score distribution. On a game where the scores
    ignore membership the population TPR at FPR ``fpr`` is at most ``fpr``, so ``bound > fpr`` is a
    level ``1 - confidence`` test of leakage.
    """
    return _tpr_lower(c, fpr, (1.0 - confidence) / 2.0)


def delong_sd(c: Confusion, auc: float) -> float:
    """Standard error of the empirical AUC (DeLong et al. 1988); NaN with fewer than 2 members or non-members."""
    if c.n_members < 2 or c.n_nonmembers < 2:
        return math.nan
    return math.sqrt(max(_delong_var(c, auc), 0.0))


# ----------------------------------------------------------------------------- public


def roc_curve(is_member: Any, scores: Any) -> RocCurve:
    """Full ROC curve with every distinct threshold kept, starting at (0, 0) (threshold +inf).

    Matches ``sklearn.metrics.roc_curve(..., drop_intermediate=False)`` except that the first
    threshold is ``+inf``. A member is predicted when ``score >= threshold``.
    """
    c = confusion_at_thresholds(is_member, scores)
    return RocCurve(fpr=c.fp / c.n_nonmembers, tpr=c.tp / c.n_members, thresholds=c.thresholds)


def auc_score(is_member: Any, scores: Any) -> float:
    """Area under the ROC curve = P(member score > non-member score) + P(tie) / 2 (Mann-Whitney)."""
    return _auc(confusion_at_thresholds(is_member, scores))


def auc_interval(is_member: Any, scores: Any, *, confidence: float = 0.95) -> tuple[float, float]:
    """Two-sided DeLong (1988) interval for the AUC: ``auc +- z * sqrt(var_DeLong)``, clipped to [0, 1].

    Degenerate cases: fewer than two members or non-members give (0, 1); perfect separation
    (AUC 0 or 1, DeLong variance 0) gives the exact Clopper-Pearson interval from
    ``min(n_members, n_nonmembers)`` disjoint member/non-member pairs (valid, conservative);
    constant scores give (0.5, 0.5), since such an attack is exactly a coin flip.
    """
    conf = check_confidence(confidence)
    c = confusion_at_thresholds(is_member, scores)
    return _auc_interval(c, _auc(c), conf)


def advantage(is_member: Any, scores: Any) -> float:
    """Membership advantage ``max_t TPR(t) - FPR(t)`` (Yeom et al. 2018), in [0, 1].

    The maximum includes the trivial thresholds (flag nothing / everything), so it is never
    negative: an attack scoring in the wrong direction has advantage 0 here.
    """
    return _advantage(confusion_at_thresholds(is_member, scores))


def balanced_accuracy(is_member: Any, scores: Any) -> float:
    """Best balanced accuracy over thresholds, ``max_t (TPR + TNR) / 2 = (1 + advantage) / 2``.

    This is the accuracy of the best threshold on a balanced (50/50) membership game.
    """
    return 0.5 * (1.0 + advantage(is_member, scores))


def ppv(tpr: float, fpr: float, *, member_prior: float = 0.5) -> float:
    """Positive predictive value ``pi TPR / (pi TPR + (1 - pi) FPR)`` at member prior ``pi``.

    The probability that a flagged example is really a member when a fraction ``pi`` of the
    examples an attacker examines are members. NaN when nothing is flagged (TPR = FPR = 0).
    """
    t = check_probability(tpr, "tpr", low_open=False, high_open=False, example="0.05")
    f = check_probability(fpr, "fpr", low_open=False, high_open=False, example="0.001")
    pi = check_probability(member_prior, "member_prior", low_open=True, high_open=True, example="0.5")
    value = ppv_of(t, f, pi)
    return math.nan if value is None else value


def ppv_of(tpr: float | None, fpr: float, member_prior: float) -> float | None:
    """The PPV formula on checked inputs; None when ``tpr`` is None or nothing is flagged."""
    if tpr is None:
        return None
    den = member_prior * tpr + (1.0 - member_prior) * fpr
    return None if den == 0.0 else member_prior * tpr / den


def tpr_at_fpr(is_member: Any, scores: Any, *, fpr: float, confidence: float = 0.95) -> TprAtFpr:
    """True-positive rate at a fixed false-positive rate, with a Clopper-Pearson interval.

    TPR = the largest TPR over ROC points with FPR <= ``fpr`` (field notes §4; no interpolation);
    among points with that TPR the one with the lowest FPR gives ``achieved_fpr`` and ``threshold``.
    The interval is the exact binomial interval for ``k`` members flagged out of ``n_members``.
    Conditional on the non-member scores the number of flagged members at that operating point
    is exactly binomial, so the interval covers the true TPR of the selected operating point
    (flag ``score >`` the first non-member score not flagged) with at least ``confidence``.
    When ``fpr * n_nonmembers < 1`` no threshold can be shown to reach the target: ``tpr`` is
    None and ``reason`` says how many non-members are needed.
    """
    f = check_probability(fpr, "fpr", low_open=True, high_open=True, example="0.001")
    conf = check_confidence(confidence)
    return tpr_at_fpr_from(confusion_at_thresholds(is_member, scores), f, conf)

