"""The verdict's decision rule (select on one half, certify one figure on the other) and the stratified
figures it rests on: validity on null games, power on leaking ones, determinism and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from miaudit._errors import InputError
from miaudit.metrics import confusion_at_thresholds, decide_leakage, evaluate_scores, tpr_lower_bound


def _members(n: int, rng: np.random.Generator) -> np.ndarray:
    m = np.zeros(n, bool)
    m[rng.permutation(n)[: n // 2]] = True
    return m


def test_tpr_lower_bound_covers_the_population_tpr():
    """Members' scores N(1, 1), non-members' N(0, 1): the population TPR at FPR f is Phi(Phi^-1(f) + 1)."""
    rng = np.random.default_rng(0)
    f, true = 0.05, float(stats.norm.sf(stats.norm.isf(0.05) - 1.0))
    misses = 0
    for _ in range(400):
        m = _members(1000, rng)
        c = confusion_at_thresholds(m, rng.normal(size=1000) + m)
        misses += tpr_lower_bound(c, f, 0.95) > true
    assert misses <= int(stats.binom.ppf(0.999, 400, 0.05))


def test_null_games_single_target_rarely_claim_leakage():
    rng = np.random.default_rng(1)
    claims = 0
    for g in range(60):
        m = _members(600, rng)
        base = rng.normal(size=600)
        scores = {f"a{j}": base + 0.5 * rng.normal(size=600) for j in range(4)}
        claims += decide_leakage(m, scores, seed=g).leakage_detected
    assert claims <= int(stats.binom.ppf(0.999, 60, 0.05))


def test_null_games_with_cross_fitted_folds_rarely_claim_leakage():
    """Fold strata: each fold's rows scored by a different model (fold offsets), no leakage."""
    rng = np.random.default_rng(2)
    claims = 0
    for g in range(60):
        m = _members(800, rng)
        fold = rng.integers(0, 5, 800)
        s = rng.normal(size=800) + rng.normal(0, 2, 5)[fold]
        claims += decide_leakage(m, {"cf": s}, strata={"cf": fold}, seed=g).leakage_detected
    assert claims <= int(stats.binom.ppf(0.999, 60, 0.05))


def test_detects_leakage_and_says_what_it_rests_on():
    rng = np.random.default_rng(3)
    m = _members(2000, rng)
    strong = rng.normal(size=2000) + 4.0 * m * (rng.random(2000) < 0.3)
    d = decide_leakage(m, {"weak": rng.normal(size=2000), "strong": strong}, fprs=(0.01, 0.1))
    assert d.leakage_detected and d.test.attack == "strong" and d.test.detected
    assert d.test.lower_bound > d.test.chance and d.test.n_members == 500 and d.test.n_nonmembers == 500
    assert d.high == (d.test.fpr is not None and d.test.fpr <= 0.01 and d.test.lower_bound >= 0.1)
    assert d.to_dict()["test"]["attack"] == "strong"
    assert decide_leakage(m, {"weak": rng.normal(size=2000), "strong": strong}, fprs=(0.01, 0.1)) == d  # deterministic


def test_pooled_targets_bonferroni_and_groups():
    rng = np.random.default_rng(4)
    rows_m, rows_s, groups = [], [], []
    for t in range(4):
        m = _members(500, rng)
        rows_m.append(m)
        rows_s.append(rng.normal(size=500) + 1.0 * m)
        groups.append(np.full(500, t))
    d = decide_leakage(np.concatenate(rows_m), {"a": np.concatenate(rows_s)}, groups=np.concatenate(groups))
    assert d.n_targets == 4 and len(d.tests) == 4 and d.leakage_detected
    assert all(t.confidence == pytest.approx(1 - 0.05 / 4) for t in d.tests)


def test_too_few_examples_give_a_reason_not_a_claim():
    m = np.array([True, False] * 6)
    d = decide_leakage(m, {"a": np.arange(12.0)})
    assert not d.leakage_detected and d.test is None and "too few examples" in d.reason


def test_bad_inputs():
    m = np.array([True, False] * 20)
    with pytest.raises(InputError, match="scores: expected at least one attack"):
        decide_leakage(m, {})
    with pytest.raises(InputError, match=r"groups: expected one target id per row, shape \(40,\)"):
        decide_leakage(m, {"a": np.arange(40.0)}, groups=np.zeros(3))
    with pytest.raises(InputError, match=r"strata\['a'\]: expected one fold id per row"):
        decide_leakage(m, {"a": np.arange(40.0)}, strata={"a": np.zeros(3)})
    with pytest.raises(InputError, match="groups: target 0 has only non-members"):
        decide_leakage(m, {"a": np.arange(40.0)}, groups=np.where(m, 1, 0))


def test_strata_figures_are_means_with_dependence_free_intervals():
    rng = np.random.default_rng(5)
    m = _members(3000, rng)
    st = np.arange(3000) % 3
    s = rng.normal(size=3000) + 0.8 * m
    r = evaluate_scores(m, s, strata=st)
    parts = [evaluate_scores(m[st == j], s[st == j], seed=j) for j in range(3)]
    assert r.n_strata == 3 and r.auc == pytest.approx(np.mean([p.auc for p in parts]))
    assert r.auc_ci[0] == pytest.approx(r.auc - np.mean([p.auc - p.auc_ci[0] for p in parts]))
    assert r.at(0.01).tpr == pytest.approx(np.mean([p.at(0.01).tpr for p in parts]))
    assert r.at(0.01).n_strata == 3 and r.epsilon.confidence == pytest.approx(1 - 0.05 / 3)
    assert r.epsilon.value == max(p.epsilon.value for p in r.strata) and r.epsilon_stratum is not None
    with pytest.raises(InputError, match="strata: stratum 0 has only non-members"):
        evaluate_scores(m, s, strata=np.where(m, 1, 0))
