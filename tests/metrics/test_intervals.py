from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from miaudit.metrics import auc_interval, auc_score, clopper_pearson
from miaudit.metrics._intervals import cp_upper

from . import _brute


@pytest.mark.parametrize("n", [1, 2, 7, 50, 1000])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_clopper_pearson_matches_scipy_exact(n, confidence):
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        lo, hi = clopper_pearson(k, n, confidence=confidence)
        ref = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
        assert lo == pytest.approx(ref.low, abs=1e-12)
        assert hi == pytest.approx(ref.high, abs=1e-12)
        assert isinstance(lo, float) and isinstance(hi, float)


def test_clopper_pearson_edge_cases_are_exact():
    lo, hi = clopper_pearson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 20))
    lo, hi = clopper_pearson(20, 20)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 20))
    assert clopper_pearson(0, 1, confidence=0.5) == (0.0, pytest.approx(0.75))
    assert clopper_pearson(np.int64(3), np.int64(10)) == clopper_pearson(3, 10)


def test_cp_upper_one_sided():
    assert cp_upper(0, 10, 0.05) == pytest.approx(1 - 0.05 ** (1 / 10))
    assert cp_upper(10, 10, 0.05) == 1.0
    k = np.array([0, 3, 9])
    np.testing.assert_allclose(cp_upper(k, 9, 0.1), [stats.beta.ppf(0.9, 1, 9), stats.beta.ppf(0.9, 4, 6), 1.0])


def _game(seed, n_pos, n_neg, shift=0.8, n_values=None):
    rng = np.random.default_rng(seed)
    m = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    s = rng.normal(size=n_pos + n_neg) + shift * m
    if n_values:
        s = np.round(s * n_values) / n_values
    return m, s


@pytest.mark.parametrize("seed,n_values", [(0, None), (1, 2), (2, 5)])
def test_delong_matches_brute_force_structural_components(seed, n_values):
    m, s = _game(seed, 40, 70, n_values=n_values)
    a = auc_score(m, s)
    z = special.ndtri(0.975)
    half = z * math.sqrt(_brute.delong_var(m, s))
    lo, hi = auc_interval(m, s)
    assert lo == pytest.approx(max(0.0, a - half), abs=1e-12)
    assert hi == pytest.approx(min(1.0, a + half), abs=1e-12)


def test_delong_close_to_bootstrap():
    m, s = _game(3, 300, 300, shift=0.5)
    lo, hi = auc_interval(m, s, confidence=0.9)
    rng = np.random.default_rng(0)
    pos, neg = s[m], s[~m]
    boots = []
    for _ in range(300):  # stratified bootstrap
        bp = rng.choice(pos, pos.size)
        bn = rng.choice(neg, neg.size)
        boots.append(auc_score(np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)], np.r_[bp, bn]))
    b_lo, b_hi = np.quantile(boots, [0.05, 0.95])
    width = hi - lo
    assert abs(lo - b_lo) < 0.15 * width and abs(hi - b_hi) < 0.15 * width


def test_auc_interval_clipped_and_degenerate_cases():
    m, s = _game(4, 30, 30, shift=6.0)  # almost perfect
    lo, hi = auc_interval(m, s)
    assert 0.0 <= lo <= auc_score(m, s) <= hi <= 1.0
    # perfect separation: DeLong variance 0 -> exact interval from min(P, N) disjoint pairs
    m = np.r_[np.ones(10, bool), np.zeros(20, bool)]
    s = np.r_[np.arange(10) + 100.0, np.arange(20.0)]
    lo, hi = auc_interval(m, s)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10))
    lo, hi = auc_interval(m, -s)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10))
    # one member: variance not estimable -> the honest (0, 1)
    assert auc_interval([True, False, False], [1.0, 0.0, 2.0]) == (0.0, 1.0)
    # constant scores: the attack is exactly a coin flip
    assert auc_interval([True, False, True, False], [1.0, 1.0, 1.0, 1.0]) == (0.5, 0.5)


def test_auc_interval_confidence_orders_widths():
    m, s = _game(5, 100, 100)
    w = [np.subtract(*auc_interval(m, s, confidence=c)[::-1]) for c in (0.8, 0.95, 0.99)]
    assert w[0] < w[1] < w[2]
