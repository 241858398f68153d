from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from miaudit._errors import InputError
from miaudit.metrics import dp_tpr_bound, gdp_delta, gdp_mu_estimate, gdp_mu_from_epsilon, gdp_tradeoff_tpr


def test_gdp_tradeoff_known_values():
    f = np.array([0.0, 1e-3, 0.5, 1.0])
    np.testing.assert_allclose(gdp_tradeoff_tpr(f, 0.0), f, atol=1e-15)
    assert gdp_tradeoff_tpr(0.5, 1.0) == pytest.approx(stats.norm.cdf(1.0))
    assert gdp_tradeoff_tpr(1e-3, 2.0) == pytest.approx(stats.norm.cdf(stats.norm.ppf(1e-3) + 2.0))
    np.testing.assert_array_equal(gdp_tradeoff_tpr(f, math.inf), [0, 1, 1, 1])
    assert gdp_tradeoff_tpr(f, 1.0).shape == (4,)


@pytest.mark.parametrize("mu", [0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("eps", [0.0, 0.5, 2.0, 8.0])
def test_gdp_delta_is_the_dual_of_the_tradeoff_curve(mu, eps):
    # delta(eps) = sup_f [TPR(f) - e^eps f]  (Dong, Roth & Su 2022, Prop. 2.12)
    f = np.exp(np.linspace(-60, 0, 200001))
    dual = float(np.max(gdp_tradeoff_tpr(f, mu) - math.exp(eps) * f))
    assert gdp_delta(eps, mu) == pytest.approx(max(dual, 0.0), rel=1e-6, abs=1e-14)


@pytest.mark.parametrize("eps", [0.0, 0.1, 1.0, 4.0, 16.0, 68.5, 800.0])
@pytest.mark.parametrize("delta", [1e-10, 1e-5, 1e-2])
def test_gdp_mu_from_epsilon_round_trip(eps, delta):
    mu = gdp_mu_from_epsilon(eps, delta)
    assert mu > 0
    assert gdp_delta(eps, mu) == pytest.approx(delta, rel=1e-8)


def test_gdp_mu_from_epsilon_monotone_and_infinite():
    mus = [gdp_mu_from_epsilon(e, 1e-5) for e in (0.5, 1, 2, 4, 8)]
    assert all(a < b for a, b in zip(mus, mus[1:]))
    assert gdp_mu_from_epsilon(math.inf, 1e-5) == math.inf


def test_dp_tpr_bound_formula_and_order():
    f = np.linspace(0, 1, 101)
    eps, delta = 1.3, 1e-3
    ref = np.minimum.reduce([np.ones_like(f), math.exp(eps) * f + delta, 1 - math.exp(-eps) * (1 - delta - f)])
    np.testing.assert_allclose(dp_tpr_bound(f, eps, delta), ref)
    np.testing.assert_allclose(dp_tpr_bound(f, 0.0, 0.0), f, atol=1e-15)
    # the GDP curve matched at (eps, delta) lies inside the (eps, delta) region
    mu = gdp_mu_from_epsilon(eps, delta)
    assert np.all(gdp_tradeoff_tpr(f, mu) <= dp_tpr_bound(f, eps, delta) + 1e-12)
    np.testing.assert_array_equal(dp_tpr_bound(np.array([0.0, 0.2]), math.inf, 1e-5), [1e-5, 1.0])


def test_gdp_mu_estimate_inverts_the_curve():
    f = np.array([1e-4, 1e-2, 0.3])
    tpr = gdp_tradeoff_tpr(f, 2.0)
    np.testing.assert_allclose(gdp_mu_estimate(f, 1 - tpr), 2.0, rtol=1e-9)
    assert gdp_mu_estimate(0.0, 0.5) == math.inf
    assert gdp_mu_estimate(0.6, 0.6) == 0.0  # below the chance line: clipped


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: gdp_tradeoff_tpr([0.1, 1.5], 1.0), r"fpr: expected rates in \[0, 1\]"),
        (lambda: gdp_tradeoff_tpr([np.nan], 1.0), r"fpr: expected rates"),
        (lambda: gdp_tradeoff_tpr(0.1, -1.0), r"mu: expected a non-negative number"),
        (lambda: gdp_delta(-1.0, 1.0), r"epsilon: expected a non-negative number"),
        (lambda: gdp_mu_from_epsilon(1.0, 0.0), r"delta: expected a number in \(0, 1\)"),
        (lambda: gdp_mu_from_epsilon("a", 1e-5), r"epsilon: expected"),
        (lambda: dp_tpr_bound(0.1, 1.0, 2.0), r"delta: expected a number in \[0, 1\]"),
        (lambda: dp_tpr_bound(0.1, -1.0, 0.0), r"epsilon: expected"),
        (lambda: gdp_mu_estimate(0.1, -0.1), r"fnr: expected rates"),
    ],
)
def test_errors(call, match):
    with pytest.raises(InputError, match=match):
        call()


def _eps_delta_mechanism(rng: np.random.Generator, is_member: np.ndarray, eps: float, delta: float) -> np.ndarray:
    """An exactly (eps, delta)-DP release of each membership bit: with probability delta the bit itself (score
    +-10), otherwise randomised response at eps (score +-1)."""
    reveal = rng.random(is_member.size) < delta
    keep = rng.random(is_member.size) < np.exp(eps) / (1 + np.exp(eps))
    bit = np.where(keep, is_member, ~is_member)
    return np.where(reveal, np.where(is_member, 10.0, -10.0), np.where(bit, 1.0, -1.0)) + 1e-3 * rng.random(is_member.size)


def test_dp_check_at_the_claims_delta_does_not_contradict_an_exact_mechanism():
    """Issue 9: an exactly (1, 0.02)-DP mechanism used to get a bound of 2.31 (computed at delta 1e-5) and be
    called impossible. At the claim's own delta and relation the claim stands (here in the game's relation)."""
    from miaudit.metrics import dp_check, epsilon_lower_bound

    rng = np.random.default_rng(0)
    m = np.zeros(20000, bool)
    m[:10000] = True
    s = _eps_delta_mechanism(rng, m, 1.0, 0.02)
    assert epsilon_lower_bound(m, s, delta=1e-5).value > 1.5  # the old comparison's figure
    chk = dp_check(m, {"rr": s}, epsilon=1.0, delta=0.02, neighbouring="substitution")
    assert chk.game_delta == 0.02 and chk.bound.delta == 0.02
    assert not chk.contradicted and chk.bound.value <= 1.0
    assert chk.to_dict()["game_relation"] == "substitution"


def test_dp_check_validity_over_repetitions():
    """50 exact (1, 0.02)-DP releases: the claim is contradicted in at most a few (level 5%)."""
    from miaudit.metrics import dp_check

    rng = np.random.default_rng(1)
    m = np.zeros(4000, bool)
    m[:2000] = True
    hits = sum(
        dp_check(m, {"rr": _eps_delta_mechanism(rng, m, 1.0, 0.02)}, epsilon=1.0, delta=0.02,
                 neighbouring="substitution", seed=r).contradicted
        for r in range(50)
    )
    assert hits <= 6


def test_dp_check_catches_a_false_claim_and_converts_add_remove_claims():
    from miaudit.metrics import dp_check, substitution_guarantee

    rng = np.random.default_rng(2)
    m = np.zeros(20000, bool)
    m[:10000] = True
    s = _eps_delta_mechanism(rng, m, 4.0, 1e-6)  # really about eps = 4
    assert dp_check(m, {"a": s}, epsilon=0.5, delta=1e-6, neighbouring="substitution").contradicted
    eps2, d2 = substitution_guarantee(1.0, 1e-5)
    assert eps2 == 2.0 and d2 == pytest.approx((1 + np.e) * 1e-5)
    chk = dp_check(m, {"a": s}, epsilon=1.0, delta=1e-5)  # add/remove claim: the game's epsilon is 2
    assert chk.neighbouring == "add_remove" and chk.game_epsilon == 2.0 and chk.contradicted
    with pytest.raises(InputError, match="neighbouring: expected one of add_remove, substitution"):
        dp_check(m, {"a": s}, epsilon=1.0, delta=1e-5, neighbouring="swap")
