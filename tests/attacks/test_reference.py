"""Reference-model attacks (LiRA, RMIA, BASE, Attack-R, calibrated loss) on synthetic worlds with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats
from sklearn.metrics import roc_auc_score

from miaudit import signals
from miaudit._errors import InputError
from miaudit.attacks import _reference_stats as rs
from miaudit.attacks import attack_class, available_attacks, get_attack
from miaudit.data import SignalBundle

NAMES = ["lira_online", "lira_offline", "rmia", "rmia_offline", "base", "base_offline", "attack_r", "calibrated_loss"]


# --------------------------------------------------------------------------------------------
# synthetic worlds
# --------------------------------------------------------------------------------------------
def logits_of(phi: np.ndarray) -> np.ndarray:
    """C = 2 logits ``[0, phi]``: with label 1 their scaled logit is exactly ``phi``."""
    return np.stack([np.zeros_like(phi), phi], axis=-1)


def balanced(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    ranks = rng.random((k, n)).argsort(axis=0).argsort(axis=0)
    return ranks < k // 2


def gaussian_world(
    n: int,
    k: int,
    *,
    seed: int = 0,
    leak: float = 1.0,
    n_queries: int = 1,
    spread: float = 0.5,
    ref_is_member: np.ndarray | None = None,
    population: int = 0,
) -> tuple[SignalBundle, np.ndarray, np.ndarray]:
    """Per-example Gaussian phi world: heterogeneous means, noise and (``leak`` x) member shifts.

    Returns the bundle, the target's membership and the optimal (true likelihood-ratio) score.
    """
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 2.0, n)
    sigma = np.exp(rng.normal(0.0, spread, n))
    delta = leak * sigma * rng.gamma(2.0, 0.8, n)
    is_member = rng.random(n) < 0.5
    if ref_is_member is None:
        ref_is_member = balanced(n, k, rng)

    def draw(inn: np.ndarray) -> np.ndarray:
        shape = inn.shape + (n_queries,)
        return (mu + inn * delta)[..., None] + sigma[:, None] * rng.standard_normal(shape)

    phi_t = draw(is_member)
    phi_r = draw(ref_is_member)
    optimal = (((phi_t - mu[:, None]) ** 2 - (phi_t - (mu + delta)[:, None]) ** 2) / (2 * sigma[:, None] ** 2)).sum(1)
    extra = {}
    if population:
        zmu = rng.normal(0.0, 2.0, population)
        zsig = np.exp(rng.normal(0.0, spread, population))
        zt = zmu[:, None] + zsig[:, None] * rng.standard_normal((population, n_queries))
        zr = zmu[None, :, None] + zsig[None, :, None] * rng.standard_normal((ref_is_member.shape[0], population, n_queries))
        extra = dict(
            population_logits=logits_of(zt),
            population_labels=np.ones(population, dtype=np.int64),
            ref_population_logits=logits_of(zr).astype(np.float32),
        )
    bundle = SignalBundle(
        labels=np.ones(n, dtype=np.int64),
        target_logits=logits_of(phi_t),
        is_member=is_member,
        ref_logits=logits_of(phi_r).astype(np.float32),
        ref_is_member=ref_is_member,
        **extra,
    )
    return bundle, is_member, optimal


def auc(is_member: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(is_member, scores))


def tpr_at(is_member: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    neg = np.sort(scores[~is_member])[::-1]
    k = int(np.floor(fpr * neg.size))
    return float((scores[is_member] > neg[k]).mean())


@pytest.fixture(scope="module")
def world16() -> tuple[SignalBundle, np.ndarray, np.ndarray]:
    return gaussian_world(3000, 16, seed=1)


# --------------------------------------------------------------------------------------------
# numerical building blocks
# --------------------------------------------------------------------------------------------
def test_logits_of_gives_phi_exactly() -> None:
    phi = np.random.default_rng(0).normal(0, 5, (4, 3))
    got = signals.scaled_logit(logits_of(phi), np.ones((4, 1), dtype=int))
    np.testing.assert_array_equal(got, phi)


@pytest.mark.parametrize("n_classes", [2, 3, 10, 40])
def test_ref_scaled_logit_matches_signals(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    z = (rng.standard_normal((5, 9, 2, n_classes)) * 15).astype(np.float32)
    z[0, 0, 0, :] = -np.inf
    z[0, 0, 0, 0] = 1.0
    z[1, 2, 1, 1] = -np.inf
    y = rng.integers(0, n_classes, 9)
    y[0] = 1
    got = rs.ref_scaled_logit(z, y)
    want = np.clip(signals.scaled_logit(z, y[None, :, None]), -rs.PHI_MAX, rs.PHI_MAX)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.isfinite(got).all()
    want_loss = signals.loss(z, y[None, :, None])
    finite = np.isfinite(want_loss)  # -inf at the label: signals says inf, we clip phi (finite, huge)
    np.testing.assert_allclose(rs.loss_from_phi(got)[finite], want_loss[finite], rtol=1e-10)
    assert (rs.loss_from_phi(got)[~finite] >= rs.PHI_MAX).all()


def test_ref_scaled_logit_errors() -> None:
    with pytest.raises(InputError, match="C >= 2"):
        rs.ref_scaled_logit(np.zeros((3, 1, 1)), np.zeros(3, dtype=int))
    z = np.zeros((3, 1, 3))
    z[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        rs.ref_scaled_logit(z, np.zeros(3, dtype=int))


def test_group_moments_against_loops() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(7, 11, 2))
    is_member = rng.random((7, 11)) < 0.4
    is_member[:, 0] = True
    is_member[:, 1] = False
    n_in, n_out, m_in, m_out, ss_in, ss_out = rs.group_moments(v, is_member)
    for i in range(11):
        for grp, n, m, ss in ((is_member[:, i], n_in, m_in, ss_in), (~is_member[:, i], n_out, m_out, ss_out)):
            assert n[i] == grp.sum()
            if grp.any():
                np.testing.assert_allclose(m[i], v[grp, i].mean(0), atol=1e-14)
                np.testing.assert_allclose(ss[i], ((v[grp, i] - v[grp, i].mean(0)) ** 2).sum(0), atol=1e-12)
            else:
                assert (m[i] == 0).all() and (ss[i] == 0).all()


def test_stream_moments_equals_two_pass_moments() -> None:
    rng = np.random.default_rng(1)
    v = 50.0 + rng.normal(size=(9, 13, 3))  # far from zero: the shifted sums must not cancel
    is_member = rng.random((9, 13)) < 0.5
    is_member[:, 0] = True
    is_member[:, 1] = False
    got = rs.stream_moments(iter(v), is_member)
    want = rs.group_moments(v, is_member)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10)


def test_log_mean_prob_underflow_falls_back_to_log_domain() -> None:
    rng = np.random.default_rng(2)
    phi = rng.normal(size=(5, 8, 2))
    phi[:, :3] -= 900.0  # p_y = expit(phi) underflows to 0 for these rows
    is_member = rng.random((5, 8)) < 0.5
    is_member[0] = True
    got_in, got_out = rs.log_mean_prob(iter(phi), [is_member, ~is_member], fallback=lambda rows: phi[:, rows])
    logp = -np.logaddexp(0.0, -phi)
    for i in range(8):
        for got, grp in ((got_in, is_member[:, i]), (got_out, ~is_member[:, i])):
            if grp.any():
                want = special.logsumexp(logp[grp, i]) - np.log(grp.sum() * 2)
                assert got[i] == pytest.approx(want, rel=1e-10)
            else:
                assert got[i] == -np.inf
    assert np.isfinite(got_in[:3]).all() and (got_in[:3] < -800).all()


def test_rmia_with_saturated_references_is_finite() -> None:
    bundle, is_member, _ = gaussian_world(400, 4, seed=22)
    ref = bundle.ref_logits.copy()
    ref[:, :20, :, 1] -= 2000.0  # every reference gives p_y ~ exp(-2000) on the first 20 examples
    b = SignalBundle(labels=bundle.labels, target_logits=bundle.target_logits, ref_logits=ref, ref_is_member=bundle.ref_is_member)
    for name in ("rmia", "rmia_offline"):
        att = get_attack(name)
        scores = att.fit_score(b)
        assert np.isfinite(scores).all()
        assert (att.exposure_["log_pr_x"][:20] < -1000).all() or name == "rmia_offline"


def test_empirical_bayes_prior_recovers_known_parameters() -> None:
    rng = np.random.default_rng(0)
    n, d0, s0sq = 40_000, 8.0, 2.0
    df = rng.integers(2, 20, n)
    sigma2 = s0sq * d0 / rng.chisquare(d0, n)
    s2 = sigma2 * rng.chisquare(df) / df
    d0_hat, s0_hat = rs.fit_scaled_inv_chi2(s2, df)
    assert d0_hat == pytest.approx(d0, rel=0.15)
    assert s0_hat == pytest.approx(s0sq, rel=0.05)
    # no heterogeneity: an infinite (or very large) prior df, i.e. the global variance
    s2_same = 3.0 * rng.chisquare(df) / df
    d0_same, s0_same = rs.fit_scaled_inv_chi2(s2_same, df)
    assert d0_same > 100
    assert s0_same == pytest.approx(3.0, rel=0.03)
    assert rs.fit_scaled_inv_chi2(np.zeros(3), np.zeros(3)) == (0.0, 1.0)


def test_trigamma_inverse() -> None:
    for y in (0.01, 0.3, 1.0, 4.0, 50.0, 1e4):
        assert rs.trigamma_inverse(float(special.polygamma(1, y))) == pytest.approx(y, rel=1e-6)


def test_moderate_limits() -> None:
    s2 = np.array([1.0, 4.0, 9.0])
    df = np.array([0, 3, 6])
    np.testing.assert_allclose(rs.moderate(s2, df, prior_df=np.inf, prior_var=2.0), [2.0, 2.0, 2.0])
    np.testing.assert_allclose(rs.moderate(s2, df, prior_df=0.0, prior_var=2.0), [2.0, 4.0, 9.0])
    np.testing.assert_allclose(rs.moderate(s2, df, prior_df=3.0, prior_var=2.0), [2.0, 3.0, (6 + 54) / 9])


def test_continuous_cdf_matches_step_count_and_is_strictly_increasing() -> None:
    rng = np.random.default_rng(0)
    z = np.sort(np.round(rng.normal(size=50), 1))  # with ties
    t = np.sort(rng.normal(scale=3, size=2000))
    f = rs.continuous_cdf(z, t)
    assert np.all(np.diff(f) > 0) or np.all(np.diff(f)[np.diff(t) > 0] > 0)
    for u in np.unique(z):
        assert rs.continuous_cdf(z, np.array([u]))[0] == pytest.approx((z <= u).mean(), abs=1e-12)
    inside = (t >= z[0]) & (t <= z[-1])
    step = (z[None, :] <= t[inside, None]).mean(1)
    assert np.all(np.abs(f[inside] - step) <= np.max(np.unique(z, return_counts=True)[1]) / 50 + 1e-12)


def test_logmeanexp_masked() -> None:
    a = np.log(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    w = np.array([[True, False], [True, False], [False, False]])
    got = rs.logmeanexp(a, axis=0, where=w)
    assert got[0] == pytest.approx(np.log(2.0))
    assert got[1] == -np.inf
    assert rs.logmeanexp(a, axis=0)[1] == pytest.approx(np.log(4.0))


def test_tuning_objectives_against_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.5
    s = rng.normal(size=500) + y
    assert rs.auc_from_scores(y, s) == pytest.approx(roc_auc_score(y, s))
    assert tpr_at(y, s, 0.05) == pytest.approx(rs.tpr_at_fpr_fast(y, s, 0.05))
    assert np.isnan(rs.auc_from_scores(np.ones(3, bool), np.arange(3.0)))


# --------------------------------------------------------------------------------------------
# registry and contract
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_registered_and_requires_reference(name: str) -> None:
    assert name in available_attacks()
    assert attack_class(name).requires == frozenset({"reference"})
    assert attack_class(name).description


@pytest.mark.parametrize("name", NAMES)
def test_scores_finite_float64_and_exposure(name: str, world16) -> None:
    bundle, is_member, _ = world16
    att = get_attack(name)
    scores = att.fit_score(bundle)
    assert scores.shape == (bundle.n_examples,) and scores.dtype == np.float64
    assert np.isfinite(scores).all()
    assert auc(is_member, scores) > 0.7
    for key in ("mean_in", "mean_out", "n_in", "n_out"):
        assert att.exposure_[key].shape == (bundle.n_examples,)
    np.testing.assert_array_equal(att.exposure_["n_in"], bundle.ref_is_member.sum(0))


# --------------------------------------------------------------------------------------------
# (a) LiRA near the optimum, (b) null world
# --------------------------------------------------------------------------------------------
def test_lira_online_close_to_optimum_with_many_references() -> None:
    bundle, is_member, optimal = gaussian_world(4000, 64, seed=2)
    opt = auc(is_member, optimal)
    lira = auc(is_member, get_attack("lira_online").fit_score(bundle))
    population = auc(is_member, bundle.target_logits[:, 0, 1])
    assert lira == pytest.approx(opt, abs=0.015)
    assert lira > population + 0.1


def test_shrunk_variance_beats_paper_estimators_at_low_fpr() -> None:
    bundle, is_member, _ = gaussian_world(20_000, 16, seed=3, spread=0.3)
    shrunk = tpr_at(is_member, get_attack("lira_online").fit_score(bundle), 0.01)
    fixed = tpr_at(is_member, get_attack("lira_online", variance="global", predictive=False).fit_score(bundle), 0.01)
    per_ex = tpr_at(
        is_member, get_attack("lira_online", variance="per_example", predictive=False).fit_score(bundle), 0.01
    )
    assert shrunk > fixed and shrunk > per_ex


def test_shrinkage_adapts_to_heterogeneity() -> None:
    homo, _, _ = gaussian_world(3000, 16, seed=4, spread=0.0)
    hetero, _, _ = gaussian_world(3000, 16, seed=4, spread=0.8)
    d_homo = get_attack("lira_online").fit(homo).prior_df_[0]
    d_het = get_attack("lira_online").fit(hetero).prior_df_[0]
    assert d_homo > 50 and d_het < 10


@pytest.mark.parametrize("name", NAMES)
def test_null_world_is_chance(name: str) -> None:
    bundle, _, _ = gaussian_world(4000, 8, seed=5, leak=0.0)
    is_member = bundle.is_member
    assert auc(is_member, get_attack(name).fit_score(bundle)) == pytest.approx(0.5, abs=0.035)


# --------------------------------------------------------------------------------------------
# brute-force references for the formulas
# --------------------------------------------------------------------------------------------
def test_lira_formulas_against_loops() -> None:
    bundle, _, _ = gaussian_world(40, 6, seed=6, n_queries=2)
    phi_r = bundle.ref_logits[..., 1].astype(np.float64)
    phi_t = bundle.target_logits[..., 1]
    ref_is_member = bundle.ref_is_member
    ind = {"query_model": "independent"}  # the paper's per-query average; correlated: next test
    per_ex = get_attack("lira_online", variance="per_example", predictive=False, **ind).fit_score(bundle)
    glob = get_attack("lira_online", variance="global", predictive=False, **ind).fit_score(bundle)
    off = get_attack("lira_offline", variance="global", predictive=False, **ind).fit_score(bundle)
    ss_in = sum(((phi_r[ref_is_member[:, i], i] - phi_r[ref_is_member[:, i], i].mean(0)) ** 2).sum(0) for i in range(40))
    ss_out = sum(((phi_r[~ref_is_member[:, i], i] - phi_r[~ref_is_member[:, i], i].mean(0)) ** 2).sum(0) for i in range(40))
    v_in, v_out = ss_in / (40 * 2), ss_out / (40 * 2)  # 3 IN and 3 OUT per example: 2 df each
    for i in range(40):
        xi, xo = phi_r[ref_is_member[:, i], i], phi_r[~ref_is_member[:, i], i]
        m_in, m_out = xi.mean(0), xo.mean(0)
        lp_in = stats.norm.logpdf(phi_t[i], m_in, xi.std(0, ddof=1))
        want = np.mean(lp_in - stats.norm.logpdf(phi_t[i], m_out, xo.std(0, ddof=1)))
        assert per_ex[i] == pytest.approx(want, rel=1e-9, abs=1e-9)
        lp_in = stats.norm.logpdf(phi_t[i], m_in, np.sqrt(v_in))
        want = np.mean(lp_in - stats.norm.logpdf(phi_t[i], m_out, np.sqrt(v_out)))
        assert glob[i] == pytest.approx(want, rel=1e-9, abs=1e-9)
        assert off[i] == pytest.approx(np.mean((phi_t[i] - m_out) / np.sqrt(v_out)), rel=1e-9)


def test_lira_correlated_queries_against_multivariate_normal() -> None:
    bundle, _, _ = gaussian_world(60, 8, seed=9, n_queries=3)
    phi_t = bundle.target_logits[..., 1]
    for offline in (False, True):
        att = get_attack("lira_offline" if offline else "lira_online").fit(bundle)
        corr = att.query_corr_
        assert corr.shape == (3, 3) and np.allclose(corr, corr.T) and np.allclose(np.diag(corr), 1.0)
        assert np.all(np.linalg.eigvalsh(corr) > 0)
        score = att.score(bundle)
        for i in range(60):
            d_out = np.sqrt(att.var_out_[i])
            if offline:
                z = (phi_t[i] - att.mu_out_[i]) / d_out
                w = np.linalg.solve(corr, np.ones(3))
                assert score[i] == pytest.approx(z @ w / np.sqrt(w.sum()) / np.sqrt(3), rel=1e-9)
                continue
            d_in = np.sqrt(att.var_in_[i])
            lp_in = stats.multivariate_normal.logpdf(phi_t[i], att.mu_in_[i], corr * np.outer(d_in, d_in))
            lp_out = stats.multivariate_normal.logpdf(phi_t[i], att.mu_out_[i], corr * np.outer(d_out, d_out))
            assert score[i] == pytest.approx((lp_in - lp_out) / 3, rel=1e-8, abs=1e-9)
    one, _, _ = gaussian_world(60, 8, seed=9, n_queries=1)
    a = get_attack("lira_online").fit_score(one)
    b = get_attack("lira_online", query_model="independent").fit_score(one)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="query_model must be one of") as err:
        get_attack("lira_online", query_model="diagonal").fit(one)
    assert type(err.value) is InputError  # bad maths parameters are input errors, not config errors


def test_rmia_against_brute_force_pairwise_count() -> None:
    bundle, _, _ = gaussian_world(300, 6, seed=7, n_queries=2, population=40)
    p_t = special.expit(bundle.target_logits[..., 1]).mean(1)
    p_r = special.expit(bundle.ref_logits[..., 1].astype(np.float64))  # (K, N, A)
    ref_is_member = bundle.ref_is_member
    m_in = np.array([p_r[ref_is_member[:, i], i].mean() for i in range(300)])
    m_out = np.array([p_r[~ref_is_member[:, i], i].mean() for i in range(300)])
    r_x = p_t / (0.5 * (m_in + m_out))
    pz_t = special.expit(bundle.population_logits[..., 1]).mean(1)
    pz = special.expit(bundle.ref_population_logits[..., 1].astype(np.float64)).mean((0, 2))
    r_z = pz_t / pz
    for gamma in (1.0, 2.0):
        count = (r_x[:, None] / r_z[None, :] >= gamma).mean(1)
        score = get_attack("rmia", gamma=gamma).fit_score(bundle)
        inside = (np.log(r_x / gamma) >= np.log(r_z).min()) & (np.log(r_x / gamma) <= np.log(r_z).max())
        assert np.all(np.abs(score[inside] - count[inside]) <= 1 / 40 + 1e-9)
        assert np.all(score[~inside & (count == 1)] > 1) and np.all(score[~inside & (count == 0)] < 1 / 40)
    # offline with a fixed a: Pr(x) = ((1 + a) P_out(x) + 1 - a) / 2
    att = get_attack("rmia_offline", a=0.3).fit(bundle)
    np.testing.assert_allclose(att.log_pr_x_, np.log((1.3 * m_out + 0.7) / 2), rtol=1e-12)


def test_attack_r_and_calibrated_loss_against_loops() -> None:
    bundle, _, _ = gaussian_world(50, 7, seed=8, n_queries=2)
    loss_t = signals.loss(bundle.target_logits, bundle.labels[:, None]).mean(1)
    loss_r = signals.loss(bundle.ref_logits, bundle.labels[None, :, None]).mean(2)
    ref_is_member = bundle.ref_is_member
    cal = get_attack("calibrated_loss").fit_score(bundle)
    ar = get_attack("attack_r")
    ar_s = ar.fit_score(bundle)
    for i in range(50):
        out = loss_r[~ref_is_member[:, i], i]
        assert cal[i] == pytest.approx(-(loss_t[i] - out.mean()), rel=1e-9, abs=1e-12)
        f = stats.norm.cdf((loss_t[i] - out) / ar.h_[i]).mean()
        assert ar_s[i] == pytest.approx(-np.log(f), rel=1e-7, abs=1e-12)
    # a tiny bandwidth gives the raw percentile of the target loss among the OUT losses
    raw = get_attack("attack_r", bandwidth=1e-9).fit_score(bundle)
    pct = np.array([(loss_r[~ref_is_member[:, i], i] < loss_t[i]).mean() for i in range(50)])
    np.testing.assert_allclose(np.exp(-raw)[pct > 0], pct[pct > 0], atol=1e-6)


# --------------------------------------------------------------------------------------------
# (c) RMIA continuity on a small population
# --------------------------------------------------------------------------------------------
def test_rmia_score_stays_continuous_on_small_population() -> None:
    bundle, is_member, _ = gaussian_world(2000, 8, seed=9, population=50)
    scores = get_attack("rmia").fit_score(bundle)
    assert np.unique(scores).size >= 0.99 * bundle.n_examples
    assert tpr_at(is_member, scores, 0.01) > 0.02
    # the step-function score of the paper takes at most |Z| + 1 values: ties, TPR@1%FPR collapses
    att = get_attack("rmia").fit(bundle)
    step = np.floor(scores * 50 + 1e-9).clip(0, 50)
    assert np.unique(step).size <= 51
    assert att.log_pr_z_ is not None and att.log_pr_z_.shape == (50,)


def test_rmia_without_population_uses_audit_examples() -> None:
    bundle, is_member, _ = gaussian_world(1000, 8, seed=10)
    scores = get_attack("rmia").fit_score(bundle)
    assert np.unique(scores).size == 1000
    assert scores.min() >= 0 and scores.max() <= 1 + 1e-12


# --------------------------------------------------------------------------------------------
# (d) offline tuning never sees the target
# --------------------------------------------------------------------------------------------
def test_rmia_offline_tuning_uses_only_references() -> None:
    bundle, is_member, _ = gaussian_world(3000, 8, seed=11)
    a1 = get_attack("rmia_offline").fit(bundle)
    rng = np.random.default_rng(0)
    other = SignalBundle(
        labels=bundle.labels,
        target_logits=rng.normal(size=bundle.target_logits.shape),
        is_member=~is_member,
        ref_logits=bundle.ref_logits,
        ref_is_member=bundle.ref_is_member,
    )
    a2 = get_attack("rmia_offline").fit(other)
    assert a1.a_ == a2.a_
    np.testing.assert_array_equal(a1.log_pr_x_, a2.log_pr_x_)
    np.testing.assert_array_equal(a1.tune_objective_, a2.tune_objective_)
    assert 0.0 <= a1.a_ <= 1.0
    # the objective was maximised on the paired model
    assert a1.tune_objective_.max() == a1.tune_objective_[int(round(a1.a_ * 20))]


def test_rmia_tune_fpr_objective_and_single_reference() -> None:
    bundle, is_member, _ = gaussian_world(2000, 8, seed=12)
    att = get_attack("rmia_offline", tune_fpr=0.05, n_paired=2).fit(bundle)
    assert 0.0 <= att.a_ <= 1.0
    one = SignalBundle(labels=bundle.labels, target_logits=bundle.target_logits,
                       ref_logits=bundle.ref_logits[:1], ref_is_member=bundle.ref_is_member[:1])
    single = get_attack("rmia_offline").fit(one)
    assert single.a_ == 0.5
    assert np.isfinite(single.score(one)).all()


# --------------------------------------------------------------------------------------------
# (e) chunking changes nothing
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_chunked_equals_unchunked(name: str) -> None:
    bundle, _, _ = gaussian_world(500, 6, seed=13, n_queries=2, population=30)
    whole = get_attack(name).fit_score(bundle)
    chunked = get_attack(name, chunk_size=37).fit_score(bundle)
    single = get_attack(name, chunk_size=1).fit_score(bundle)
    np.testing.assert_array_equal(whole, chunked)
    np.testing.assert_array_equal(whole, single)


# --------------------------------------------------------------------------------------------
# (f) few references, unbalanced and missing groups
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_few_references_leave_one_out(name: str) -> None:
    # K = 4 balanced models, one is the target, the other 3 are references: 1 or 2 IN per example
    rng = np.random.default_rng(14)
    full = balanced(4000, 4, rng)
    bundle, is_member, _ = gaussian_world(4000, 3, seed=14, ref_is_member=full[1:])
    scores = get_attack(name).fit_score(bundle)
    assert np.isfinite(scores).all()
    assert auc(is_member, scores) > 0.6


@pytest.mark.parametrize("name", NAMES)
def test_examples_without_in_or_out_references_get_finite_scores(name: str) -> None:
    rng = np.random.default_rng(15)
    ref_is_member = rng.random((4, 600)) < 0.5
    ref_is_member[:, :50] = False  # no IN reference
    ref_is_member[:, 50:100] = True  # no OUT reference
    bundle, is_member, _ = gaussian_world(600, 4, seed=15, ref_is_member=ref_is_member)
    scores = get_attack(name).fit_score(bundle)
    assert np.isfinite(scores).all()
    assert auc(is_member, scores) > 0.55


@pytest.mark.parametrize("name", NAMES)
def test_all_references_out(name: str) -> None:
    bundle, is_member, _ = gaussian_world(1000, 4, seed=16, ref_is_member=np.zeros((4, 1000), bool))
    att = get_attack(name)
    scores = att.fit_score(bundle)
    assert np.isfinite(scores).all()
    if name.startswith("rmia"):
        assert att.offline_
    if name != "lira_online":  # online has no IN data to learn the shift from
        assert auc(is_member, scores) > 0.6


# --------------------------------------------------------------------------------------------
# (g) augmented queries
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lira_online", "lira_offline", "rmia", "attack_r"])
def test_more_queries_help(name: str) -> None:
    bundle, is_member, _ = gaussian_world(4000, 8, seed=17, n_queries=4, leak=0.5)
    one = SignalBundle(labels=bundle.labels, target_logits=bundle.target_logits[:, :1],
                       ref_logits=bundle.ref_logits[:, :, :1], ref_is_member=bundle.ref_is_member)
    a4 = auc(is_member, get_attack(name).fit_score(bundle))
    a1 = auc(is_member, get_attack(name).fit_score(one))
    assert a4 > a1 + 0.02


def test_multi_class_logits_match_binary_phi() -> None:
    """The attacks depend on logits only through phi: a C = 5 encoding with the same phi scores alike."""
    bundle, _, _ = gaussian_world(300, 6, seed=18)
    rng = np.random.default_rng(0)

    def to5(logits2: np.ndarray, labels: np.ndarray) -> np.ndarray:
        phi = logits2[..., 1].astype(np.float64)
        shape = phi.shape + (5,)
        z = np.full(shape, -np.log(4.0))  # rest: 4 classes with total log-mass 0
        lab = np.broadcast_to(labels, phi.shape)
        np.put_along_axis(z, lab[..., None], phi[..., None], axis=-1)
        return z

    labels = rng.integers(0, 5, 300)
    tl = to5(bundle.target_logits, labels[:, None])
    rl = to5(bundle.ref_logits, labels[None, :, None]).astype(np.float32)
    b5 = SignalBundle(labels=labels, target_logits=tl, ref_logits=rl, ref_is_member=bundle.ref_is_member)
    for name in NAMES:
        kw = {"temperature": 1.0} if name.startswith("base") else {}  # tempering z / T is not a function of phi
        want = get_attack(name, **kw).fit_score(bundle)
        np.testing.assert_allclose(get_attack(name, **kw).fit_score(b5), want, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def _small() -> SignalBundle:
    return gaussian_world(20, 4, seed=19)[0]


def _replace(bundle: SignalBundle, **kw) -> SignalBundle:
    fields = dict(labels=bundle.labels, target_logits=bundle.target_logits, ref_logits=bundle.ref_logits,
                  ref_is_member=bundle.ref_is_member)
    fields.update(kw)
    return SignalBundle(**fields)


@pytest.mark.parametrize("name", NAMES)
def test_bundle_errors(name: str) -> None:
    b = _small()
    with pytest.raises(InputError, match=r"needs ref_logits and ref_is_member \(outputs and training membership of reference models\)"):
        get_attack(name).fit(_replace(b, ref_logits=None))
    with pytest.raises(InputError, match=r"needs ref_logits and ref_is_member"):
        get_attack(name).fit(_replace(b, ref_is_member=None))
    with pytest.raises(InputError, match=r"ref_logits: expected shape \(K, 20, 1, 2\)"):
        get_attack(name).fit(_replace(b, ref_logits=b.ref_logits[:, :10]))
    with pytest.raises(InputError, match=r"ref_is_member: expected a bool array of shape \(4, 20\)"):
        get_attack(name).fit(_replace(b, ref_is_member=b.ref_is_member[:, :5]))
    with pytest.raises(InputError, match="ref_is_member: expected a bool"):
        get_attack(name).fit(_replace(b, ref_is_member=b.ref_is_member.astype(int)))
    with pytest.raises(InputError, match=r"target_logits: expected shape \(N, A, C\)"):
        get_attack(name).fit(_replace(b, target_logits=b.target_logits[:, 0]))
    with pytest.raises(InputError, match="C >= 2"):
        get_attack(name).fit(_replace(b, target_logits=b.target_logits[..., :1], ref_logits=b.ref_logits[..., :1]))
    with pytest.raises(InputError, match=r"labels: expected shape \(20,\)"):
        get_attack(name).fit(_replace(b, labels=b.labels[:5]))
    bad = b.ref_logits.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        get_attack(name).fit(_replace(b, ref_logits=bad))
    with pytest.raises(InputError, match=r"score\(\) was called before fit\(\)"):
        get_attack(name).score(b)
    with pytest.raises(InputError, match="fitted on 20 examples but asked to score 10"):
        small = gaussian_world(10, 4, seed=20)[0]
        get_attack(name).fit(b).score(small)
    with pytest.raises(InputError, match="chunk_size must be a positive integer") as err:
        get_attack(name, chunk_size=0).fit(b)
    assert type(err.value) is InputError


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("lira_online", {"variance": "median"}, "variance must be one of shrunk, global, per_example"),
        ("lira_offline", {"prior_df": -1.0}, "prior_df must be 'auto' or a number >= 0"),
        ("lira_online", {"prior_df": "big"}, "prior_df must be 'auto'"),
        ("rmia", {"gamma": 0.0}, "gamma must be a number > 0"),
        ("rmia", {"a": 1.5}, r"a must be in \[0, 1\]"),
        ("rmia_offline", {"a_grid": 1}, "a_grid must be an integer >= 2"),
        ("rmia", {"tune_fpr": 2.0}, r"tune_fpr must be None \(AUC\) or in \(0, 1\)"),
        ("rmia", {"n_paired": 0}, "n_paired must be an integer >= 1"),
        ("rmia", {"tune_max_examples": 5}, "tune_max_examples must be an integer >= 10"),
        ("rmia_offline", {"seed": None}, r"seed: expected an integer in \[0, 2\*\*32\), got None"),
        ("lira_online", {"seed": -1}, r"seed: expected an integer in \[0, 2\*\*32\), got -1"),
        ("lira_offline", {"seed": 1.5}, r"seed: expected an integer in \[0, 2\*\*32\), got 1.5"),
        ("attack_r", {"bandwidth": 0.0}, "bandwidth must be a number > 0"),
    ],
)
def test_bad_parameters_are_input_errors(name: str, params: dict, match: str) -> None:
    with pytest.raises(InputError, match=match) as err:
        get_attack(name, **params).fit(_small())
    assert type(err.value) is InputError  # not ConfigError: the maths raises InputError


def test_unknown_parameter_is_input_error() -> None:
    with pytest.raises(InputError, match="bad parameters"):
        get_attack("lira_online", gamma=2)


def test_population_shape_error() -> None:
    b = gaussian_world(20, 4, seed=21, population=10)[0]
    bad = SignalBundle(labels=b.labels, target_logits=b.target_logits, ref_logits=b.ref_logits, ref_is_member=b.ref_is_member,
                       population_logits=b.population_logits, population_labels=b.population_labels,
                       ref_population_logits=b.ref_population_logits[:, :5])
    with pytest.raises(InputError, match=r"population arrays: expected population_logits \(M, A, C\)"):
        get_attack("rmia").fit(bad)


@pytest.mark.parametrize("name", NAMES)
def test_identical_outputs_everywhere_are_finite_without_warnings(name: str) -> None:
    import warnings

    n = 40
    b = SignalBundle(labels=np.zeros(n, dtype=np.int64), target_logits=np.zeros((n, 1, 3)),
                     ref_logits=np.zeros((4, n, 1, 3), dtype=np.float32),
                     ref_is_member=np.random.default_rng(0).random((4, n)) < 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = get_attack(name).fit_score(b)
    assert np.isfinite(scores).all()
    assert np.ptp(scores) < 1e-6  # nothing to tell apart


@pytest.mark.parametrize("name", ["lira_online", "lira_offline"])
def test_lira_seed_draws_the_correlation_subsample(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``seed`` (not a constant) draws the examples the query correlation is estimated on."""
    from miaudit.attacks import lira

    bundle, _, _ = gaussian_world(400, 6, seed=30, n_queries=3)
    full = get_attack(name).fit(bundle).query_corr_
    monkeypatch.setattr(lira, "_CORR_ROWS", 100)  # subsample 100 of the 400 examples
    a = get_attack(name).fit(bundle)
    assert get_attack(name, seed=0).get_params()["seed"] == 0
    np.testing.assert_array_equal(get_attack(name, seed=0).fit(bundle).query_corr_, a.query_corr_)
    b = get_attack(name, seed=1).fit(bundle)
    assert not np.array_equal(a.query_corr_, b.query_corr_)
    assert not np.array_equal(a.query_corr_, full)
    np.testing.assert_array_equal(get_attack(name, seed=1).fit_score(bundle), b.score(bundle))
