from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from miaudit.metrics import (
    advantage,
    auc_score,
    balanced_accuracy,
    confusion_at_thresholds,
    ppv,
    roc_curve,
    tpr_at_fpr,
)

from . import _brute


def _game(seed: int, n: int = 60, n_values: int | None = None, shift: float = 0.7):
    rng = np.random.default_rng(seed)
    m = np.zeros(n, bool)
    m[rng.permutation(n)[: n // 2]] = True
    s = rng.normal(size=n) + shift * m
    if n_values is not None:  # force ties
        s = np.round(s * n_values / 4) / n_values
    return m, s


@st.composite
def games(draw, max_n: int = 40):
    n = draw(st.integers(2, max_n))
    m = draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(lambda v: 0 < sum(v) < len(v)))
    s = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    return np.array(m), np.array(s, dtype=float)


@pytest.mark.parametrize("seed,n_values", [(0, None), (1, 3), (2, 8), (3, 1)])
def test_roc_matches_brute_force_and_sklearn(seed, n_values):
    m, s = _game(seed, n_values=n_values)
    curve = roc_curve(m, s)
    fpr, tpr, thr = _brute.roc(m, s)
    np.testing.assert_array_equal(curve.thresholds, thr)
    np.testing.assert_allclose(curve.fpr, fpr, rtol=0, atol=1e-15)
    np.testing.assert_allclose(curve.tpr, tpr, rtol=0, atol=1e-15)
    assert curve.fpr[0] == 0 and curve.tpr[0] == 0 and curve.thresholds[0] == np.inf
    assert curve.fpr[-1] == 1 and curve.tpr[-1] == 1
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(m, s, drop_intermediate=False)
    np.testing.assert_allclose(curve.fpr, sk_fpr)
    np.testing.assert_allclose(curve.tpr, sk_tpr)
    np.testing.assert_array_equal(curve.thresholds[1:], sk_thr[1:])


def test_confusion_counts_are_cumulative_integers():
    m = np.array([1, 0, 1, 0, 0, 1], bool)
    s = np.array([3.0, 3.0, 2.0, 1.0, 1.0, 0.5])
    c = confusion_at_thresholds(m, s)
    np.testing.assert_array_equal(c.thresholds, [np.inf, 3.0, 2.0, 1.0, 0.5])
    np.testing.assert_array_equal(c.tp, [0, 1, 2, 2, 3])
    np.testing.assert_array_equal(c.fp, [0, 1, 1, 3, 3])
    assert (c.n_members, c.n_nonmembers) == (3, 3)


def test_one_tie_between_member_and_nonmember_is_one_diagonal_step():
    curve = roc_curve([True, False], [1.0, 1.0])
    np.testing.assert_array_equal(curve.fpr, [0, 1])
    np.testing.assert_array_equal(curve.tpr, [0, 1])
    assert auc_score([True, False], [1.0, 1.0]) == 0.5


@pytest.mark.parametrize("seed,n_values", [(0, None), (4, 5), (5, 2), (6, 30)])
def test_auc_matches_brute_force_and_sklearn(seed, n_values):
    m, s = _game(seed, n=80, n_values=n_values)
    a = auc_score(m, s)
    assert a == pytest.approx(_brute.auc(m, s), abs=1e-14)
    assert a == pytest.approx(skm.roc_auc_score(m, s), abs=1e-14)


def test_auc_known_values():
    assert auc_score([1, 1, 0, 0], [4, 3, 2, 1]) == 1.0
    assert auc_score([1, 1, 0, 0], [1, 2, 3, 4]) == 0.0
    assert auc_score([1, 0, 1, 0], [2, 1, 1, 2]) == pytest.approx(0.5)  # (1 + 0.5 + 0.5 + 0) / 4
    assert auc_score([1, 0, 1, 0], [2, 1, 1, 1]) == pytest.approx(0.75)  # (1 + 1 + 0.5 + 0.5) / 4


@pytest.mark.parametrize("seed,n_values", [(0, None), (7, 4), (8, 12)])
@pytest.mark.parametrize("f", [0.01, 0.05, 0.1, 0.25, 0.5, 0.99])
def test_tpr_at_fpr_matches_brute_force(seed, n_values, f):
    m, s = _game(seed, n=200, n_values=n_values)
    r = tpr_at_fpr(m, s, fpr=f)
    tpr, thr, k = _brute.tpr_at_fpr(m, s, f)
    assert r.tpr == pytest.approx(tpr, abs=1e-15)
    assert r.threshold == thr
    assert r.n_true_positives == k
    assert r.achieved_fpr <= f
    assert r.ci_low <= r.tpr <= r.ci_high
    assert (r.n_members, r.n_nonmembers) == (100, 100)
    assert r.reason is None


def test_tpr_at_fpr_exact_boundary_counts_as_within_target():
    # 10 non-members; FPR 0.1 is exactly one false positive and must be admissible.
    m = np.array([True] * 5 + [False] * 10)
    s = np.array([10, 9, 8, 1, 0] + [9.5, 0.5] + list(range(-9, -1)), dtype=float)
    r = tpr_at_fpr(m, s, fpr=0.1)
    assert r.tpr == pytest.approx(0.8) and r.achieved_fpr == pytest.approx(0.1)
    assert r.threshold == 1.0 and r.n_false_positives == 1
    assert tpr_at_fpr(m, s, fpr=0.0999).reason.startswith("needs at least 11 non-members")
    # whenever fpr * n_nonmembers >= 1 at least one false positive is admissible
    r1 = tpr_at_fpr(np.r_[m, False], np.r_[s, -20.0], fpr=0.0999)
    assert r1.tpr == pytest.approx(0.8) and r1.n_false_positives == 1


def test_tpr_at_fpr_refuses_unsupported_fpr_with_reason():
    m, s = _game(0, n=200)
    r = tpr_at_fpr(m, s, fpr=0.001)
    assert r.tpr is None and r.ci_low is None and r.ci_high is None
    assert r.achieved_fpr is None and r.threshold is None
    assert r.reason == "needs at least 1000 non-members to resolve FPR <= 0.001; have 100"
    assert r.to_dict()["reason"] == r.reason
    # exactly enough: fpr * n = 1
    assert tpr_at_fpr(m, s, fpr=0.01).tpr is not None


def test_tpr_at_fpr_no_admissible_point_but_origin_has_infinite_threshold():
    m = np.array([False, True, False, False, False])
    s = np.array([5.0, 1.0, 0.0, -1.0, -2.0])
    r = tpr_at_fpr(m, s, fpr=0.25)
    assert r.tpr == 1.0  # one false positive allowed (1/4 <= 0.25)
    r = tpr_at_fpr(m, np.array([5.0, 1.0, 5.0, -1.0, -2.0]), fpr=0.25)  # tie of 2 non-members on top
    assert r.tpr == 0.0 and r.threshold == math.inf and r.to_dict()["threshold"] is None
    assert r.ci_low == 0.0


@pytest.mark.parametrize("seed,n_values", [(0, None), (9, 3), (10, 10)])
def test_advantage_and_balanced_accuracy(seed, n_values):
    m, s = _game(seed, n=100, n_values=n_values)
    adv = advantage(m, s)
    assert adv == pytest.approx(_brute.advantage(m, s), abs=1e-15)
    assert balanced_accuracy(m, s) == pytest.approx((1 + adv) / 2)
    # brute-force balanced accuracy over thresholds
    best = max(((s >= t)[m].mean() + (s < t)[~m].mean()) / 2 for t in np.r_[np.inf, s])
    assert balanced_accuracy(m, s) == pytest.approx(best)


def test_advantage_is_zero_for_reversed_scores():
    assert advantage([1, 1, 0, 0], [1, 2, 3, 4]) == 0.0
    assert advantage([1, 1, 0, 0], [4, 3, 2, 1]) == 1.0


def test_ppv():
    assert ppv(0.5, 0.01, member_prior=0.5) == pytest.approx(0.5 / 0.51)
    assert ppv(0.1, 0.1, member_prior=0.01) == pytest.approx(0.01)
    assert ppv(0.3, 0.0, member_prior=0.2) == 1.0
    assert math.isnan(ppv(0.0, 0.0))


@settings(max_examples=60, deadline=None)
@given(games(), st.randoms(use_true_random=False))
def test_invariant_to_sample_order(game, rnd):
    m, s = game
    perm = np.array(rnd.sample(range(len(m)), len(m)))
    a, b = roc_curve(m, s), roc_curve(m[perm], s[perm])
    np.testing.assert_array_equal(a.fpr, b.fpr)
    np.testing.assert_array_equal(a.tpr, b.tpr)
    np.testing.assert_array_equal(a.thresholds, b.thresholds)
    assert auc_score(m, s) == auc_score(m[perm], s[perm])
    assert advantage(m, s) == advantage(m[perm], s[perm])
    for f in (0.2, 0.5):
        if f * (~m).sum() >= 1:
            assert tpr_at_fpr(m, s, fpr=f).tpr == tpr_at_fpr(m[perm], s[perm], fpr=f).tpr


@settings(max_examples=60, deadline=None)
@given(games(), st.sampled_from(["affine", "cube", "exp"]))
def test_invariant_to_strictly_increasing_transforms(game, kind):
    m, s = game
    t = {"affine": 3 * s + 7, "cube": s**3, "exp": np.exp(s)}[kind]
    a, b = roc_curve(m, s), roc_curve(m, t)
    np.testing.assert_array_equal(a.fpr, b.fpr)
    np.testing.assert_array_equal(a.tpr, b.tpr)
    assert auc_score(m, s) == auc_score(m, t)
    assert advantage(m, s) == advantage(m, t)
    assert auc_score(m, s) == pytest.approx(_brute.auc(m, s), abs=1e-14)
    assert auc_score(m, -s) == pytest.approx(1 - auc_score(m, s), abs=1e-14)


def test_int_and_float_member_flags_are_accepted():
    m, s = _game(3)
    ref = auc_score(m, s)
    assert auc_score(m.astype(int), s) == ref
    assert auc_score(m.astype(float), s) == ref
    assert auc_score(list(m), list(s)) == ref


def _target_interval_brute(m, s, f, confidence):
    """Order-statistic ranks by direct summation of binomial probabilities, then CP at alpha / 4."""
    from scipy import stats

    q = (1 - confidence) / 4
    n = int((~m).sum())
    pmf = [math.comb(n, j) * f**j * (1 - f) ** (n - j) for j in range(n + 1)]
    a = min(a for a in range(n + 2) if sum(pmf[a:]) <= q)
    b = max(b for b in range(n + 1) if sum(pmf[:b]) <= q)
    y = np.sort(s[~m])[::-1]
    pos = s[m]
    k_hi = len(pos) if a > n else int((pos >= y[a - 1]).sum())
    k_lo = 0 if b < 1 else int((pos > y[b - 1]).sum())
    lo = 0.0 if k_lo == 0 else stats.beta.ppf(q, k_lo, len(pos) - k_lo + 1)
    hi = 1.0 if k_hi == len(pos) else stats.beta.ppf(1 - q, k_hi + 1, len(pos) - k_hi)
    return lo, hi


@pytest.mark.parametrize("seed,n_values", [(0, None), (11, 3), (12, 20)])
@pytest.mark.parametrize("f", [0.02, 0.1, 0.3])
def test_target_interval_matches_brute_force(seed, n_values, f):
    m, s = _game(seed, n=300, n_values=n_values)
    r = tpr_at_fpr(m, s, fpr=f, confidence=0.9)
    lo, hi = _target_interval_brute(m, s, f, 0.9)
    assert r.target_ci_low == pytest.approx(lo, abs=1e-12)
    assert r.target_ci_high == pytest.approx(hi, abs=1e-12)
    assert r.target_ci_low <= r.ci_low and r.ci_high <= r.target_ci_high


def test_target_interval_with_all_scores_tied_stays_valid():
    m = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    r = tpr_at_fpr(m, np.zeros(100), fpr=0.1)
    # the only admissible test flags nothing: true TPR@10% is 0, which the interval must contain
    assert r.tpr == 0.0 and r.target_ci_low == 0.0


@settings(max_examples=60, deadline=None)
@given(games(max_n=60), st.sampled_from([0.05, 0.1, 0.3, 0.6]), st.sampled_from([0.8, 0.95]))
def test_tpr_at_fpr_intervals_are_nested(game, f, confidence):
    m, s = game
    r = tpr_at_fpr(m, s, fpr=f, confidence=confidence)
    if f * (~m).sum() < 1:
        assert r.tpr is None and r.target_ci_low is None and r.reason is not None
        return
    assert r.achieved_fpr <= f
    assert 0.0 <= r.target_ci_low <= r.ci_low <= r.tpr <= r.ci_high <= r.target_ci_high <= 1.0
