"""Shokri et al. (2017) shadow-model attack on synthetic worlds with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from miaudit._errors import InputError
from miaudit.attacks import get_attack
from miaudit.attacks._features import attack_features
from miaudit.attacks.shokri import ShokriAttack
from miaudit.attacks.trained import fit_classifier, log_odds, make_classifier
from miaudit.data import SignalBundle

from .._worlds import auc, balanced_membership, make_world, without

K_, N_, C_ = 4, 400, 3


@pytest.fixture(scope="module")
def world() -> SignalBundle:
    return make_world(1.5, seed=11, n=500, with_population=False)


def test_global_model_is_the_brute_force_fit(world):
    """All K*N rows (k-major), labelled by ref_is_member, give exactly the fitted global classifier."""
    attack = ShokriAttack().fit(world)
    k, n = world.ref_is_member.shape
    assert attack.n_train_ == k * n and attack.class_models_ == {}
    x = attack_features(world.ref_logits.reshape((k * n,) + world.ref_logits.shape[2:]), np.tile(world.labels, k))
    model = fit_classifier(make_classifier("lr"), x, world.ref_is_member.reshape(-1))
    expected = log_odds(model, attack_features(world.target_logits, world.labels))
    np.testing.assert_allclose(attack.score(world), expected, rtol=1e-9, atol=1e-9)


def test_learns_from_references_without_target_in(world):
    scores = ShokriAttack().fit_score(without(world, "is_member"))
    assert auc(world.is_member, scores) > 0.65
    # the IN/OUT labels of the references matter: flipped labels give an anti-attack
    flipped = SignalBundle(labels=world.labels, target_logits=world.target_logits,
                           ref_logits=world.ref_logits, ref_is_member=~world.ref_is_member)
    assert auc(world.is_member, ShokriAttack().fit_score(flipped)) < 0.35


def _class_dependent_world(seed: int) -> SignalBundle:
    """Class 0: members margin 3, non-members 1; class 1 the reverse.

    The label-free features of (class 0, member) and (class 1, non-member) have the same law, so no
    global classifier can beat chance; one classifier per class separates them.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=N_)
    difficulty = rng.normal(scale=0.3, size=N_)
    sign = np.where(labels == 0, 1.0, -1.0)

    def out(is_member: np.ndarray) -> np.ndarray:
        z = np.zeros(is_member.shape + (1, C_))
        margin = 2.0 + difficulty + sign * (2.0 * is_member - 1.0) + 0.3 * rng.normal(size=is_member.shape)
        y = np.broadcast_to(labels, is_member.shape)
        np.put_along_axis(z, y[..., None, None], margin[..., None, None], axis=-1)
        return z

    is_member = rng.permutation(np.arange(N_) < N_ // 2)
    ref_is_member = balanced_membership(N_, K_, rng)
    return SignalBundle(labels=labels, target_logits=out(is_member), is_member=is_member,
                        ref_logits=out(ref_is_member).astype(np.float32), ref_is_member=ref_is_member)


@pytest.mark.parametrize("classifier", ["lr", "gb"])
def test_per_class_models_route_by_label(classifier):
    b = _class_dependent_world(0)
    glob = ShokriAttack(classifier=classifier).fit_score(b)
    per = ShokriAttack(classifier=classifier, per_class=True).fit(b)
    assert sorted(per.class_models_) == [0, 1]
    assert abs(auc(b.is_member, glob) - 0.5) < 0.12
    assert auc(b.is_member, per.score(b)) > 0.9


def test_per_class_falls_back_to_global(world):
    glob = ShokriAttack().fit_score(world)
    huge = ShokriAttack(per_class=True, min_rows_per_class=10**9).fit(world)
    assert huge.class_models_ == {}
    np.testing.assert_array_equal(huge.score(world), glob)
    # one class with enough rows, the others on the global model
    counts = np.bincount(world.labels)
    some = ShokriAttack(per_class=True, min_rows_per_class=int(counts.max() * world.ref_is_member.shape[0] * 0.45)).fit(world)
    assert 0 < len(some.class_models_) < len(counts)
    s = some.score(world)
    fallback = ~np.isin(world.labels, list(some.class_models_))
    np.testing.assert_array_equal(s[fallback], glob[fallback])
    assert not np.array_equal(s[~fallback], glob[~fallback])


def test_max_train_subsamples_deterministically(world):
    a = ShokriAttack(max_train=700, seed=3).fit(world)
    assert a.n_train_ == 700
    np.testing.assert_array_equal(a.score(world), ShokriAttack(max_train=700, seed=3).fit_score(world))
    assert not np.array_equal(a.score(world), ShokriAttack(max_train=700, seed=4).fit_score(world))
    assert auc(world.is_member, a.score(world)) > 0.6


def test_params_and_repr():
    a = ShokriAttack(classifier="gb", per_class=True)
    assert a.get_params() == {"classifier": "gb", "per_class": True, "min_rows_per_class": 50, "top_k": 10,
                              "max_train": 200_000, "seed": 0}
    assert repr(a).startswith("ShokriAttack(classifier='gb'")
    assert get_attack("shokri", classifier="gb").classifier == "gb"


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------
def test_needs_references(world):
    with pytest.raises(InputError, match="shokri: needs ref_logits and ref_is_member"):
        ShokriAttack().fit(without(world, "ref_logits", "ref_is_member"))
    with pytest.raises(InputError, match="shokri: needs ref_logits and ref_is_member"):
        ShokriAttack().fit(without(world, "ref_is_member"))


def test_ref_in_one_sided(world):
    b = SignalBundle(labels=world.labels, target_logits=world.target_logits, ref_logits=world.ref_logits,
                     ref_is_member=np.ones_like(world.ref_is_member))
    with pytest.raises(InputError, match="shokri: ref_is_member must mark both IN and OUT .* got only IN"):
        ShokriAttack().fit(b)


def test_ref_shape_mismatch(world):
    b = SignalBundle(labels=world.labels, target_logits=world.target_logits, ref_logits=world.ref_logits,
                     ref_is_member=world.ref_is_member[:, :10])
    with pytest.raises(InputError, match=r"shokri: bundle.ref_is_member: expected a bool array of shape \(8, 500\) \(K, N\)"):
        ShokriAttack().fit(b)


def test_score_before_fit_and_class_mismatch(world):
    with pytest.raises(InputError, match=r"shokri: call fit\(bundle\) before score\(bundle\)"):
        ShokriAttack().score(world)
    a = ShokriAttack(top_k=None).fit(world)
    other = SignalBundle(labels=world.labels % 3, target_logits=np.zeros((500, 1, 3)))
    with pytest.raises(InputError, match="shokri: the bundle gives 9 features but the attack was fitted with 11"):
        a.score(other)


@pytest.mark.parametrize("kw,msg", [
    ({"classifier": "svm"}, r"classifier: expected one of \['lr', 'gb'\], got 'svm'"),
    ({"per_class": "yes"}, "per_class: expected true or false, got 'yes'"),
    ({"max_train": 1}, "max_train: expected an integer >= 2, got 1"),
    ({"min_rows_per_class": 0}, "min_rows_per_class: expected an integer >= 1, got 0"),
    ({"top_k": -1}, "top_k: expected an integer >= 1, got -1"),
    ({"seed": "0"}, r"seed: expected an integer in \[0, 2\*\*32\), got '0'"),
])
def test_bad_parameters(kw, msg):
    with pytest.raises(InputError, match=msg) as err:
        ShokriAttack(**kw)
    assert type(err.value) is InputError  # not ConfigError
