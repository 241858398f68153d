"""DP theory curves the report draws (from miaudit.metrics), ROC helpers and the verdict's reading of metric dicts, against known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_curve

from miaudit.metrics import dp_tpr_bound, gdp_delta, gdp_mu_from_epsilon, gdp_tradeoff_tpr
from miaudit.report import strongest_attack
from miaudit.report._plots import roc_on_grid, roc_points
from miaudit.report._verdict import describe_tpr, needed_nonmembers, pct, tpr_figure

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


def test_reading_metric_dicts() -> None:
    m = {
        "auc": 0.7,
        "n_nonmembers": 500,
        "tpr_at_fpr": {"0.001": None, "0.01": 0.2},
        "tpr_at_fpr_ci": {"0.001": None, "0.01": [0.15, 0.25]},
        "tpr_at_fpr_detail": {"0.01": {"achieved_fpr": 0.008, "n_nonmembers": 500}},
    }
    t = tpr_figure(m, 0.001)
    assert not t.available and describe_tpr(t) == "n/a (needs ≥ 1,000 non-members, has 500)"
    t = tpr_figure(m, 0.01)
    assert (t.tpr, t.ci_low, t.ci_high, t.n_nonmembers, t.achieved_fpr) == (0.2, 0.15, 0.25, 500, 0.008)
    assert t.above_chance and describe_tpr(t) == "20% [15%, 25%] (500 non-members)"
    # 1 false positive of 1000: chance can reach 0.556%, so a TPR interval from 0.3% is not evidence
    weak = tpr_figure({"tpr_at_fpr": {"0.001": 0.005}, "tpr_at_fpr_ci": {"0.001": [0.003, 0.009]},
                       "n_nonmembers": 1000}, 0.001)
    assert weak.chance_high == pytest.approx(0.005559, abs=1e-6) and not weak.above_chance
    assert [needed_nonmembers(f) for f in (0.001, 0.01, 0.1, 0.05)] == [1000, 100, 10, 20]
    assert [pct(x) for x in (None, 0.0, 0.0243, 0.00012, 0.5)] == ["n/a", "0%", "2.43%", "0.012%", "50%"]


def test_strongest_attack_ranks_low_fpr_first() -> None:
    def md(t001, t01, auc):
        return {"auc": auc, "tpr_at_fpr": {"0.001": t001, "0.01": t01}}

    metrics = {"a": md(0.01, 0.05, 0.9), "b": md(0.02, 0.03, 0.6), "c": md(None, 0.5, 0.99)}
    assert strongest_attack(metrics, [0.001, 0.01]) == "b"
    metrics = {"a": md(None, 0.05, 0.9), "b": md(None, 0.03, 0.95)}
    assert strongest_attack(metrics, [0.001, 0.01]) == "a"
    assert strongest_attack({"z": md(0.1, 0.1, 0.7), "y": md(0.1, 0.1, 0.7)}, [0.001, 0.01]) == "y"
    assert strongest_attack({}, [0.01]) is None


def test_dp_violations_flag_figures_above_the_guarantee() -> None:
    from miaudit.report._verdict import dp_violations

    # 20% TPR at 1% FPR with a tight interval; (eps=1, delta=1e-5) allows at most e * FPR_upper ~ 4%
    m = {"tpr_at_fpr": {"0.01": 0.2}, "tpr_at_fpr_ci": {"0.01": [0.17, 0.23]}, "n_nonmembers": 2000,
         "tpr_at_fpr_detail": {"0.01": {"achieved_fpr": 0.01, "n_nonmembers": 2000}}}
    out = dp_violations({"lira": m}, [0.01], epsilon=1.0, delta=1e-5)
    assert len(out) == 1 and out[0].startswith("lira at 1% FPR: TPR is at least 17%")
    assert dp_violations({"lira": m}, [0.01], epsilon=4.0, delta=1e-5) == []  # e^4 * 1.3% > 23%
    # the population interval, when present, is what counts
    m["tpr_at_fpr_detail"]["0.01"]["target_ci_low"] = 0.02
    assert dp_violations({"lira": m}, [0.01], epsilon=1.0, delta=1e-5) == []
