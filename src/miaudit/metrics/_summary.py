"""All metrics of one attack in one pass (one sort), and the spread over several targets."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
    n_needed_for_fpr,
    ppv_of,
    tpr_at_fpr_from,
)

__all__ = ["AttackMetrics", "ROC_GRID", "check_strata", "evaluate_scores", "rank_attacks", "summarize_spread"]


def _num(x: float | None) -> float | None:
    """Python float, or None for None/NaN/inf (JSON has no NaN)."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class AttackMetrics:
    """Every headline metric of one attack on one game; :meth:`to_dict` is its results.json object.

    ``tpr_at_fpr[i]``, ``ppv_at_fpr[i]`` and ``ppv_lower_at_fpr[i]`` belong to ``fprs[i]``.
    ``ppv_at_fpr`` is a *point estimate*: the PPV at the member prior of an attack running at the
    target FPR with the measured TPR. ``ppv_lower_at_fpr`` is a lower confidence bound: the PPV of a
    test whose population FPR is at most the target FPR and whose TPR is at least the lower end of the
    population interval (both hold together with probability >= ``confidence``); None where the TPR is None.

    With several *strata* (the targets of a pooled game, the folds of a cross-fitted attack) the rows of
    different strata are not independent (an example appears in every target; fold models are trained
    on each other's rows), so nothing is computed on the pooled rows: each figure is the mean of the
    per-stratum figures (``strata``), and its interval is valid whatever the dependence between strata
    (see :func:`evaluate_scores`). ``roc`` is then the vertical average of the per-stratum ROC curves on
    a fixed FPR grid (``thresholds`` NaN).
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
    ppv_lower_at_fpr: tuple[float | None, ...] = ()
    n_strata: int = 1
    strata: tuple[AttackMetrics, ...] = field(default=(), repr=False, compare=False)
    #: Index into ``strata`` of the stratum whose bound is ``epsilon`` (None with one stratum).
    epsilon_stratum: int | None = None

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
        """The per-attack object of results.json (docs/results-schema.md), JSON-safe: no NaN, python types."""
        keys = [fpr_key(f) for f in self.fprs]
        return {
            "auc": _num(self.auc),
            "auc_ci": [_num(self.auc_ci[0]), _num(self.auc_ci[1])],
            "balanced_accuracy": _num(self.balanced_accuracy),
            "advantage": _num(self.advantage),
            "tpr_at_fpr": {k: _num(t.tpr) for k, t in zip(keys, self.tpr_at_fpr)},
            # Headline interval: covers the population TPR at the target FPR, the estimation of the
            # threshold from the non-members included. The narrower interval of the chosen operating
            # point alone stays in tpr_at_fpr_detail (ci_low / ci_high).
            "tpr_at_fpr_ci": {
                k: (None if t.tpr is None else [_num(t.target_ci_low), _num(t.target_ci_high)])
                for k, t in zip(keys, self.tpr_at_fpr)
            },
            "tpr_at_fpr_detail": {k: t.to_dict() for k, t in zip(keys, self.tpr_at_fpr)},
            "ppv_at_fpr": {k: _num(p) for k, p in zip(keys, self.ppv_at_fpr)},
            "ppv_lower_at_fpr": {k: _num(p) for k, p in zip(keys, self.ppv_lower_at_fpr)},
            "epsilon_lower_bound": _num(self.epsilon.value),
            "epsilon_detail": {**self.epsilon.to_dict(), "stratum": self.epsilon_stratum},
            "n_members": int(self.n_members),
            "n_nonmembers": int(self.n_nonmembers),
            "n_strata": int(self.n_strata),
        }


def _ppvs(
    fs: tuple[float, ...], tprs: tuple[TprAtFpr, ...], pi: float
) -> tuple[tuple[float | None, ...], tuple[float | None, ...]]:
    """The PPV point estimates and their lower bounds (from the population interval's lower end) per FPR."""
    return (tuple(ppv_of(t.tpr, f, pi) for f, t in zip(fs, tprs)),
            tuple(None if t.tpr is None else ppv_of(t.target_ci_low, f, pi) for f, t in zip(fs, tprs)))


def _one_stratum(
    m: np.ndarray, s: np.ndarray, *, fs: tuple[float, ...], d: float, conf: float, conf_tpr: float, pi: float, seed: int
) -> AttackMetrics:
    """Metrics of rows that come from one model (one sort). TPR intervals and the epsilon bound at
    ``conf_tpr`` (the AUC interval always at ``conf``)."""
    order = np.argsort(s)[::-1]
    s_desc, m_desc = s[order], m[order]
    c = confusion_from_sorted(s_desc, m_desc)
    auc = _auc(c)
    adv = _advantage(c)
    tprs = tuple(tpr_at_fpr_from(c, f, conf_tpr) for f in fs)
    sel = split_select_certify(m, seed)[order]
    eps = epsilon_from_sorted(s_desc, m_desc, sel, delta=d, confidence=conf_tpr, seed=seed)
    ppv = _ppvs(fs, tprs, pi)
    return AttackMetrics(
        auc=auc,
        auc_ci=_auc_interval(c, auc, conf),
        balanced_accuracy=0.5 * (1.0 + adv),
        advantage=adv,
        fprs=fs,
        tpr_at_fpr=tprs,
        ppv_at_fpr=ppv[0],
        ppv_lower_at_fpr=ppv[1],
        epsilon=eps,
        n_members=c.n_members,
        n_nonmembers=c.n_nonmembers,
        member_prior=pi,
        delta=d,
        confidence=conf,
        roc=RocCurve(fpr=c.fp / c.n_nonmembers, tpr=c.tp / c.n_members, thresholds=c.thresholds),
    )


#: FPR grid of the vertically averaged ROC of several strata (log-spaced, plus the linear range).
ROC_GRID = np.unique(np.concatenate([np.geomspace(1e-5, 1.0, 400), np.linspace(0.0, 1.0, 201)]))


def _mean_roc(parts: Sequence[AttackMetrics]) -> RocCurve:
    """Vertical average (Fawcett 2006) of the strata's ROC curves: mean TPR at FPR <= f on :data:`ROC_GRID`."""
    tpr = np.zeros(ROC_GRID.size)
    for p in parts:
        idx = np.searchsorted(p.roc.fpr, ROC_GRID, side="right") - 1  # last point with FPR <= f
        tpr += np.maximum.accumulate(p.roc.tpr)[np.maximum(idx, 0)]
    return RocCurve(fpr=ROC_GRID.copy(), tpr=tpr / len(parts), thresholds=np.full(ROC_GRID.size, np.nan))


def _combine_tpr(parts: Sequence[TprAtFpr], fpr: float, conf_tpr: float) -> TprAtFpr:
    n_pos = sum(p.n_members for p in parts)
    n_neg = sum(p.n_nonmembers for p in parts)
    common = dict(fpr=fpr, n_members=n_pos, n_nonmembers=n_neg, n_true_positives=None, n_false_positives=None,
                  confidence=conf_tpr, n_strata=len(parts), threshold=None)
    missing = [p for p in parts if p.tpr is None]
    if missing:
        fewest = min(p.n_nonmembers for p in parts)
        need = n_needed_for_fpr(fpr)
        return TprAtFpr(tpr=None, ci_low=None, ci_high=None, achieved_fpr=None, **common,  # type: ignore[arg-type]
                        reason=f"needs at least {need} non-members in every one of the {len(parts)} strata "
                        f"(targets x folds) to resolve FPR <= {fpr:g}; the smallest has {fewest}")

    def mean(attr: str) -> float:
        return float(np.mean([float(getattr(p, attr)) for p in parts]))

    return TprAtFpr(tpr=mean("tpr"), ci_low=mean("ci_low"), ci_high=mean("ci_high"),
                    achieved_fpr=mean("achieved_fpr"), reason=None, target_ci_low=mean("target_ci_low"),
                    target_ci_high=mean("target_ci_high"), **common)  # type: ignore[arg-type]


def _combine(parts: Sequence[AttackMetrics], *, conf: float, conf_tpr: float, pi: float) -> AttackMetrics:
    """Figures of several strata: means, with intervals valid under any dependence between strata.

    * AUC: ``mean_s AUC_s``, interval ``[mean AUC - mean(AUC_s - lo_s), mean AUC + mean(hi_s - AUC_s)]``
      from the strata's own intervals at ``conf``. Each half-width is ``z * sd_s``; the standard deviation
      of a mean of (jointly normal) estimates is at most the mean of their standard deviations
      (Minkowski), however they are correlated, so the interval keeps its level.
    * TPR at FPR f: the mean of the strata's TPRs, and the mean of their population intervals taken at
      ``conf_tpr = 1 - (1 - conf) / S`` each: all S hold together with probability >= ``conf`` (Bonferroni),
      and then so do their means. Null unless every stratum resolves f on its own.
    * epsilon: each stratum's bound holds at ``conf_tpr``; the largest of the S holds at ``conf``
      (Bonferroni), and it is the bound reported.
    """
    first = parts[0]
    auc = float(np.mean([p.auc for p in parts]))
    lo = auc - float(np.mean([p.auc - p.auc_ci[0] for p in parts]))
    hi = auc + float(np.mean([p.auc_ci[1] - p.auc for p in parts]))
    adv = float(np.mean([p.advantage for p in parts]))
    fs = first.fprs
    tprs = tuple(_combine_tpr([p.tpr_at_fpr[j] for p in parts], f, conf_tpr) for j, f in enumerate(fs))
    best = int(np.argmax([p.epsilon.value for p in parts]))
    ppv = _ppvs(fs, tprs, pi)
    return AttackMetrics(
        auc=auc,
        auc_ci=(max(0.0, lo), min(1.0, hi)),
        balanced_accuracy=0.5 * (1.0 + adv),
        advantage=adv,
        fprs=fs,
        tpr_at_fpr=tprs,
        ppv_at_fpr=ppv[0],
        ppv_lower_at_fpr=ppv[1],
        epsilon=parts[best].epsilon,
        n_members=sum(p.n_members for p in parts),
        n_nonmembers=sum(p.n_nonmembers for p in parts),
        member_prior=pi,
        delta=first.delta,
        confidence=conf,
        roc=_mean_roc(parts),
        n_strata=len(parts),
        strata=tuple(parts),
        epsilon_stratum=best,
    )


def check_strata(strata: Any, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``strata`` as (codes (n,) int, unique values), or None for one stratum; InputError if malformed."""
    if strata is None:
        return None
    g = np.asarray(strata)
    if g.ndim != 1 or g.shape[0] != n:
        raise InputError(f"strata: expected one stratum id per example, shape ({n},), got shape {g.shape}; "
                         "pass e.g. the target model index of every row")
    uniques, codes = np.unique(g, return_inverse=True)
    return codes, uniques


def evaluate_scores(
    is_member: Any,
    scores: Any,
    *,
    fprs: Sequence[float] = (1e-3, 1e-2, 1e-1),
    delta: float = 1e-5,
    confidence: float = 0.95,
    member_prior: float = 0.5,
    seed: int = 0,
    strata: Any = None,
) -> AttackMetrics:
    """AUC (DeLong interval), balanced accuracy, advantage, TPR@FPR (population and Clopper-Pearson
    intervals), PPV (point estimate and lower bound) and the split-half epsilon lower bound of one attack.

    ``confidence`` applies to every interval and to the epsilon bound; ``seed`` fixes the
    selection/certification split of :func:`epsilon_lower_bound`.

    ``strata`` (optional, one id per row): rows that come from different models -- the targets of a
    pooled game, the fold models of a cross-fitted attack, or both (``target * n_folds + fold``). Rows
    of one stratum are scored by one model and treated as independent; rows of different strata are
    not (the same example in several targets, fold models trained on each other's rows), so each
    stratum is evaluated on its own and the figures are combined conservatively (see :class:`AttackMetrics`
    and ``docs/statistics.md``). Every stratum needs a member and a non-member.
    """
    m, s = check_scores(is_member, scores)
    fs = check_fprs(fprs)
    d = check_probability(delta, "delta", low_open=False, high_open=True, example="1e-5")
    conf = check_confidence(confidence)
    pi = check_probability(member_prior, "member_prior", low_open=True, high_open=True, example="0.5")
    sd = check_seed(seed)
    st = check_strata(strata, m.shape[0])
    if st is None or st[1].size == 1:
        return _one_stratum(m, s, fs=fs, d=d, conf=conf, conf_tpr=conf, pi=pi, seed=sd)
    codes, uniques = st
    n_strata = int(uniques.size)
    conf_tpr = 1.0 - (1.0 - conf) / n_strata
    parts = []
    for j in range(n_strata):
        rows = codes == j
        mj = m[rows]
        if mj.all() or not mj.any():
            raise InputError(f"strata: stratum {uniques[j].item()!r} has only {'members' if mj.all() else 'non-members'}; "
                             "every target (and fold) needs both members and non-members")
        parts.append(_one_stratum(mj, s[rows], fs=fs, d=d, conf=conf, conf_tpr=conf_tpr, pi=pi, seed=sd + j))
    return _combine(parts, conf=conf, conf_tpr=conf_tpr, pi=pi)


def rank_attacks(metrics: Mapping[str, AttackMetrics]) -> list[str]:
    """The one "strongest attack" rule: attack names, strongest first.

    Ordered by TPR at the lowest target FPR, then at the next one, ..., then by AUC; a null TPR (too few
    non-members) ranks below every number; ties keep the order of ``metrics``. The terminal table, the
    report and the exposure table all use it.
    """
    names = list(metrics)

    def key(i: int) -> tuple[float, ...]:
        m = metrics[names[i]]
        tprs = [-1.0 if t.tpr is None else float(t.tpr) for _, t in sorted(zip(m.fprs, m.tpr_at_fpr), key=lambda p: p[0])]
        return (*(-x for x in tprs), -float(m.auc), float(i))

    return [names[i] for i in sorted(range(len(names)), key=key)]


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
