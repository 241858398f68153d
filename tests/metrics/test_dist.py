"""The scipy.special forms of the Beta quantile and binomial tails give scipy.stats' values bit for bit,
and so do the reference design's chi-square test and the report's average ranks (none imports scipy.stats)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from miaudit.audit.design import _independence_p
from miaudit.metrics._dist import beta_ppf, binom_cdf, binom_ppf, binom_sf
from miaudit.metrics._intervals import cp_lower, cp_upper, cp_upper_one
from miaudit.metrics._roc import _order_stat_ranks
from miaudit.report._plots import score_percentiles

ALPHAS = (0.05, 0.025, 0.0125, 0.005, 0.025 / 3, 1e-4)


def _counts() -> list[tuple[int, int]]:
    rng = np.random.default_rng(0)
    out = [(k, n) for n in (1, 2, 3, 10, 57) for k in range(n + 1)]
    for n in rng.integers(100, 200_000, 60):
        out += [(int(k), int(n)) for k in {0, 1, 2, int(n) - 1, int(n), *rng.integers(0, n + 1, 8).tolist()}]
    return out


def test_beta_quantiles_equal_scipy_stats() -> None:
    for k, n in _counts():
        for a in ALPHAS:
            lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
            hi = 1.0 if k >= n else float(stats.beta.ppf(1.0 - a, k + 1, n - k))
            assert (cp_lower(k, n, a), cp_upper_one(k, n, a)) == (lo, hi), (k, n, a)
            if k < n:
                assert beta_ppf(1.0 - a, k + 1, n - k) == hi
    k, n = (np.array(v, dtype=np.float64) for v in zip(*_counts()))
    full = k >= n
    ref = np.where(full, 1.0, stats.beta.ppf(0.975, k + 1.0, np.where(full, 1.0, n - k)))
    assert np.array_equal(cp_upper(k, n, 0.025), ref)


@pytest.mark.parametrize("p", [1e-5, 1e-3, 0.01, 0.1, 0.5])
def test_binomial_tails_and_ranks_equal_scipy_stats(p: float) -> None:
    for n in (1, 2, 5, 99, 1000, 7349, 123_457):
        for k in sorted({-2, -1, 0, 1, n // 3, n - 1, n, n + 1}):
            assert binom_cdf(k, n, p) == stats.binom.cdf(k, n, p), (k, n, p)
            assert binom_sf(k, n, p) == stats.binom.sf(k, n, p), (k, n, p)
        for q in ALPHAS:
            assert binom_ppf(q, n, p) == stats.binom.ppf(q, n, p)
            ranks = _order_stat_ranks(n, p, q)
            a = int(stats.binom.ppf(1.0 - q, n, p)) + 1  # the definition, with scipy.stats
            while a > 0 and stats.binom.sf(a - 2, n, p) <= q:
                a -= 1
            while stats.binom.sf(a - 1, n, p) > q:
                a += 1
            b = int(stats.binom.ppf(q, n, p)) + 1
            while b > 0 and stats.binom.cdf(b - 1, n, p) > q:
                b -= 1
            while stats.binom.cdf(b, n, p) <= q:
                b += 1
            assert ranks == (a, b), (n, p, q)


def test_reference_design_chi_square_equals_scipy_stats() -> None:
    rng = np.random.default_rng(1)
    for _ in range(400):
        table = rng.poisson(rng.choice([1, 5, 50, 5000]), (int(rng.integers(2, 14)), 2))
        table = table[table.sum(axis=1) > 0]
        if table.shape[0] < 2 or (table.sum(axis=0) == 0).any():
            continue
        assert _independence_p(table) == float(stats.chi2_contingency(table, correction=False)[1]), table.tolist()


def test_average_ranks_equal_scipy_rankdata() -> None:
    rng = np.random.default_rng(2)
    for n in (0, 1, 2, 5, 40, 333):
        for x in (rng.normal(size=n), rng.integers(0, 4, n).astype(float), np.zeros(n)):
            ref = 100.0 * stats.rankdata(x, method="average") / max(n, 1)
            assert np.array_equal(score_percentiles(x), ref)
    x = np.array([1.0, np.nan, 0.0])
    assert np.isnan(score_percentiles(x)).all() and np.isnan(stats.rankdata(x)).all()
