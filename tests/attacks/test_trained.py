"""Cross-fitted trained attacks and the shared output features."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from miaudit import signals
from miaudit._errors import InputError
from miaudit.attacks import get_attack
from miaudit.attacks._features import attack_features, check_reference, feature_names
from miaudit.attacks.trained import TrainedGB, TrainedLR, fit_classifier, log_odds, make_classifier
from miaudit.data import SignalBundle

from .._worlds import auc, make_world, without


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------
def test_features_known_values():
    p = np.array([0.1, 0.6, 0.3])
    z = np.log(p)[None, None, :]
    f = attack_features(z, np.array([2]), top_k=2)
    names = feature_names(3, top_k=2)
    assert f.shape == (1, len(names)) and names[:2] == ["p_sorted_0", "p_sorted_1"]
    row = dict(zip(names, f[0]))
    assert row["p_sorted_0"] == pytest.approx(0.6) and row["p_sorted_1"] == pytest.approx(0.3)
    assert row["p_y"] == pytest.approx(0.3) and row["log_p_y"] == pytest.approx(np.log(0.3))
    assert row["scaled_logit"] == pytest.approx(np.log(0.3 / 0.7))
    assert row["entropy"] == pytest.approx(-(p * np.log(p)).sum())
    mentr = -(0.7) * np.log(0.3) - 0.1 * np.log(0.9) - 0.6 * np.log(0.4)
    assert row["modified_entropy"] == pytest.approx(mentr)
    assert row["correct"] == 0.0


def test_features_average_over_queries_and_broadcast():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 7, 3, 5))  # (K, N, A, C)
    y = rng.integers(0, 5, size=7)
    f = attack_features(z, y, top_k=None)
    assert f.shape == (4, 7, 5 + 6) and f.dtype == np.float64
    per_query = np.stack([attack_features(z[:, :, a : a + 1], y, top_k=None) for a in range(3)])
    np.testing.assert_allclose(f, per_query.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(f[2], attack_features(z[2], y, top_k=None))
    # correct flag is the fraction of queries predicting y
    frac = (np.argmax(z, axis=-1) == y[None, :, None]).mean(axis=-1)
    np.testing.assert_allclose(f[..., -1], frac)
    # sorted probabilities are decreasing and sum to 1 with all classes kept
    assert np.all(np.diff(f[..., :5], axis=-1) <= 1e-15)
    np.testing.assert_allclose(f[..., :5].sum(axis=-1), 1.0)


def test_features_finite_on_extreme_logits():
    z = np.array([[[1e4, -1e4, 0.0]], [[-np.inf, 0.0, 3.0]]])
    f = attack_features(z, np.array([1, 0]))
    assert np.all(np.isfinite(f))


def test_features_errors():
    with pytest.raises(InputError, match=r"logits: expected shape \(\.\.\., A, C\) with a query axis, got shape \(3,\)"):
        attack_features(np.zeros(3), np.array([0]))
    with pytest.raises(InputError, match="top_k: expected a positive integer or None, got 0"):
        attack_features(np.zeros((2, 1, 3)), np.array([0, 1]), top_k=0)


def test_check_reference_errors():
    b = make_world(1.0, seed=0, n=20, with_population=False)
    with pytest.raises(InputError, match="x: needs ref_logits and ref_is_member"):
        check_reference(without(b, "ref_is_member"), "x")
    bad = SignalBundle(labels=b.labels, target_logits=b.target_logits, ref_logits=b.ref_logits[:, :10], ref_is_member=b.ref_is_member)
    with pytest.raises(InputError, match=r"x: bundle.ref_logits: expected shape \(K, 20, 2, 5\) matching target_logits"):
        check_reference(bad, "x")


# ---------------------------------------------------------------------------------------------
# cross-fitting
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world() -> SignalBundle:
    return make_world(1.5, seed=5, n=600, with_population=False)


@pytest.mark.parametrize("name,kind", [("trained_lr", "lr"), ("trained_gb", "gb")])
def test_scores_are_out_of_fold(name, kind, world):
    """Brute force: refit each fold's model on the other folds; its scores must match exactly."""
    attack = get_attack(name, n_folds=3, seed=7).fit(world)
    scores = attack.score(world)
    x = attack_features(world.target_logits, world.labels)
    y = world.is_member
    assert sorted(np.unique(attack.fold_)) == [0, 1, 2] and len(attack.models_) == 3
    for i in range(3):
        test = attack.fold_ == i
        model = fit_classifier(make_classifier(kind, seed=7), x[~test], y[~test])
        np.testing.assert_allclose(scores[test], log_odds(model, x[test]), rtol=1e-9, atol=1e-9)
        # stratified: every fold has the same member fraction (up to one example)
        assert abs(y[test].sum() - y.sum() / 3) <= 1


def test_log_odds_are_calibrated_probabilities(world):
    """The score is the log-odds behind predict_proba: sigmoid(score) == predict_proba[:, 1]."""
    attack = TrainedLR(n_folds=2).fit(world)
    x = attack_features(world.target_logits, world.labels)
    test = attack.fold_ == 0
    prob = attack.models_[0].predict_proba(x[test])[:, 1]
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-attack.scores_[test])), prob, rtol=1e-10)


@pytest.mark.parametrize("name", ["trained_lr", "trained_gb"])
def test_pooling_folds_loses_little(name, world):
    """Fold models share one (calibrated log-odds) scale: the pooled AUC is close to the per-fold mean."""
    attack = get_attack(name).fit(world)
    per_fold = [auc(world.is_member[attack.fold_ == i], attack.scores_[attack.fold_ == i]) for i in range(5)]
    assert auc(world.is_member, attack.scores_) > np.mean(per_fold) - 0.02


def test_no_in_sample_scores_on_pure_noise():
    """Random features: in-sample boosting would memorise labels (AUC >> 0.5); out-of-fold does not."""
    rng = np.random.default_rng(3)
    n = 400
    b = SignalBundle(
        labels=rng.integers(0, 4, size=n),
        target_logits=rng.normal(size=(n, 1, 4)),
        is_member=rng.permutation(np.arange(n) < n // 2),
    )
    oof = TrainedGB().fit_score(b)
    assert abs(auc(b.is_member, oof) - 0.5) < 0.1
    x = attack_features(b.target_logits, b.labels)
    in_sample = log_odds(fit_classifier(make_classifier("gb"), x, b.is_member), x)
    assert auc(b.is_member, in_sample) > 0.75  # what the test guards against


def test_learns_the_leak(world):
    loss_auc = auc(world.is_member, get_attack("loss").score(world))
    for name in ["trained_lr", "trained_gb"]:
        assert auc(world.is_member, get_attack(name).fit_score(world)) > loss_auc - 0.05


def test_seed_changes_folds_and_score_refits_other_bundles(world):
    a = TrainedLR(seed=0, n_folds=2).fit(world)
    b = TrainedLR(seed=1, n_folds=2).fit(world)
    assert not np.array_equal(a.fold_, b.fold_)
    other = make_world(1.5, seed=6, n=200, with_population=False)
    np.testing.assert_array_equal(a.score(other), TrainedLR(seed=0, n_folds=2).fit_score(other))
    np.testing.assert_array_equal(a.score(world), TrainedLR(seed=0, n_folds=2).fit_score(world))


def test_pickles_after_fit(world):
    a = TrainedLR(n_folds=2).fit(world)
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(b.scores_, a.scores_)
    np.testing.assert_array_equal(b.score(world), a.score(world))  # refits: the bundle link is not pickled
    assert b.get_params() == {"n_folds": 2, "seed": 0, "top_k": 10}


def test_uses_every_class_count():
    """C = 2 and C = 30 (top_k keeps 10) both work."""
    for c in (2, 30):
        rng = np.random.default_rng(c)
        b = SignalBundle(labels=rng.integers(0, c, 100), target_logits=rng.normal(size=(100, 1, c)),
                         is_member=np.arange(100) % 2 == 0)
        assert TrainedLR().fit_score(b).shape == (100,)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_needs_target_in(world):
    with pytest.raises(InputError, match="trained_lr: needs is_member .* for cross-fitting"):
        TrainedLR().fit_score(without(world, "is_member"))


def test_too_few_members_for_folds():
    b = SignalBundle(labels=np.zeros(10, dtype=np.int64), target_logits=np.zeros((10, 1, 3)),
                     is_member=np.arange(10) < 3)
    with pytest.raises(InputError, match="trained_gb: cross-fitting with n_folds=5 needs at least 5 members .* got 3 and 7"):
        TrainedGB().fit(b)


def test_target_in_wrong_length(world):
    b = SignalBundle(labels=world.labels, target_logits=world.target_logits, is_member=world.is_member[:-1])
    with pytest.raises(InputError, match="trained_lr: is_member has 599 entries, labels 600"):
        TrainedLR().fit(b)


@pytest.mark.parametrize("kw,msg", [
    ({"n_folds": 1}, "n_folds: expected an integer >= 2, got 1"),
    ({"n_folds": 2.5}, "n_folds: expected an integer >= 2, got 2.5"),
    ({"top_k": 0}, "top_k: expected an integer >= 1, got 0"),
    ({"seed": None}, r"seed: expected an integer in \[0, 2\*\*32\), got None"),
    ({"seed": -1}, r"seed: expected an integer in \[0, 2\*\*32\), got -1"),
])
def test_bad_parameters(kw, msg):
    with pytest.raises(InputError, match=msg) as err:
        TrainedLR(**kw)
    assert type(err.value) is InputError  # not ConfigError


def test_bad_classifier_and_unknown_parameter():
    with pytest.raises(InputError, match=r"classifier: expected one of \['lr', 'gb'\], got 'svm'") as err:
        make_classifier("svm")
    assert type(err.value) is InputError
    with pytest.raises(InputError, match="attack 'trained_lr': bad parameters"):
        get_attack("trained_lr", folds=3)


def test_signals_module_untouched_by_features():
    """Features reuse the signals (one implementation of each formula)."""
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(9, 1, 4)), rng.integers(0, 4, 9)
    f = attack_features(z, y)
    names = feature_names(4)
    np.testing.assert_allclose(f[:, names.index("modified_entropy")], signals.modified_entropy(z[:, 0], y))
    np.testing.assert_allclose(f[:, names.index("entropy")], signals.entropy(z[:, 0]))


# ---------------------------------------------------------------------------------------------
# raw scores and missing labels
# ---------------------------------------------------------------------------------------------
def test_score_features_known_values():
    s = np.array([[[0.2, 0.9, 0.4]], [[0.7, 0.1, 0.5]]])  # (N=2, A=1, C=3), not normalised
    f = attack_features(s, None, top_k=2, kind="scores")
    names = feature_names(3, top_k=2, labels=False, kind="scores")
    assert names == ["s_0", "s_1", "s_2", "s_sorted_0", "s_sorted_1"]
    np.testing.assert_array_equal(f, [[0.2, 0.9, 0.4, 0.9, 0.4], [0.7, 0.1, 0.5, 0.7, 0.5]])
    f = attack_features(s, np.array([1, 2]), top_k=2, kind="scores")
    assert feature_names(3, top_k=2, kind="scores")[-2:] == ["s_y", "correct"]
    np.testing.assert_array_equal(f[:, -2:], [[0.9, 1.0], [0.5, 0.0]])
    z = np.log(np.array([[[0.1, 0.6, 0.3]]]))
    f = attack_features(z, None, top_k=2)  # logits without labels: sorted probabilities and the entropy
    assert feature_names(3, top_k=2, labels=False) == ["p_sorted_0", "p_sorted_1", "entropy"]
    assert f[0, :2] == pytest.approx([0.6, 0.3]) and f[0, 2] == pytest.approx(signals.entropy(z)[0, 0])


@pytest.mark.parametrize("name", ["trained_lr", "trained_gb"])
def test_trained_attacks_read_the_unsorted_score_vector(name):
    """Members put their larger score in column 0, non-members in column 1: the sorted vectors have the same law,
    only the unsorted vector tells them apart -- and the trained attacks see it."""
    rng = np.random.default_rng(0)
    n = 600
    pair = np.sort(rng.uniform(0, 1, (n, 2)), axis=1)  # (low, high)
    is_member = np.arange(n) % 2 == 0
    scores = np.where(is_member[:, None], pair[:, ::-1], pair)
    bundle = SignalBundle.from_arrays(target_scores=scores, is_member=is_member)
    assert bundle.labels is None and bundle.outputs_kind == "scores"
    assert auc(is_member, get_attack(name).fit_score(bundle)) > 0.9
