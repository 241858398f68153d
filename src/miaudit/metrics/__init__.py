"""Metrics of a membership-inference attack: pure functions on ``(is_member, scores)``.

``is_member`` is a bool (or 0/1) array of shape (N,), ``scores`` a finite float array of shape
(N,), higher = more likely member. Every ROC figure derives from one primitive,
:func:`confusion_at_thresholds`; intervals are exact (Clopper-Pearson) or DeLong; the epsilon
lower bound holds at the stated confidence including the choice of threshold.
"""

from ._checks import check_scores, fpr_key
from ._dp import dp_tpr_bound, gdp_delta, gdp_mu_estimate, gdp_mu_from_epsilon, gdp_tradeoff_tpr
from ._epsilon import EpsilonBound, epsilon_lower_bound
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
    ppv,
    roc_curve,
    tpr_at_fpr,
)
from ._slices import slice_metrics
from ._summary import AttackMetrics, evaluate_scores, summarize_spread

__all__ = [
    "AttackMetrics",
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
