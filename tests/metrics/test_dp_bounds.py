"""The DP audit bounds: against brute-force references, and valid on mechanisms whose epsilon is known.

Validity: on exactly eps-DP randomised response and on the Gaussian mechanism (mu-GDP, whose epsilon at
delta is known in closed form), each bound may exceed the true epsilon in at most 5% of repetitions in
expectation (they hold at 95% each); the tests fail when the count is beyond what Binomial(reps, 0.05)
allows (99.9% quantile). Fast variant: 50 repetitions; slow: 300. The counts measured are in
benchmarks/results/dp_audit.md.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from miaudit._errors import InputError
from miaudit.metrics import gdp_delta
from miaudit.metrics.dp_bounds import (
    cp_bonferroni_bound,
    cp_ceiling,
    cp_threshold_bound,
    epsilon_from_rates,
    gdp_bound,
    gdp_epsilon,
    one_run_bound,
    one_run_ceiling,
    one_run_from_scores,
    one_run_tail,
)

DELTA = 1e-5


def _tail_brute(eps: float, delta: float, m: int, r: int, v: int) -> float:
    p = math.exp(eps) / (1 + math.exp(eps))
    beta = sum(math.comb(r, j) * p**j * (1 - p) ** (r - j) for j in range(v, r + 1))
    best = 0.0
    for i in range(1, v + 1):
        mass = sum(math.comb(r, j) * p**j * (1 - p) ** (r - j) for j in range(max(0, v - i), v))
        best = max(best, mass / i)
    return min(1.0, beta + 2 * m * delta * best)


@pytest.mark.parametrize("eps,delta,m,r,v", [(0.5, 0.0, 50, 30, 20), (1.0, 1e-3, 60, 40, 35), (2.0, 1e-5, 100, 20, 19),
                                             (0.0, 1e-2, 10, 10, 6)])
def test_one_run_tail_matches_brute_force(eps, delta, m, r, v):
    assert one_run_tail(eps, delta, m, r, v) == pytest.approx(_tail_brute(eps, delta, m, r, v), rel=1e-9, abs=1e-12)


def test_one_run_bound_is_the_root_of_the_tail():
    b = one_run_bound(1000, 100, 90, delta=DELTA, confidence=0.95)
    assert one_run_tail(b.epsilon_lower, DELTA, 1000, 100, 90) <= 0.05 + 1e-9
    assert one_run_tail(b.epsilon_lower + 1e-3, DELTA, 1000, 100, 90) > 0.05
    assert b.ceiling >= b.epsilon_lower
    assert b.ceiling == pytest.approx(one_run_ceiling(1000, 100, delta=DELTA))
    assert one_run_bound(1000, 100, 50, delta=DELTA).epsilon_lower == 0.0  # chance accuracy certifies nothing


def test_cp_bound_matches_scipy_and_ceiling():
    s_in = np.r_[np.ones(90), np.zeros(10)]
    s_out = np.r_[np.ones(5), np.zeros(95)]
    b = cp_threshold_bound(s_in, s_out, threshold=0.5, delta=DELTA, confidence=0.9)
    fpr_hi = stats.beta.ppf(0.95, 6, 95)
    fnr_hi = stats.beta.ppf(0.95, 11, 90)
    want = max(math.log((1 - DELTA - fpr_hi) / fnr_hi), math.log((1 - DELTA - fnr_hi) / fpr_hi))
    assert b.epsilon_lower == pytest.approx(want, rel=1e-9)
    perfect = cp_threshold_bound(np.ones(100), np.zeros(100), threshold=0.5, delta=DELTA, confidence=0.9)
    assert perfect.epsilon_lower == pytest.approx(perfect.ceiling) == pytest.approx(cp_ceiling(100, 100, delta=DELTA,
                                                                                             confidence=0.9))
    # the field notes' rule of thumb: with n runs per side the ceiling is about ln(n / 3) at 95%
    assert abs(cp_ceiling(500, 500, delta=DELTA) - math.log(500 / 3)) < 0.3


def test_bonferroni_pays_for_many_thresholds():
    rng = np.random.default_rng(1)
    s_in, s_out = rng.normal(2, 1, 400), rng.normal(0, 1, 400)
    one = cp_threshold_bound(s_in, s_out, threshold=1.0)
    many = cp_bonferroni_bound(s_in, s_out, thresholds=[1.0] * 10)
    assert many.epsilon_lower < one.epsilon_lower and many.ceiling < one.ceiling


def test_epsilon_from_rates_edges():
    assert epsilon_from_rates(0.5, 0.5, 0.0) == 0.0
    assert epsilon_from_rates(0.0, 0.5, 0.0) == math.inf
    assert epsilon_from_rates(1.0, 1.0, 0.0) == 0.0


def test_gdp_epsilon_inverts_gdp_delta():
    for mu in (0.3, 1.0, 2.5):
        e = gdp_epsilon(mu, DELTA)
        assert gdp_delta(e, mu) == pytest.approx(DELTA, rel=1e-6)
    assert gdp_epsilon(0.0, DELTA) == 0.0


@pytest.mark.parametrize("call,match", [
    (lambda: one_run_bound(10, 20, 5), "guesses <= canaries"),
    (lambda: one_run_bound(10, 5, -1), "correct guesses"),
    (lambda: cp_threshold_bound([], [1.0], threshold=0.0), "scores_in"),
    (lambda: cp_threshold_bound([1.0], [np.nan], threshold=0.0), "scores_out"),
    (lambda: cp_threshold_bound([1.0], [0.0], threshold=math.nan), "threshold"),
    (lambda: cp_threshold_bound([1.0], [0.0], threshold=0.5, delta=1.5), "delta"),
    (lambda: cp_bonferroni_bound([1.0], [0.0], thresholds=[]), "thresholds"),
    (lambda: one_run_from_scores([1.0, 2.0], [True], k_pos=1), "included"),
    (lambda: one_run_from_scores([1.0, 2.0], [True, False], k_pos=3), "k_pos"),
])
def test_bad_inputs_are_input_errors(call, match):
    with pytest.raises(InputError, match=match):
        call()


# -- validity on mechanisms with a known epsilon ----------------------------------------------------------


def _rr_runs(rng, eps, n):
    b = rng.random(n) < 0.5
    keep = rng.random(n) < math.exp(eps) / (1 + math.exp(eps))
    return np.where(keep, b, ~b).astype(float), b


def _gauss_runs(rng, mu, n):
    b = rng.random(n) < 0.5
    return rng.normal(0, 1, n) + mu * b, b


def _exceedances(reps: int, seed: int) -> dict[str, int]:
    """How often each bound exceeds the true epsilon over ``reps`` repetitions of each mechanism."""
    rng = np.random.default_rng(seed)
    eps_rr = 2.0
    mu = 1.5
    eps_gauss = gdp_epsilon(mu, DELTA)  # the Gaussian mechanism is exactly mu-GDP
    out = {"cp_rr": 0, "cp_gauss": 0, "bonf_gauss": 0, "one_run_rr": 0, "one_run_gauss": 0, "gdp_gauss": 0}
    for _ in range(reps):
        s, b = _rr_runs(rng, eps_rr, 1000)
        out["cp_rr"] += cp_threshold_bound(s[b], s[~b], threshold=0.5, delta=DELTA).epsilon_lower > eps_rr
        s, b = _gauss_runs(rng, mu, 1000)
        out["cp_gauss"] += cp_threshold_bound(s[b], s[~b], threshold=2.0, delta=DELTA).epsilon_lower > eps_gauss
        out["bonf_gauss"] += cp_bonferroni_bound(s[b], s[~b], thresholds=[0.75, 1.5, 2.0, 2.5],
                                                 delta=DELTA).epsilon_lower > eps_gauss
        out["gdp_gauss"] += gdp_bound(s[b], s[~b], threshold=mu / 2, delta=DELTA).epsilon_lower > eps_gauss
        s, b = _rr_runs(rng, eps_rr, 1000)  # one run: 1000 canaries, each randomised independently
        out["one_run_rr"] += one_run_from_scores(s + 1e-9 * rng.random(1000), b, k_pos=100, k_neg=100,
                                                 delta=DELTA).epsilon_lower > eps_rr
        s, b = _gauss_runs(rng, mu, 1000)
        out["one_run_gauss"] += one_run_from_scores(s, b, k_pos=50, k_neg=50, delta=DELTA).epsilon_lower > eps_gauss
    return out


def _check_validity(reps: int, seed: int) -> None:
    """Each bound holds at 95%, so its exceedance count is at most Binomial(reps, 0.05); randomised response is
    the mechanism on which the one-run and Clopper-Pearson tests are (nearly) exact, so counts near 5% are
    expected there. A count above the 99.9% quantile of Binomial(reps, 0.05) means a bound is invalid."""
    out = _exceedances(reps, seed)
    limit = stats.binom.ppf(0.999, reps, 0.05)
    assert all(v <= limit for v in out.values()), out


def test_bounds_are_valid_fast():
    _check_validity(50, seed=0)


@pytest.mark.slow
def test_bounds_are_valid_slow():
    _check_validity(300, seed=1)


def test_bounds_are_informative_on_a_leaky_mechanism():
    """Not just valid: on the Gaussian mechanism with mu = 1.5 (eps 6.0 at 1e-5) they certify something."""
    rng = np.random.default_rng(3)
    s, b = _gauss_runs(rng, 1.5, 1000)
    assert cp_threshold_bound(s[b], s[~b], threshold=2.0).epsilon_lower > 1.0
    assert gdp_bound(s[b], s[~b], threshold=0.75).epsilon_lower > 3.0
    s, b = _gauss_runs(rng, 1.5, 1000)
    assert one_run_from_scores(s, b, k_pos=50, k_neg=50).epsilon_lower > 1.0


def test_gdp_bound_needs_its_assumption():
    """Randomised response is eps-DP but not GDP: its single corner point extrapolated along a Gaussian curve
    to delta = 1e-5 overstates epsilon, which is why the GDP bound is labelled and never decides a claim."""
    rng = np.random.default_rng(4)
    eps = 2.0
    over = 0
    for _ in range(20):
        s, b = _rr_runs(rng, eps, 1000)
        g = gdp_bound(s[b], s[~b], threshold=0.5, delta=DELTA)
        over += g.epsilon_lower > eps
        assert g.assumption is not None and "GDP" in g.assumption
    assert over == 20
