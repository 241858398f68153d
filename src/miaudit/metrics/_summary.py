"""All metrics of one attack in one pass (one sort), and the spread over several targets."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import InputError
from ._checks import check_confidence, check_fprs, check_probability, check_scores, fpr_key
from ._epsilon import EpsilonBound, check_seed, epsilon_from_sorted, split_select_certify
from ._roc import (
    RocCurve,
    TprAtFpr,
    _advantage,
    _auc,
    _auc_interval,
    confusion_from_sorted,
    tpr_at_fpr_from,
)

__all__ = ["AttackMetrics", "evaluate_scores", "summarize_spread"]


def _num(x: float | None) -> float | None:
    """Python float, or None for None/NaN/inf (JSON has no NaN)."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class AttackMetrics:
    """Every headline metric of one attack on one game; :meth:`to_dict` is its results.json object.

    ``tpr_at_fpr[i]`` and ``ppv_at_fpr[i]`` belong to ``fprs[i]``. ``ppv_at_fpr`` is the PPV at the
    member prior of an attack running at the *target* FPR with the measured TPR (conservative:
    the achieved FPR is never above the target); None where the TPR is None.
    """

    auc: float
    auc_ci: tuple[float, float]
    balanced_accuracy: float
    advantage: float
    fprs: tuple[float, ...]
    tpr_at_fpr: tuple[TprAtFpr, ...]
    ppv_at_fpr: tuple[float | None, ...]
    epsilon: EpsilonBound
    n_members: int
    n_nonmembers: int
    member_prior: float
    delta: float
    confidence: float
    roc: RocCurve = field(repr=False, compare=False)

    @property
    def epsilon_lower_bound(self) -> float:
        return self.epsilon.value

    def at(self, fpr: float) -> TprAtFpr:
        """The :class:`TprAtFpr` computed for target ``fpr`` (one of ``fprs``)."""
        key = fpr_key(fpr)
        for f, t in zip(self.fprs, self.tpr_at_fpr):
            if fpr_key(f) == key:
                return t
        raise InputError(
            f"fpr: expected one of the evaluated target FPRs {list(self.fprs)}, got {fpr!r}; "
            "pass it in evaluate_scores(..., fprs=...)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The per-attack object of results.json (DESIGN.md schema 1), JSON-safe: no NaN, python types."""
        keys = [fpr_key(f) for f in self.fprs]
        return {
            "auc": _num(self.auc),
            "auc_ci": [_num(self.auc_ci[0]), _num(self.auc_ci[1])],
            "balanced_accuracy": _num(self.balanced_accuracy),
            "advantage": _num(self.advantage),
            "tpr_at_fpr": {k: _num(t.tpr) for k, t in zip(keys, self.tpr_at_fpr)},
            # Headline interval: covers the population TPR at the target FPR, the estimation of the
            # threshold from the non-members included (issue 4: intervals must cover the true
            # value). The narrower interval of the chosen operating point alone stays in
            # tpr_at_fpr_detail (ci_low / ci_high).
            "tpr_at_fpr_ci": {
                k: (None if t.tpr is None else [_num(t.target_ci_low), _num(t.target_ci_high)])
                for k, t in zip(keys, self.tpr_at_fpr)
            },
            "tpr_at_fpr_detail": {k: t.to_dict() for k, t in zip(keys, self.tpr_at_fpr)},
            "ppv_at_fpr": {k: _num(p) for k, p in zip(keys, self.ppv_at_fpr)},
            "epsilon_lower_bound": _num(self.epsilon.value),
            "epsilon_detail": self.epsilon.to_dict(),
            "n_members": int(self.n_members),
            "n_nonmembers": int(self.n_nonmembers),
        }


def evaluate_scores(
    is_member: Any,
    scores: Any,
    *,
    fprs: Sequence[float] = (1e-3, 1e-2, 1e-1),
    delta: float = 1e-5,
    confidence: float = 0.95,
    member_prior: float = 0.5,
    seed: int = 0,
) -> AttackMetrics:
    """AUC (DeLong interval), balanced accuracy, advantage, TPR@FPR (Clopper-Pearson), PPV and the
    split-half epsilon lower bound of one attack, from a single sort of the scores.

    ``confidence`` applies to every interval and to the epsilon bound; ``seed`` fixes the
    selection/certification split of :func:`epsilon_lower_bound`.
    """
    m, s = check_scores(is_member, scores)
    fs = check_fprs(fprs)
    d = check_probability(delta, "delta", low_open=False, high_open=True, example="1e-5")
    conf = check_confidence(confidence)
    pi = check_probability(member_prior, "member_prior", low_open=True, high_open=True, example="0.5")
    sd = check_seed(seed)

    order = np.argsort(s)[::-1]
    s_desc, m_desc = s[order], m[order]
    c = confusion_from_sorted(s_desc, m_desc)
    auc = _auc(c)
    adv = _advantage(c)
    tprs = tuple(tpr_at_fpr_from(c, f, conf) for f in fs)
    ppvs = tuple(
        None if t.tpr is None or pi * t.tpr + (1 - pi) * f == 0 else pi * t.tpr / (pi * t.tpr + (1 - pi) * f)
        for f, t in zip(fs, tprs)
    )
    sel = split_select_certify(m, sd)[order]
    eps = epsilon_from_sorted(s_desc, m_desc, sel, delta=d, confidence=conf, seed=sd)
    return AttackMetrics(
        auc=auc,
        auc_ci=_auc_interval(c, auc, conf),
        balanced_accuracy=0.5 * (1.0 + adv),
        advantage=adv,
        fprs=fs,
        tpr_at_fpr=tprs,
        ppv_at_fpr=ppvs,
        epsilon=eps,
        n_members=c.n_members,
        n_nonmembers=c.n_nonmembers,
        member_prior=pi,
        delta=d,
        confidence=conf,
        roc=RocCurve(fpr=c.fp / c.n_nonmembers, tpr=c.tp / c.n_members, thresholds=c.thresholds),
    )


def _mean_std(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "std": None}
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else None}


def summarize_spread(metrics: Sequence[AttackMetrics]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof = 1; None for one target) of each headline figure
    over several targets of the same recipe (an audit where each model serves as the target).

    ``n_null`` counts targets whose TPR@FPR is None (too few non-members); the mean and std are
    over the others. Returns the ``"spread"`` object of results.json.
    """
    items = list(metrics)
    if not items or not all(isinstance(x, AttackMetrics) for x in items):
        raise InputError(
            f"metrics: expected a non-empty list of AttackMetrics (from evaluate_scores), got {type(metrics).__name__} "
            f"of {len(items)} item(s)"
        )
    keys = [fpr_key(f) for f in items[0].fprs]
    for x in items[1:]:
        if [fpr_key(f) for f in x.fprs] != keys:
            raise InputError(
                f"metrics: expected every target evaluated at the same fprs {keys}, got {[fpr_key(f) for f in x.fprs]}; "
                "evaluate all targets with the same evaluate_scores(..., fprs=...)"
            )
    tpr: dict[str, Any] = {}
    for j, k in enumerate(keys):
        vals = [x.tpr_at_fpr[j].tpr for x in items]
        ok = [float(v) for v in vals if v is not None]
        tpr[k] = {**_mean_std(ok), "n_null": len(vals) - len(ok)}
    return {
        "n_targets": len(items),
        "auc": _mean_std([x.auc for x in items]),
        "advantage": _mean_std([x.advantage for x in items]),
        "tpr_at_fpr": tpr,
        "epsilon_lower_bound": _mean_std([x.epsilon.value for x in items]),
    }
