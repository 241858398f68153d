from __future__ import annotations

import json
import math

import numpy as np
import pytest

import miaudit.metrics as M
from miaudit._errors import InputError
from miaudit.metrics import (
    AttackMetrics,
    advantage,
    auc_interval,
    auc_score,
    epsilon_lower_bound,
    evaluate_scores,
    roc_curve,
    summarize_spread,
    tpr_at_fpr,
)


def _game(seed, n=3000, shift=1.0):
    rng = np.random.default_rng(seed)
    m = np.zeros(n, bool)
    m[rng.permutation(n)[: n // 2]] = True
    return m, rng.normal(size=n) + shift * m


def test_public_api_names_import():
    for name in M.__all__:
        assert callable(getattr(M, name)) or isinstance(getattr(M, name), (tuple, np.ndarray)), name
    for name in ("roc_curve", "auc_score", "auc_interval", "balanced_accuracy", "advantage", "ppv",
                 "clopper_pearson", "tpr_at_fpr", "epsilon_lower_bound", "gdp_tradeoff_tpr",
                 "gdp_mu_from_epsilon", "dp_tpr_bound", "gdp_mu_estimate", "evaluate_scores",
                 "summarize_spread", "slice_metrics", "AttackMetrics", "TprAtFpr", "EpsilonBound", "RocCurve"):
        assert name in M.__all__


def test_evaluate_scores_agrees_with_the_single_metrics():
    m, s = _game(0)
    r = evaluate_scores(m, s, fprs=(0.001, 0.01, 0.1), seed=3)
    assert r.auc == auc_score(m, s)
    assert r.auc_ci == auc_interval(m, s)
    assert r.advantage == advantage(m, s)
    assert r.balanced_accuracy == pytest.approx((1 + r.advantage) / 2)
    for f, t in zip(r.fprs, r.tpr_at_fpr):
        assert t == tpr_at_fpr(m, s, fpr=f)
        assert r.at(f) is t
    assert r.epsilon == epsilon_lower_bound(m, s, seed=3)
    assert r.epsilon_lower_bound == r.epsilon.value
    curve = roc_curve(m, s)
    np.testing.assert_array_equal(r.roc.fpr, curve.fpr)
    np.testing.assert_array_equal(r.roc.tpr, curve.tpr)
    assert (r.n_members, r.n_nonmembers) == (1500, 1500)
    t = r.at(0.01)
    assert r.ppv_at_fpr[1] == pytest.approx(0.5 * t.tpr / (0.5 * t.tpr + 0.5 * 0.01))


def test_to_dict_follows_the_results_schema_and_is_json_safe():
    m, s = _game(1, n=1500)
    d = evaluate_scores(m, s, member_prior=0.1).to_dict()
    assert list(d) == ["auc", "auc_ci", "balanced_accuracy", "advantage", "tpr_at_fpr", "tpr_at_fpr_ci",
                       "tpr_at_fpr_detail", "ppv_at_fpr", "ppv_lower_at_fpr", "epsilon_lower_bound",
                       "epsilon_detail", "n_members", "n_nonmembers", "n_strata"]
    text = json.dumps(d, allow_nan=False)
    back = json.loads(text)
    assert list(back["tpr_at_fpr"]) == ["0.001", "0.01", "0.1"]
    # 750 non-members cannot resolve FPR 0.001
    assert back["tpr_at_fpr"]["0.001"] is None and back["tpr_at_fpr_ci"]["0.001"] is None
    assert back["ppv_at_fpr"]["0.001"] is None
    assert back["tpr_at_fpr_detail"]["0.001"]["reason"] == (
        "needs at least 1000 non-members to resolve FPR <= 0.001; have 750"
    )
    det = back["tpr_at_fpr_detail"]["0.1"]
    assert set(det) == {"tpr", "ci_low", "ci_high", "achieved_fpr", "threshold", "n_members", "n_nonmembers",
                        "reason", "target_ci_low", "target_ci_high", "n_strata"}
    assert det["target_ci_low"] <= det["ci_low"] <= det["tpr"] <= det["ci_high"] <= det["target_ci_high"]
    assert back["tpr_at_fpr_ci"]["0.1"] == [det["target_ci_low"], det["target_ci_high"]]
    assert det["target_ci_low"] <= det["ci_low"] <= det["tpr"] <= det["ci_high"] <= det["target_ci_high"]
    assert det["n_nonmembers"] == 750 and det["reason"] is None
    assert back["epsilon_detail"]["method"] == "split_half_clopper_pearson"
    for v in (d["auc"], *d["auc_ci"], d["balanced_accuracy"], d["advantage"], d["epsilon_lower_bound"]):
        assert type(v) is float
    assert type(d["n_members"]) is int


def test_fpr_keys_use_format_g():
    m, s = _game(2, n=400)
    d = evaluate_scores(m, s, fprs=(0.05, 0.25, 1e-5)).to_dict()
    assert list(d["tpr_at_fpr"]) == ["0.05", "0.25", "1e-05"]


def test_summarize_spread():
    runs = [evaluate_scores(*_game(k, n=1200 + 400 * k)) for k in range(4)]
    sp = summarize_spread(runs)
    json.dumps(sp, allow_nan=False)
    assert sp["n_targets"] == 4
    aucs = [r.auc for r in runs]
    assert sp["auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert sp["auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    # n = 1200, 1600 -> 600/800 non-members: FPR 0.001 unresolved; 2000, 2400 -> 1000/1200: resolved
    t = sp["tpr_at_fpr"]["0.001"]
    assert t["n_null"] == 2
    vals = [r.at(0.001).tpr for r in runs[2:]]
    assert t["mean"] == pytest.approx(np.mean(vals)) and t["std"] == pytest.approx(np.std(vals, ddof=1))
    assert sp["tpr_at_fpr"]["0.1"]["n_null"] == 0
    eps = [r.epsilon.value for r in runs]
    assert sp["epsilon_lower_bound"]["mean"] == pytest.approx(np.mean(eps))
    one = summarize_spread(runs[:1])
    assert one["auc"]["std"] is None and one["auc"]["mean"] == runs[0].auc
    assert one["tpr_at_fpr"]["0.001"] == {"mean": None, "std": None, "n_null": 1}


def test_summarize_spread_errors():
    with pytest.raises(InputError, match="metrics: expected a non-empty list of AttackMetrics"):
        summarize_spread([])
    with pytest.raises(InputError, match="metrics: expected a non-empty list of AttackMetrics"):
        summarize_spread([{"auc": 0.5}])
    a = evaluate_scores(*_game(0, n=200))
    b = evaluate_scores(*_game(0, n=200), fprs=(0.1,))
    with pytest.raises(InputError, match="metrics: expected every target evaluated at the same fprs"):
        summarize_spread([a, b])


def test_at_unknown_fpr():
    r = evaluate_scores(*_game(0, n=200))
    with pytest.raises(InputError, match=r"fpr: expected one of the evaluated target FPRs"):
        r.at(0.2)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"fprs": ()}, r"fprs: expected at least one"),
        ({"fprs": 0.1}, r"fprs: expected a sequence"),
        ({"fprs": "0.1"}, r"fprs: expected a sequence"),
        ({"fprs": (0.1, 0.0)}, r"fprs: expected a number in \(0, 1\)"),
        ({"fprs": (0.1, 1.0)}, r"fprs: expected a number in \(0, 1\)"),
        ({"fprs": (0.1, 0.1)}, r"fprs: expected distinct values"),
        ({"member_prior": 0.0}, r"member_prior: expected a number in \(0, 1\)"),
        ({"member_prior": 1.0}, r"member_prior: expected"),
        ({"delta": 1.0}, r"delta: expected"),
        ({"confidence": 95}, r"confidence: expected a number strictly between 0 and 1"),
        ({"seed": "0"}, r"seed: expected an integer in \[0, 2\*\*32\)"),
    ],
)
def test_evaluate_scores_option_errors(kw, match):
    with pytest.raises(InputError, match=match):
        evaluate_scores(*_game(0, n=50), **kw)


def test_small_game_is_honest():
    # two members, two non-members: nothing below FPR 0.5 is resolvable
    r = evaluate_scores([1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2], fprs=(0.1, 0.5))
    assert r.at(0.1).tpr is None and r.at(0.5).tpr == 1.0
    assert r.auc == 1.0 and r.auc_ci[0] < 0.2  # exact pair-based interval, not [1, 1]
    assert r.epsilon.value == 0.0
    assert math.isfinite(r.balanced_accuracy)


def test_one_million_examples_agree_with_a_subsample_computation():
    """Speed belongs in benchmarks/ (bench_scoring_throughput.py); here: a million rows give the same figures as
    the one-shot primitives, with 0.1% FPR resolved."""
    m, s = _game(0, n=1_000_000, shift=0.1)
    r = evaluate_scores(m, s)
    assert isinstance(r, AttackMetrics) and r.at(0.001).tpr is not None
    assert r.auc == auc_score(m, s) and r.at(0.001) == tpr_at_fpr(m, s, fpr=0.001)
