"""DP theory curves the report draws (from miaudit.metrics), ROC helpers and the verdict's reading of metric dicts, against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_curve

from miaudit.metrics import (
    dp_tpr_bound,
    evaluate_scores,
    gdp_delta,
    gdp_mu_from_epsilon,
    gdp_tradeoff_tpr,
    n_needed_for_fpr,
    rank_attacks,
)
from miaudit.report._plots import roc_on_grid, roc_points
from miaudit.report._verdict import describe_tpr, pct

FPR = np.logspace(-5, 0, 60)


def test_dp_bound_known_values() -> None:
    np.testing.assert_allclose(dp_tpr_bound(FPR, epsilon=0.0, delta=0.0), FPR)  # eps = 0: chance
    eps, delta = 1.0, 1e-5
    brute = np.array([min(1.0, math.e * f + delta, 1 - math.exp(-1) * (1 - delta - f)) for f in FPR])
    np.testing.assert_allclose(dp_tpr_bound(FPR, epsilon=eps, delta=delta), brute, rtol=1e-12)
    assert dp_tpr_bound(np.array([1.0]), epsilon=3.0, delta=0.0)[0] == 1.0


def test_gdp_known_values() -> None:
    np.testing.assert_allclose(gdp_tradeoff_tpr(FPR, mu=0.0), FPR, rtol=1e-12)
    np.testing.assert_allclose(gdp_tradeoff_tpr(FPR, mu=1.5), norm.cdf(norm.ppf(FPR) + 1.5), rtol=1e-10)
    # Dong, Roth, Su: 1-GDP is (1, 0.1269)-DP
    assert gdp_delta(1.0, mu=1.0) == pytest.approx(norm.cdf(-0.5) - math.e * norm.cdf(-1.5), rel=1e-12)
    assert gdp_delta(1.0, mu=1.0) == pytest.approx(0.12693, abs=1e-5)
    assert gdp_mu_from_epsilon(1.0, delta=gdp_delta(1.0, mu=1.0)) == pytest.approx(1.0, rel=1e-8)


@pytest.mark.parametrize(("eps", "delta"), [(0.5, 1e-5), (1.0, 1e-5), (4.0, 1e-5), (16.0, 1e-6)])
def test_gdp_curve_inside_the_dp_region(eps: float, delta: float) -> None:
    mu = gdp_mu_from_epsilon(eps, delta=delta)
    assert gdp_delta(eps, mu=mu) == pytest.approx(delta, rel=1e-6)
    # a mu-GDP mechanism that is (eps, delta)-DP can never beat the (eps, delta) region
    assert np.all(gdp_tradeoff_tpr(FPR, mu=mu) <= dp_tpr_bound(FPR, epsilon=eps, delta=delta) + 1e-12)
    assert np.all(np.diff(gdp_tradeoff_tpr(FPR, mu=mu)) >= 0)
    assert gdp_mu_from_epsilon(eps * 2, delta=delta) > mu  # more epsilon, more mu


def test_roc_points_match_sklearn_with_every_threshold() -> None:
    rng = np.random.default_rng(0)
    m = rng.random(500) < 0.5
    s = np.round(rng.normal(size=500) + m, 1)  # many ties
    fpr, tpr = roc_points(m, s)
    f2, t2, _ = roc_curve(m, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f2)
    np.testing.assert_allclose(tpr, t2)


def test_roc_on_grid_is_the_tpr_at_fpr_definition() -> None:
    rng = np.random.default_rng(1)
    m = rng.random(300) < 0.5
    fpr, tpr = roc_points(m, rng.normal(size=300) + m)
    grid = np.r_[0.0, np.logspace(-3, 0, 40)]
    brute = [max((t for f, t in zip(fpr, tpr) if f <= g), default=0.0) for g in grid]
    np.testing.assert_allclose(roc_on_grid(fpr, tpr, grid), brute)


def test_describing_typed_tpr_figures() -> None:
    rng = np.random.default_rng(2)
    m = np.r_[np.ones(500, bool), np.zeros(500, bool)]
    r = evaluate_scores(m, rng.normal(size=1000) + 1.5 * m, fprs=(0.001, 0.01))
    t = r.at(0.001)
    assert t.tpr is None and describe_tpr(t) == "n/a (needs ≥ 1,000 non-members, has 500)"
    t = r.at(0.01)
    assert describe_tpr(t) == f"{pct(t.tpr)} [{pct(t.target_ci_low)}, {pct(t.target_ci_high)}] (500 non-members)"
    assert [n_needed_for_fpr(f) for f in (0.001, 0.01, 0.1, 0.05, 0.003)] == [1000, 100, 10, 20, 334]
    assert [pct(x) for x in (None, 0.0, 0.0243, 0.00012, 0.5)] == ["n/a", "0%", "2.43%", "0.012%", "50%"]


def test_rank_attacks_low_fpr_first_then_auc_then_given_order() -> None:
    rng = np.random.default_rng(3)
    m = np.r_[np.ones(1500, bool), np.zeros(1500, bool)]
    noise = rng.normal(size=3000)
    tail = evaluate_scores(m, noise + 4.0 * m * (rng.random(3000) < 0.1))  # few members far out: low-FPR power
    broad = evaluate_scores(m, noise + 0.5 * m)  # everyone a little: more AUC, less low-FPR TPR
    assert broad.auc > tail.auc and tail.at(0.001).tpr > broad.at(0.001).tpr
    assert rank_attacks({"broad": broad, "tail": tail}) == ["tail", "broad"]
    assert rank_attacks({"z": broad, "y": broad}) == ["z", "y"]  # ties keep the given order
    assert rank_attacks({}) == []
