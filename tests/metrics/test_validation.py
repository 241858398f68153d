"""Every error path of the shared (is_member, scores) validation, through every public entry point."""

from __future__ import annotations

import numpy as np
import pytest

from miaudit._errors import InputError
from miaudit.metrics import (
    advantage,
    auc_interval,
    auc_score,
    balanced_accuracy,
    check_scores,
    clopper_pearson,
    confusion_at_thresholds,
    epsilon_lower_bound,
    evaluate_scores,
    ppv,
    roc_curve,
    slice_metrics,
    tpr_at_fpr,
)

ENTRY_POINTS = [
    check_scores,
    confusion_at_thresholds,
    roc_curve,
    auc_score,
    auc_interval,
    advantage,
    balanced_accuracy,
    lambda m, s: tpr_at_fpr(m, s, fpr=0.1),
    epsilon_lower_bound,
    evaluate_scores,
    lambda m, s: slice_metrics(m, s, np.zeros(np.shape(s)[0] if np.ndim(s) else 1)),
]

GOOD_M = np.array([True, False, True, False])
GOOD_S = np.array([0.3, 0.1, 0.7, 0.2])

CASES = [
    (GOOD_M, np.array([0.3, np.nan, 0.7, 0.2]), r"scores: expected finite floats, got 1 NaN/inf value\(s\) \(first at index 1\)"),
    (GOOD_M, np.array([0.3, 0.1, np.inf, -np.inf]), r"scores: expected finite floats, got 2 NaN/inf value\(s\) \(first at index 2\)"),
    (GOOD_M, GOOD_S[:3], r"is_member and scores: expected the same length, got 4 and 3"),
    (GOOD_M, GOOD_S[:, None], r"scores: expected a real-valued array of shape \(N,\), got dtype float64 and shape \(4, 1\)"),
    (GOOD_M, np.array(["a", "b", "c", "d"]), r"scores: expected a real-valued array of shape \(N,\), got dtype <U1"),
    (GOOD_M[:, None], GOOD_S, r"is_member: expected a boolean \(or 0/1\) array of shape \(N,\), got dtype bool and shape \(4, 1\)"),
    (np.array([0, 1, 2, 1]), GOOD_S, r"is_member: expected booleans or 0/1, got other values such as 2"),
    (np.array([0.0, 0.5, 1.0, 0.0]), GOOD_S, r"is_member: expected booleans or 0/1, got other values such as 0.5"),
    (np.array(["yes", "no", "yes", "no"]), GOOD_S, r"is_member: expected a boolean \(or 0/1\) array of shape \(N,\), got dtype <U3"),
    (np.ones(4, bool), GOOD_S, r"is_member: expected at least one member and one non-member, got no non-members among 4"),
    (np.zeros(4, int), GOOD_S, r"is_member: expected at least one member and one non-member, got no members among 4"),
    (np.array([], bool), np.array([]), r"is_member and scores: expected at least 2 examples, got empty arrays"),
    (5, 0.3, r"is_member: expected a boolean \(or 0/1\) array of shape \(N,\), got dtype int64 and shape \(\);.*scores: expected a real-valued"),
]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("m,s,match", CASES)
def test_bad_inputs_raise_one_line_input_errors(entry, m, s, match):
    with pytest.raises(InputError, match=match) as info:
        entry(m, s)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)


def test_all_problems_reported_at_once():
    with pytest.raises(InputError, match=r"is_member: expected booleans.*; scores: expected finite floats"):
        check_scores([0, 2, 1], [0.0, np.nan, 1.0])


def test_good_inputs_are_normalised():
    m, s = check_scores([1, 0, 1], [1, 2, 3])
    assert m.dtype == bool and s.dtype == np.float64


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: tpr_at_fpr(GOOD_M, GOOD_S, fpr=0.0), r"fpr: expected a number in \(0, 1\)"),
        (lambda: tpr_at_fpr(GOOD_M, GOOD_S, fpr=1.2), r"fpr: expected a number in \(0, 1\)"),
        (lambda: tpr_at_fpr(GOOD_M, GOOD_S, fpr=None), r"fpr: expected a number in \(0, 1\).*got None"),
        (lambda: tpr_at_fpr(GOOD_M, GOOD_S, fpr=0.1, confidence=1.5), r"confidence: expected a number strictly"),
        (lambda: auc_interval(GOOD_M, GOOD_S, confidence=0.0), r"confidence: expected a number strictly"),
        (lambda: clopper_pearson(3, 2), r"k: expected a count between 0 and n=2, got 3"),
        (lambda: clopper_pearson(-1, 2), r"k: expected a count between 0 and n=2, got -1"),
        (lambda: clopper_pearson(0, 0), r"n: expected at least 1 trial, got 0"),
        (lambda: clopper_pearson(1.5, 2), r"k: expected a non-negative integer count, got 1.5"),
        (lambda: clopper_pearson(1, "2"), r"n: expected a non-negative integer count"),
        (lambda: clopper_pearson(True, 2), r"k: expected a non-negative integer count"),
        (lambda: clopper_pearson(1, 2, confidence=1.0), r"confidence: expected"),
        (lambda: ppv(1.5, 0.1), r"tpr: expected a number in \[0, 1\]"),
        (lambda: ppv(0.5, -0.1), r"fpr: expected a number in \[0, 1\]"),
        (lambda: ppv(0.5, 0.1, member_prior=0.0), r"member_prior: expected a number in \(0, 1\)"),
    ],
)
def test_option_errors(call, match):
    with pytest.raises(InputError, match=match):
        call()
