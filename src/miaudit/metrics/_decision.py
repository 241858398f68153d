"""The verdict's decision rule: one pre-declared test of "this model leaks membership".

Reporting 14 attacks x (AUC, three TPRs, epsilon) and calling the model leaky when *any* interval excludes
chance makes ~70 tests at 5% each: on null games (outputs that ignore membership) that claims leakage in a
fifth of the games. The rule here makes one claim per game, at a stated level ``alpha = 1 - confidence``:

1. **Split.** Each target's examples are split at random (seeded, stratified by membership) into a
   *selection* half and a *certification* half (:func:`miaudit.metrics._epsilon.split_select_certify`,
   the split the epsilon bound uses).
2. **Select.** On the selection half only, every candidate (attack, figure) is scored by the p-value of the
   test the certification half will run, computed on the selection half: figures are the AUC (one-sided
   DeLong z) and the TPR at each target FPR that the certification half can resolve (the smallest level
   at which the distribution-free lower bound clears the FPR). The smallest p-value wins (ties: figure
   order, then attack order).
3. **Certify.** On the certification half the chosen figure gets one one-sided lower confidence bound at
   ``1 - alpha / T`` (T targets, Bonferroni): the AUC's normal bound with the larger of DeLong's standard
   error and the exact one under exchangeable labels (:func:`_auc_sd`), or the distribution-free population
   bound on the TPR at FPR f (:func:`miaudit.metrics.tpr_lower_bound`). Leakage is detected when the
   bound lies above chance (AUC 0.5, TPR = f) for at least one target.

Why it holds. Under a null game a target's scores do not depend on its membership, and its members are
a uniformly random half of the examples (its partner, the only model whose membership depends on it, is
not among its references; see ``docs/statistics.md``). The selection sees only the selection half, so given
the selection the certification half's membership is still exchangeable; the one bound then exceeds
chance with probability at most ``alpha / T``, and the union over T targets at most ``alpha``, whatever
the dependence between targets. Cross-fitted attacks score each fold with a different model fitted on the
other folds: their figures are computed per fold and combined conservatively (strata, as in
:func:`miaudit.metrics.evaluate_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from .._errors import InputError
from ._checks import check_confidence, check_fprs, check_scores, fpr_key
from ._epsilon import check_seed, split_select_certify
from ._roc import Confusion, _auc, confusion_from_sorted, delong_sd, sort_desc, tpr_lower_bound

__all__ = ["LeakageDecision", "LeakageTest", "MIN_AUC_ROWS", "decide_leakage"]

#: Members and non-members each stratum of the certification half needs for the AUC's normal bound.
MIN_AUC_ROWS = 10
#: "High" risk: a certified TPR at FPR <= HIGH_MAX_FPR of at least HIGH_FACTOR times chance.
HIGH_MAX_FPR = 0.01
HIGH_FACTOR = 10.0


@dataclass(frozen=True)
class LeakageTest:
    """One certified figure: ``attack``'s ``figure`` ("auc" or "tpr", at ``fpr``) on one target's
    certification half, with its one-sided lower bound at ``confidence`` against ``chance``."""

    attack: str
    figure: str
    fpr: float | None
    estimate: float
    lower_bound: float
    chance: float
    confidence: float
    n_members: int
    n_nonmembers: int
    n_strata: int
    group: Any
    selection_p: float
    detected: bool

    @property
    def label(self) -> str:
        """``"auc"`` or ``"tpr@0.01"``."""
        return "auc" if self.fpr is None else f"tpr@{fpr_key(self.fpr)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "attack": self.attack,
            "figure": self.label,
            "fpr": self.fpr,
            "estimate": _finite(self.estimate),
            "lower_bound": _finite(self.lower_bound),
            "chance": self.chance,
            "confidence": self.confidence,
            "n_members": self.n_members,
            "n_nonmembers": self.n_nonmembers,
            "n_strata": self.n_strata,
            "target": None if self.group is None else _plain(self.group),
            "selection_p": _finite(self.selection_p),
            "detected": self.detected,
        }


@dataclass(frozen=True)
class LeakageDecision:
    """Outcome of :func:`decide_leakage`.

    ``test`` is the figure the decision rests on: the certified test with the largest margin above chance
    when leakage is detected, otherwise the first target's test (None when no candidate could be tested:
    too few examples). ``tests`` has one entry per target.
    """

    leakage_detected: bool
    high: bool
    test: LeakageTest | None
    tests: tuple[LeakageTest, ...]
    alpha: float
    n_targets: int
    n_candidates: int
    seed: int
    reason: str | None = None
    method: str = "select_then_certify"
    candidates: tuple[str, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "leakage_detected": self.leakage_detected,
            "high": self.high,
            "method": self.method,
            "alpha": self.alpha,
            "n_targets": self.n_targets,
            "n_candidates": self.n_candidates,
            "seed": self.seed,
            "reason": self.reason,
            "test": None if self.test is None else self.test.to_dict(),
            "tests": [t.to_dict() for t in self.tests],
        }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _confusions(m: np.ndarray, s: np.ndarray, st: np.ndarray) -> list[Confusion]:
    return [confusion_from_sorted(*sort_desc(m[st == j], s[st == j])) for j in np.unique(st)]


def _auc_sd(c: Confusion, auc: float) -> float:
    """Standard error for the AUC's certification: the larger of DeLong's (the alternative's) and the exact
    standard error under exchangeable labels, ``sqrt((n + 1) / (12 m n'))`` with the tie correction of the
    Mann-Whitney U (Lehmann 1975). DeLong's estimate is itself noisy in small samples, which thickens the tail
    the one-sided bound at ``1 - alpha / T`` reads; under the null the exact value is known."""
    m, k = c.n_members, c.n_nonmembers
    n = m + k
    ties = np.diff(c.tp) + np.diff(c.fp)  # examples sharing each distinct score
    tie_term = float(np.sum(ties.astype(np.float64) ** 3 - ties)) / (n * (n - 1)) if n > 1 else 0.0
    null_var = (n + 1 - tie_term) / (12.0 * m * k)
    return max(delong_sd(c, auc), float(np.sqrt(max(null_var, 0.0))))


def _auc_p(cs: Sequence[Confusion]) -> float:
    """One-sided p-value of AUC > 0.5 from per-stratum DeLong z (standard deviations averaged)."""
    if any(min(c.n_members, c.n_nonmembers) < 2 for c in cs):
        return 1.0
    aucs = [_auc(c) for c in cs]
    sd = float(np.mean([_auc_sd(c, a) for c, a in zip(cs, aucs)]))
    diff = float(np.mean(aucs)) - 0.5
    if sd <= 0.0:
        return 0.0 if diff > 0 else 1.0
    return float(special.ndtr(-diff / sd))


def _tpr_p(cs: Sequence[Confusion], fpr: float) -> float:
    """The smallest ``p`` at which the certification bound (:func:`_certify`) at confidence ``1 - p`` lies above
    ``fpr`` on these counts (1.0 if none does): the evidence the selection half gives for a TPR figure, on the
    same scale as the test the certification half will run."""
    if _certify(cs, fpr, 1.0 - 0.5)[1] <= fpr:
        return 1.0
    lo, hi = -16.0, math.log10(0.5)  # log10 p: the bound clears fpr at hi, not (we assume) at lo
    if _certify(cs, fpr, 1.0 - 10.0**lo)[1] > fpr:
        return float(10.0**lo)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if _certify(cs, fpr, 1.0 - 10.0**mid)[1] > fpr:
            hi = mid
        else:
            lo = mid
    return float(10.0**hi)


def _eligible_auc(cs: Sequence[Confusion]) -> bool:
    return all(min(c.n_members, c.n_nonmembers) >= MIN_AUC_ROWS for c in cs)


def _eligible_tpr(cs: Sequence[Confusion], fpr: float) -> bool:
    return all(fpr * c.n_nonmembers >= 1.0 for c in cs)


def _certify(cs: Sequence[Confusion], fpr: float | None, confidence: float) -> tuple[float, float]:
    """(estimate, one-sided lower bound at ``confidence``) of the figure, combined over strata."""
    if fpr is None:
        aucs = [_auc(c) for c in cs]
        sd = float(np.mean([_auc_sd(c, a) for c, a in zip(cs, aucs)]))
        est = float(np.mean(aucs))
        return est, est - float(special.ndtri(confidence)) * sd
    conf_each = 1.0 - (1.0 - confidence) / len(cs)
    k = [int(c.tp[int(np.searchsorted(c.fp / c.n_nonmembers, fpr, side="right")) - 1]) for c in cs]
    est = float(np.mean([kk / c.n_members for kk, c in zip(k, cs)]))
    return est, float(np.mean([tpr_lower_bound(c, fpr, conf_each) for c in cs]))


def decide_leakage(
    is_member: Any,
    scores: Mapping[str, Any],
    *,
    groups: Any = None,
    strata: Mapping[str, Any] | None = None,
    fprs: Sequence[float] = (1e-3, 1e-2, 1e-1),
    confidence: float = 0.95,
    seed: int = 0,
) -> LeakageDecision:
    """Select-then-certify decision (module docstring): is leakage detected at level ``1 - confidence``?

    ``is_member`` (R,) and each ``scores[attack]`` (R,) are rows of one target or of several pooled targets
    (``groups``: the target of each row). ``strata[attack]`` (R,) optionally gives each row's fold for
    cross-fitted attacks (rows of one fold are scored by one fold model). Attack order in ``scores`` breaks
    ties. The outcome depends only on the seed and the data.
    """
    conf = check_confidence(confidence)
    fs = check_fprs(fprs)
    sd = check_seed(seed)
    if not scores:
        raise InputError("scores: expected at least one attack's scores; run at least one attack")
    m = np.asarray(is_member)
    names = list(scores)
    arrays = {}
    for name in names:
        mm, ss = check_scores(m, scores[name])
        arrays[name] = ss
    m = mm
    n = m.shape[0]
    g = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    if g.shape != (n,):
        raise InputError(f"groups: expected one target id per row, shape ({n},), got {g.shape}")
    folds = {}
    for name in names:
        f = None if strata is None else strata.get(name)
        folds[name] = np.zeros(n, dtype=np.int64) if f is None else np.asarray(f)
        if folds[name].shape != (n,):
            raise InputError(f"strata[{name!r}]: expected one fold id per row, shape ({n},), got {folds[name].shape}")
    targets = np.unique(g)
    n_t = int(targets.size)
    alpha = 1.0 - conf
    conf_each = 1.0 - alpha / n_t
    figures: list[float | None] = sorted(fs) + [None]  # low FPRs first, AUC last (tie order)
    tests: list[LeakageTest] = []
    n_cand = 0
    for ti, t in enumerate(targets):
        rows = np.flatnonzero(g == t)
        mt = m[rows]
        if mt.all() or not mt.any():
            raise InputError(f"groups: target {_plain(t)!r} has only {'members' if mt.all() else 'non-members'}; every "
                             "target needs both")
        sel = split_select_certify(mt, sd + ti)
        best: tuple[float, int, int, str, float | None] | None = None
        n_cand = 0
        for ai, name in enumerate(names):
            s_t, f_t = arrays[name][rows], folds[name][rows]
            cs_sel = _confusions(mt[sel], s_t[sel], f_t[sel])
            cs_cert_counts = _confusions(mt[~sel], np.zeros(int((~sel).sum())), f_t[~sel])  # counts only
            for fi, fig in enumerate(figures):
                ok = _eligible_auc(cs_cert_counts) if fig is None else _eligible_tpr(cs_cert_counts, fig)
                if not ok:
                    continue
                n_cand += 1
                p = _auc_p(cs_sel) if fig is None else _tpr_p(cs_sel, fig)
                key = (p, fi, ai, name, fig)
                if best is None or key[:3] < best[:3]:
                    best = key
        if best is None:
            continue
        p, _, _, name, fig = best
        s_t, f_t = arrays[name][rows], folds[name][rows]
        cs = _confusions(mt[~sel], s_t[~sel], f_t[~sel])
        est, lo = _certify(cs, fig, conf_each)
        chance = 0.5 if fig is None else float(fig)
        tests.append(LeakageTest(
            attack=name, figure="auc" if fig is None else "tpr", fpr=fig, estimate=est, lower_bound=lo,
            chance=chance, confidence=conf_each, n_members=sum(c.n_members for c in cs),
            n_nonmembers=sum(c.n_nonmembers for c in cs), n_strata=len(cs),
            group=None if groups is None else _plain(t), selection_p=p, detected=bool(lo > chance),
        ))
    if not tests:
        return LeakageDecision(
            leakage_detected=False, high=False, test=None, tests=(), alpha=alpha, n_targets=n_t, n_candidates=0,
            seed=sd, reason=f"too few examples to test: the certification half of each target needs at least "
            f"{MIN_AUC_ROWS} members and {MIN_AUC_ROWS} non-members (per fold for cross-fitted attacks)",
        )
    detected = [t for t in tests if t.detected]
    high = any(t.fpr is not None and t.fpr <= HIGH_MAX_FPR and t.lower_bound >= HIGH_FACTOR * t.fpr for t in detected)
    if detected:
        deciding = max(detected, key=lambda t: (t.lower_bound - t.chance) / max(t.chance, 1e-12))
    else:
        deciding = tests[0]
    return LeakageDecision(leakage_detected=bool(detected), high=high, test=deciding, tests=tuple(tests),
                           alpha=alpha, n_targets=n_t, n_candidates=n_cand, seed=sd)
