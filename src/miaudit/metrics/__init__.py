"""Metrics of a membership-inference attack: pure functions on ``(is_member, scores)``.

``is_member`` is a bool (or 0/1) array of shape (N,), ``scores`` a finite float array of shape
(N,), higher = more likely member. Every ROC figure derives from one primitive,
:func:`confusion_at_thresholds`; intervals are exact (Clopper-Pearson) or DeLong; the epsilon
lower bound holds at the stated confidence including the choice of threshold.
"""

from ._checks import check_scores, fpr_key
from ._decision import LeakageDecision, LeakageTest, decide_leakage
from ._dp import (
    NEIGHBOURING,
    DpCheck,
    dp_check,
    dp_tpr_bound,
    gdp_delta,
    gdp_mu_estimate,
    gdp_mu_from_epsilon,
    gdp_tradeoff_tpr,
    substitution_guarantee,
)
from ._epsilon import EpsilonBound, epsilon_bound_strata, epsilon_lower_bound
from ._intervals import clopper_pearson
from ._roc import (
    Confusion,
    RocCurve,
    TprAtFpr,
    advantage,
    auc_interval,
    auc_score,
    balanced_accuracy,
    confusion_at_thresholds,
    delong_sd,
    n_needed_for_fpr,
    ppv,
    roc_curve,
    tpr_at_fpr,
    tpr_lower_bound,
)
from ._settings import DEFAULT_FPRS, AuditSettings
from ._shards import ScoreCounts, confusion_from_counts, merge_counts, score_counts
from ._slices import slice_metrics
from ._summary import ROC_GRID, AttackMetrics, evaluate_scores, rank_attacks, summarize_spread

__all__ = [
    "ScoreCounts",
    "confusion_from_counts",
    "merge_counts",
    "score_counts",
    "AttackMetrics",
    "AuditSettings",
    "DpCheck",
    "NEIGHBOURING",
    "dp_check",
    "DEFAULT_FPRS",
    "epsilon_bound_strata",
    "rank_attacks",
    "substitution_guarantee",
    "LeakageDecision",
    "LeakageTest",
    "ROC_GRID",
    "decide_leakage",
    "delong_sd",
    "n_needed_for_fpr",
    "tpr_lower_bound",
    "Confusion",
    "EpsilonBound",
    "RocCurve",
    "TprAtFpr",
    "advantage",
    "auc_interval",
    "auc_score",
    "balanced_accuracy",
    "check_scores",
    "clopper_pearson",
    "confusion_at_thresholds",
    "dp_tpr_bound",
    "epsilon_lower_bound",
    "evaluate_scores",
    "fpr_key",
    "gdp_delta",
    "gdp_mu_estimate",
    "gdp_mu_from_epsilon",
    "gdp_tradeoff_tpr",
    "ppv",
    "roc_curve",
    "slice_metrics",
    "summarize_spread",
    "tpr_at_fpr",
]
