"""Empirical lower bound on epsilon from a membership attack (Jagielski, Ullman, Oprea 2020).

(eps, delta)-DP implies, for every test that flags members, ``FPR + e^eps FNR >= 1 - delta`` and
``FNR + e^eps FPR >= 1 - delta`` (Kairouz et al. 2015). Hence, with upper confidence bounds
``FPR_hi`` and ``FNR_hi``::

    eps >= max{ ln[(1 - delta - FPR_hi) / FNR_hi], ln[(1 - delta - FNR_hi) / FPR_hi], 0 }

The bound must hold at the stated confidence *including the choice of threshold*; maximising
over thresholds on the data that also certify the bound inflates it (TensorFlow Privacy's
default does, and comes out above 0 on pure noise). Here the threshold and its direction are
chosen on a random half of the examples (stratified by membership, seeded) and the bound is
certified on the other half with one-sided Clopper-Pearson bounds at ``alpha / 2`` each
(Bonferroni over FPR and FNR), so ``P(eps_true >= value) >= confidence`` for any attack.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import special

from .._seeds import check_seed
from ._checks import check_confidence, check_probability, check_scores
from ._intervals import cp_upper
from ._roc import confusion_from_sorted

__all__ = ["EpsilonBound", "check_seed", "epsilon_bound_strata", "epsilon_lower_bound"]

METHOD = "split_half_clopper_pearson"


@dataclass(frozen=True)
class EpsilonBound:
    """A ``confidence``-level lower bound ``value`` on the epsilon of an (eps, delta)-DP training.

    The test flags a member when ``score >= threshold`` (``direction == "higher"``) or
    ``score < threshold`` (``"lower"``); the threshold lies midway between two consecutive
    selection-half scores (``inf``, serialised as null, when the test flags nothing). It was chosen on ``n_select`` examples and certified on
    ``n_certify`` others, where it made ``n_false_positives`` / ``n_false_negatives`` errors out of
    ``n_nonmembers_certify`` / ``n_members_certify``, with upper bounds ``fpr_upper``/``fnr_upper``.
    ``reason`` explains a value of 0 that comes from too little data rather than from the test.
    """

    value: float
    delta: float
    confidence: float
    method: str
    direction: str | None
    threshold: float | None
    n_false_positives: int | None
    n_false_negatives: int | None
    n_members_certify: int
    n_nonmembers_certify: int
    fpr_upper: float | None
    fnr_upper: float | None
    n_select: int
    n_certify: int
    seed: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (non-finite numbers become null)."""
        out = asdict(self)
        for key, v in out.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[key] = None
        return out


def _wilson_upper(k: np.ndarray, n: float, z: float) -> np.ndarray:
    """Wilson score upper bound (fast stand-in for Clopper-Pearson during the selection only)."""
    k = k.astype(np.float64)
    z2 = z * z
    return (k + z2 / 2.0 + z * np.sqrt(k * (n - k) / n + z2 / 4.0)) / (n + z2)


def _bound(fpr_hi: np.ndarray, fnr_hi: np.ndarray, delta: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.maximum(1.0 - delta - fpr_hi, 0.0)) - np.log(fnr_hi)
        b = np.log(np.maximum(1.0 - delta - fnr_hi, 0.0)) - np.log(fpr_hi)
    return np.maximum(np.maximum(a, b), 0.0)


def split_select_certify(m: np.ndarray, seed: int) -> np.ndarray:
    """Boolean (N,) mask of the selection half: floor(half) of the members and of the non-members."""
    rng = np.random.default_rng(seed)
    sel = np.zeros(m.shape[0], dtype=bool)
    for idx in (np.flatnonzero(m), np.flatnonzero(~m)):
        sel[rng.permutation(idx)[: idx.size // 2]] = True
    return sel


def epsilon_from_sorted(
    s_desc: np.ndarray, m_desc: np.ndarray, sel_desc: np.ndarray, *, delta: float, confidence: float, seed: int
) -> EpsilonBound:
    """:func:`epsilon_lower_bound` on scores sorted in decreasing order with the selection mask."""
    alpha = 1.0 - confidence
    n_pos = int(m_desc.sum())
    n_neg = int(m_desc.size - n_pos)
    n_select = int(sel_desc.sum())
    cert = ~sel_desc
    p_c = int((m_desc & cert).sum())
    n_c = int((~m_desc & cert).sum())
    if n_pos < 2 or n_neg < 2:
        return EpsilonBound(
            0.0, delta, confidence, METHOD, None, None, None, None, p_c, n_c, None, None,
            n_select, int(cert.sum()), seed,
            reason=f"needs at least 2 members and 2 non-members to select and certify a threshold; "
            f"have {n_pos} and {n_neg}",
        )

    # --- selection half: every threshold, both directions, Wilson bounds at alpha / 2 each.
    c = confusion_from_sorted(s_desc[sel_desc], m_desc[sel_desc])
    p_s, n_s = c.n_members, c.n_nonmembers
    z = float(special.ndtri(1.0 - alpha / 2.0))
    fp_hi = _wilson_upper(c.fp, n_s, z)
    fn_hi = _wilson_upper(p_s - c.tp, p_s, z)
    fp_hi_rev = _wilson_upper(n_s - c.fp, n_s, z)  # member iff score < threshold
    fn_hi_rev = _wilson_upper(c.tp, p_s, z)
    est = np.stack([_bound(fp_hi, fn_hi, delta), _bound(fp_hi_rev, fn_hi_rev, delta)])
    d, i = np.unravel_index(int(np.argmax(est)), est.shape)
    direction = "higher" if d == 0 else "lower"
    threshold = float(c.thresholds[i])
    if 1 <= i < c.thresholds.size - 1:
        # Put the threshold in the middle of the gap to the next lower selection score: it splits
        # the selection half identically and generalises better to the certification half.
        lower = float(c.thresholds[i + 1])
        mid = threshold / 2.0 + lower / 2.0
        if lower < mid < threshold:
            threshold = mid

    # --- certification half: the chosen test, exact one-sided Clopper-Pearson bounds.
    s_c, m_c = s_desc[cert], m_desc[cert]
    flagged = s_c >= threshold if direction == "higher" else s_c < threshold
    n_fp = int((flagged & ~m_c).sum())
    n_fn = int((~flagged & m_c).sum())
    fpr_upper = float(cp_upper(n_fp, n_c, alpha / 2.0))
    fnr_upper = float(cp_upper(n_fn, p_c, alpha / 2.0))
    value = float(_bound(np.array(fpr_upper), np.array(fnr_upper), delta))
    return EpsilonBound(
        value=value, delta=delta, confidence=confidence, method=METHOD, direction=direction,
        threshold=threshold, n_false_positives=n_fp, n_false_negatives=n_fn,
        n_members_certify=p_c, n_nonmembers_certify=n_c, fpr_upper=fpr_upper, fnr_upper=fnr_upper,
        n_select=n_select, n_certify=int(cert.sum()), seed=seed, reason=None,
    )


def epsilon_bound_strata(
    is_member: np.ndarray, scores: np.ndarray, *, strata: np.ndarray | None, delta: float, confidence: float, seed: int
) -> tuple[EpsilonBound, int | None]:
    """The split-half bound of every stratum at ``1 - (1 - confidence) / S`` and the largest of them
    (Bonferroni: it holds at ``confidence``), with the index of its stratum (None for one stratum)."""
    if strata is None or np.unique(strata).size == 1:
        return epsilon_lower_bound(is_member, scores, delta=delta, confidence=confidence, seed=seed), None
    values = np.unique(strata)
    conf_each = 1.0 - (1.0 - confidence) / values.size
    bounds = [
        epsilon_lower_bound(is_member[strata == v], scores[strata == v], delta=delta, confidence=conf_each, seed=seed + j)
        for j, v in enumerate(values)
    ]
    best = int(np.argmax([b.value for b in bounds]))
    return bounds[best], best


def epsilon_lower_bound(
    is_member: Any, scores: Any, *, delta: float = 1e-5, confidence: float = 0.95, seed: int = 0
) -> EpsilonBound:
    """Lower bound on epsilon valid with probability ``confidence``, threshold choice included.

    Jagielski, Ullman & Oprea (NeurIPS 2020), Clopper-Pearson version: select the threshold and its
    direction on a seeded random half (stratified by membership), certify on the other half with
    one-sided exact upper bounds on FPR and FNR at ``(1 - confidence) / 2`` each. On a game where
    scores are independent of membership the result is 0 with probability >= ``confidence``.
    Half of the data is spent on the selection, the price of a bound that holds.
    """
    m, s = check_scores(is_member, scores)
    d = check_probability(delta, "delta", low_open=False, high_open=True, example="1e-5")
    conf = check_confidence(confidence)
    sd = check_seed(seed)
    order = np.argsort(s)[::-1]
    sel = split_select_certify(m, sd)
    return epsilon_from_sorted(s[order], m[order], sel[order], delta=d, confidence=conf, seed=sd)
