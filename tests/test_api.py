from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from miaudit import InputError
from miaudit.api import AuditSettings, audit_bundle, audit_model, check_budget, evaluate_game, parse_budget
from miaudit.data import SignalBundle

from ._worlds import leaky_world, paired_game


@pytest.fixture(scope="module")
def digits_split():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))[:600]
    m, n = idx[:300], idx[300:]
    clf = LogisticRegression(C=100.0, max_iter=300).fit(X[m] / 16, y[m])
    return clf, X[m] / 16, y[m], X[n] / 16, y[n]


def test_audit_model_returns_metrics_for_every_population_attack(digits_split):
    clf, Xm, ym, Xn, yn = digits_split
    result = audit_model(clf, Xm, ym, Xn, yn, attacks=["loss", "confidence", "trained_lr"])
    table = result.metrics_table()
    assert set(["loss", "confidence", "trained_lr"]) <= set(result.metrics)
    assert isinstance(table, pd.DataFrame) and len(table) == 3
    assert result.game["n_members"] == 300 and result.game["n_nonmembers"] == 300
    assert result.game["train_accuracy"] >= result.game["test_accuracy"]
    # 300 non-members cannot resolve FPR 0.1%: the figure is null with a reason, never 0
    m = result.metrics["loss"]
    assert m.at(0.001).tpr is None
    assert m.at(0.001).reason
    assert m.at(0.01).tpr is not None
    assert len(result.scores) == 600
    # the cross-fitted attack is measured per fold (5 strata), every other attack on one model's scores
    assert result.metrics["trained_lr"].n_strata == 5 and m.n_strata == 1
    assert result.decision is not None and result.verdict().level in ("high", "measurable", "none_detected")


def test_audit_model_dataframe_and_string_labels(digits_split):
    _, Xm, ym, Xn, yn = digits_split
    names = np.array([f"digit-{v}" for v in range(10)])
    clf = LogisticRegression(max_iter=300).fit(pd.DataFrame(Xm), names[ym])
    result = audit_model(clf, pd.DataFrame(Xm), names[ym], pd.DataFrame(Xn), names[yn], attacks=["loss"])
    assert "loss" in result.metrics


def test_audit_model_errors_name_the_input(digits_split):
    clf, Xm, ym, Xn, yn = digits_split
    with pytest.raises(InputError, match=r"X_members and y_members have inconsistent numbers of samples: \[300, 299\]"):
        audit_model(clf, Xm, ym[:-1], Xn, yn)
    with pytest.raises(InputError, match="X_nonmembers: expected a non-empty 2-D array"):
        audit_model(clf, Xm, ym, Xn[:0], yn[:0])
    with pytest.raises(InputError, match="unknown attack 'lira_onlne'"):
        audit_model(clf, Xm, ym, Xn, yn, attacks=["lira_onlne"])


def test_bundle_with_references_runs_reference_attacks_and_finds_leak():
    world = leaky_world(n=800, k=8, shift=2.0)
    bundle = SignalBundle.from_arrays(**world)
    result = audit_bundle(bundle, attacks=["lira_online", "scaled_logit"])
    assert result.metrics["lira_online"].auc > 0.8
    # reference attack beats the population attack in a world with per-example difficulty
    assert result.metrics["lira_online"].auc > result.metrics["scaled_logit"].auc
    assert result.exposures is not None and len(result.exposures) > 0
    assert result.game["n_references"] == 8
    assert result.warnings == [] and result.game["reference_design"]["warnings"] == []
    assert result.decision.leakage_detected and result.decision.test.attack == "lira_online"


def test_bundle_whose_reference_counts_reveal_membership_gets_a_warning():
    """A bundle that keeps the target's partner among its references: counts reveal membership."""
    from miaudit.audit import balanced_membership

    world = leaky_world(n=400, k=4, null=True, seed=2)
    design = balanced_membership(400, 6, seed=0)
    bundle = SignalBundle.from_arrays(labels=world["labels"], target_logits=world["target_logits"],
                                      is_member=design[0], ref_logits=np.concatenate([world["ref_logits"]] * 2)[:5],
                                      ref_is_member=design[1:])
    result = audit_bundle(bundle, attacks=["lira_online", "loss"])
    assert len(result.warnings) == 2 and "IN references depends on the target's membership" in result.warnings[0]
    back = result.to_json()
    assert back["warnings"] == result.warnings and back["game"]["reference_design"]["mirrors"] == [0]
    assert any("Warning about the game" in p for p in result.verdict().paragraphs)


def test_attacks_that_cannot_run_are_skipped_unless_asked_for_by_name():
    world = leaky_world(n=300)
    del world["ref_logits"], world["ref_is_member"]
    result = audit_bundle(SignalBundle.from_arrays(**world))
    assert "lira_online" in result.skipped and "reference" in result.skipped["lira_online"]
    assert "loss" in result.metrics
    with pytest.raises(InputError, match=r"attack 'lira_online' cannot run on this data: needs reference models"):
        audit_bundle(SignalBundle.from_arrays(**world), attacks=["loss", "lira_online"])


def test_bundle_without_ground_truth_scores_but_no_metrics():
    world = leaky_world(n=300)
    del world["is_member"]
    result = audit_bundle(SignalBundle.from_arrays(**world), attacks=["loss", "lira_offline"])
    assert result.metrics == {}
    assert {"neg_loss", "lira_offline"} <= set(result.scores.columns)
    with pytest.raises(InputError, match="needs membership ground truth"):
        check_budget(result, ["auc=0.6"])


def test_evaluate_game_pools_targets_and_reports_spread():
    labels, logits, design = paired_game()
    result = evaluate_game(labels, logits, design, attacks=["lira_online", "loss"])
    m = result.metrics["lira_online"]
    assert result.spread["lira_online"]["n_targets"] == 4 and m.n_strata == 4
    assert m.n_nonmembers == 4 * 200
    assert set(result.scores["target"]) == {0, 1, 2, 3}
    assert result.game["n_references"] == 2  # every model but the target and its partner
    assert result.decision.n_targets == 4 and result.decision.leakage_detected
    back = json.loads(result.to_json_bytes())
    assert back["verdict"]["rule"]["n_targets"] == 4 and len(back["verdict"]["rule"]["tests"]) == 4


def test_evaluate_game_refuses_two_models_and_designs_that_leak():
    labels, logits, design = paired_game(k=2)
    with pytest.raises(InputError, match=r"needs K >= 4, got K = 2"):
        evaluate_game(labels, logits, design, attacks=["lira_online"])
    labels, logits, _ = paired_game(k=4)
    unpaired = np.argsort(np.random.default_rng(0).random((4, 400)), axis=0) < 2
    with pytest.raises(InputError, match=r"cannot be the target of this design"):
        evaluate_game(labels, logits, unpaired, attacks=["lira_online"])


def test_evaluate_game_rejects_bad_shapes():
    with pytest.raises(InputError, match=r"expected logits \(K, N, A, C\)"):
        evaluate_game(np.zeros(3, int), np.zeros((2, 3, 2)), np.zeros((2, 3), bool))
    with pytest.raises(InputError, match=r"targets: expected distinct model indices in \[0, 2\), got \[5\]"):
        evaluate_game(np.zeros(4, int), np.zeros((2, 4, 1, 2)), np.ones((2, 4), bool), targets=[5])


@pytest.mark.parametrize(
    "text, metric, fpr, limit",
    [("tpr@0.001=0.01", "tpr", 0.001, 0.01), ("auc = 0.6", "auc", None, 0.6), ("eps=1", "epsilon", None, 1.0)],
)
def test_parse_budget(text, metric, fpr, limit):
    b = parse_budget(text)
    assert (b.metric, b.fpr, b.limit) == (metric, fpr, limit)


@pytest.mark.parametrize("text", ["tpr=0.1", "auc>0.5", "tpr@2=0.1", "accuracy=0.9", "auc=abc"])
def test_parse_budget_rejects(text):
    with pytest.raises(InputError, match="--fail-above"):
        parse_budget(text)


def test_check_budget_flags_violations_and_unmeasurable_figures():
    world = leaky_world(n=400, shift=3.0)
    result = audit_bundle(SignalBundle.from_arrays(**world), attacks=["lira_online"])
    assert check_budget(result, ["auc=0.99"]) == [] or result.metrics["lira_online"].auc > 0.99
    assert any("exceeds the budget" in v for v in check_budget(result, ["auc=0.5"]))
    # 200 non-members cannot show TPR at FPR 0.1%: the gate must not pass silently
    assert any("cannot be measured" in v for v in check_budget(result, ["tpr@0.001=0.5"]))
    with pytest.raises(InputError, match="not among the computed FPRs"):
        check_budget(result, ["tpr@0.05=0.5"])


def test_settings_validation():
    with pytest.raises(InputError, match=r"settings: member_prior: expected a number in \(0, 1\)"):
        AuditSettings(member_prior=1.5)
    with pytest.raises(InputError, match="unknown key"):
        AuditSettings.coerce({"dlta": 1e-5})


def test_exposures_show_feature_values_only_when_asked(digits_split):
    clf, Xm, ym, Xn, yn = digits_split
    plain = audit_model(clf, Xm, ym, Xn, yn, attacks=["loss"])
    assert not any(c.startswith("feature:") for c in plain.exposures.columns)
    shown = audit_model(clf, Xm, ym, Xn, yn, attacks=["loss"], show_features=True)
    cols = [c for c in shown.exposures.columns if c.startswith("feature:")]
    assert len(cols) == 50  # 64 pixels, capped
    first = shown.exposures.iloc[0]
    X_all = np.concatenate([Xm, Xn])
    assert np.allclose(first[cols].to_numpy(float), X_all[int(first["index"])][:50])
