"""One conformance test for every registered attack: parametrized over ``available_attacks()``, so an
attack added to the registry is checked without touching this file.

Worlds with a known answer come from :func:`tests._worlds.make_world` (K = 8 reference models with a
balanced ``ref_is_member``; ``shift = 1.5`` leaks, ``shift = 0`` is a null world). Every attack must:

* return scores of shape (N,), float64, finite;
* be deterministic for a fixed seed (a fresh instance gives the same scores, bit for bit);
* rank members higher in a leaky world and claim nothing in a null world;
* give the same ROC whatever the order of the examples (scores are permuted with the examples), except
  the cross-fitted attacks, whose folds follow the order;
* never read ``bundle.is_member`` unless ``"membership"`` is in its ``requires`` (same scores with
  ``is_member`` removed or flipped);
* round-trip its hyper-parameters through ``get_params``;
* run on the least its ``requires`` claims and raise :class:`InputError` (with a
  ``missing_requirements`` reason) on less; likewise without labels (unless ``needs_labels`` is False) and on
  outputs of a kind it does not read (``output_kinds``).

Each attack is checked on every output kind it reads: the worlds' logits, and the same worlds exported as raw
scores (:func:`tests._worlds.as_scores`) for the attacks whose ``output_kinds`` contain ``"scores"``.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from miaudit._errors import InputError
from miaudit.attacks import attack_class, available_attacks, get_attack, missing_requirements
from miaudit.attacks._base import OUTPUT_KINDS
from miaudit.data import SignalBundle

from .._worlds import WORLD_A, WORLD_C, WORLD_K, as_labels, as_scores, auc, flipped, make_world, permuted, without

N = 2000
ATTACKS = available_attacks()
UNSUPERVISED = [a for a in ATTACKS if "membership" not in attack_class(a).requires]
#: (attack, output kind) for every kind each attack reads.
KINDED = [(a, k) for a in ATTACKS for k in sorted(attack_class(a).output_kinds)]


def _in_kind(bundle: SignalBundle, kind: str) -> SignalBundle:
    if kind == "labels":
        return as_labels(bundle)
    return as_scores(bundle) if kind == "scores" else bundle


def _world(name: str, bundle: SignalBundle) -> SignalBundle:
    """``bundle`` in the attack's output kind (logits when it reads them, raw scores otherwise)."""
    kinds = attack_class(name).output_kinds
    return _in_kind(bundle, "logits" if "logits" in kinds else "scores" if "scores" in kinds else "labels")


@pytest.fixture(scope="module")
def leaky() -> SignalBundle:
    return make_world(1.5, seed=1, n=N)


@pytest.fixture(scope="module")
def null() -> SignalBundle:
    return make_world(0.0, seed=2, n=N)


@pytest.fixture(scope="module")
def small() -> SignalBundle:
    return make_world(1.0, seed=3, n=200)


def test_world_is_what_it_claims(leaky):
    assert leaky.target_logits.shape == (N, WORLD_A, WORLD_C) and leaky.target_logits.dtype == np.float64
    assert leaky.ref_logits.shape == (WORLD_K, N, WORLD_A, WORLD_C) and leaky.ref_logits.dtype == np.float32
    assert np.all(leaky.ref_is_member.sum(axis=0) == WORLD_K // 2)
    assert leaky.is_member.sum() == N // 2
    # the world leaks: the oracle statistic (true-class logit minus its known mean) separates members
    idx = leaky.labels[:, None, None]
    true = np.take_along_axis(leaky.target_logits, np.broadcast_to(idx, (N, WORLD_A, 1)), -1)[..., 0].mean(1)
    assert auc(leaky.is_member, true) > 0.6


def test_registry_has_the_documented_names():
    for name in ["loss", "confidence", "entropy", "modified_entropy", "scaled_logit", "lira_online", "lira_offline",
                 "rmia", "rmia_offline", "base", "base_offline", "attack_r", "calibrated_loss", "trained_lr", "trained_gb", "shokri",
                 "max_score", "score_spread", "score_extremity"]:
        assert name in ATTACKS


def _seeded(name: str, seed: int = 0) -> dict:
    """``{"seed": seed}`` if the attack takes a seed, else ``{}``."""
    return {"seed": seed} if "seed" in get_attack(name).get_params() else {}


@pytest.mark.parametrize(("name", "kind"), KINDED)
def test_attack_conformance(name, kind, leaky, null):
    leaky, null = _in_kind(leaky, kind), _in_kind(null, kind)
    cls = attack_class(name)
    assert cls.name == name and cls.description
    assert cls.__doc__ and cls.__doc__.strip()

    scores = get_attack(name, **_seeded(name)).fit_score(leaky)
    assert isinstance(scores, np.ndarray) and scores.shape == (N,) and scores.dtype == np.float64
    assert np.all(np.isfinite(scores))

    # deterministic for a fixed seed: fresh instances on the same input give the same scores
    np.testing.assert_array_equal(get_attack(name, **_seeded(name)).fit_score(leaky), scores)
    np.testing.assert_array_equal(get_attack(name).fit_score(leaky), scores)  # the default seed is 0

    # higher scores for members in a leaky world
    assert auc(leaky.is_member, scores) > 0.6, f"{name}: AUC {auc(leaky.is_member, scores):.3f} on the leaky world"

    # no claim of leakage in a null world
    null_scores = get_attack(name).fit_score(null)
    assert null_scores.shape == (N,) and null_scores.dtype == np.float64 and np.all(np.isfinite(null_scores))
    assert abs(auc(null.is_member, null_scores) - 0.5) < 0.06


@pytest.mark.parametrize("name", UNSUPERVISED)
def test_never_reads_is_member(name, leaky):
    """Without ``"membership"`` in ``requires``, the evaluation ground truth does not enter the scores."""
    leaky = _world(name, leaky)
    scores = get_attack(name).fit_score(leaky)
    np.testing.assert_array_equal(get_attack(name).fit_score(flipped(leaky)), scores)
    np.testing.assert_array_equal(get_attack(name).fit_score(without(leaky, "is_member")), scores)


@pytest.mark.parametrize("name", [a for a in ATTACKS if a not in UNSUPERVISED])
def test_membership_attacks_do_read_is_member(name, small):
    """The converse: an attack that declares ``"membership"`` really learns from it."""
    small = _world(name, small)
    scores = get_attack(name).fit_score(small)
    assert auc(small.is_member, scores) > 0.5 > auc(small.is_member, get_attack(name).fit_score(flipped(small)))


@pytest.mark.parametrize("name", UNSUPERVISED)
def test_roc_is_invariant_to_example_order(name, small):
    """Reordering the examples reorders the scores, so the ROC does not change (cross-fitted attacks are
    exempt: their folds follow the order)."""
    small = _world(name, small)
    perm = np.random.default_rng(0).permutation(small.n_examples)
    scores = get_attack(name).fit_score(small)
    moved = get_attack(name).fit_score(permuted(small, perm))
    np.testing.assert_allclose(moved, scores[perm], rtol=1e-9, atol=1e-12)
    assert auc(small.is_member[perm], moved) == pytest.approx(auc(small.is_member, scores), abs=1e-12)


def _init_params(cls: type) -> set[str]:
    sig = inspect.signature(cls.__init__)
    return {p.name for p in sig.parameters.values() if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


@pytest.mark.parametrize("name", ATTACKS)
def test_get_params_round_trip(name, small):
    cls = attack_class(name)
    attack = get_attack(name)
    params = attack.get_params()
    assert set(params) == _init_params(cls)  # every hyper-parameter, and nothing else
    assert all(inspect.signature(cls.__init__).parameters[p].kind is inspect.Parameter.KEYWORD_ONLY for p in params)
    again = get_attack(name, **params)
    assert type(again) is cls and again.get_params() == params
    assert cls(**params).get_params() == params
    assert repr(again) == repr(attack)
    attack.fit(_world(name, small))
    assert attack.get_params() == params  # fitting adds state ending in "_" only
    if "seed" in params:
        assert get_attack(name, seed=7).get_params() == {**params, "seed": 7}


# which bundle fields satisfy which requirement
_MINIMAL = {
    "target only": ("is_member", "ref_logits", "ref_is_member", "population_logits", "population_labels", "ref_population_logits"),
    "membership only": ("ref_logits", "ref_is_member", "population_logits", "population_labels", "ref_population_logits"),
    "references, no population": ("is_member", "population_logits", "population_labels", "ref_population_logits"),
    "population, no references": ("is_member", "ref_logits", "ref_is_member", "ref_population_logits"),
}
_PROVIDES = {
    "target only": set(),
    "membership only": {"membership"},
    "references, no population": {"reference", "population"},  # population falls back to references
    "population, no references": {"population"},
}


@pytest.mark.parametrize("kind", list(_MINIMAL))
@pytest.mark.parametrize("name", ATTACKS)
def test_attack_respects_requires(name, kind, small):
    bundle = without(_world(name, small), *_MINIMAL[kind])
    cls = attack_class(name)
    reason = missing_requirements(name, bundle)
    if set(cls.requires) <= _PROVIDES[kind]:
        assert reason is None
        scores = get_attack(name).fit_score(bundle)  # runs on the least it claims to need
        assert scores.shape == (200,) and scores.dtype == np.float64 and np.all(np.isfinite(scores))
    else:
        assert isinstance(reason, str) and reason
        with pytest.raises(InputError):  # never a bare TypeError/AttributeError on a missing field
            get_attack(name).fit_score(bundle)


def test_missing_requirements_full_bundle(small):
    for name in ATTACKS:
        assert missing_requirements(name, _world(name, small)) is None


@pytest.mark.parametrize("name", ATTACKS)
def test_labels_are_needed_only_where_declared(name, small):
    """Without labels, an attack that needs them has a reason and raises InputError; a label-free one runs."""
    bundle = without(_world(name, small), "labels", "population_logits", "population_labels", "ref_population_logits")
    reason = missing_requirements(name, bundle)
    if attack_class(name).needs_labels:
        assert isinstance(reason, str) and "labels" in reason
        with pytest.raises(InputError, match="labels"):
            get_attack(name).fit_score(bundle)
    else:
        assert reason is None
        scores = get_attack(name).fit_score(bundle)
        assert scores.shape == (200,) and scores.dtype == np.float64 and np.all(np.isfinite(scores))
        assert auc(bundle.is_member, scores) > 0.55


@pytest.mark.parametrize("name", ATTACKS)
def test_output_kinds_are_respected(name, small):
    """On outputs of a kind it does not read, an attack has a reason and raises InputError."""
    for kind in sorted(OUTPUT_KINDS - attack_class(name).output_kinds):
        bundle = _in_kind(without(small, "population_logits", "population_labels", "ref_population_logits"), kind)
        reason = missing_requirements(name, bundle)
        if attack_class(name).output_kinds == {"labels"}:  # a label-only attack on a model's outputs
            assert isinstance(reason, str) and "predicted classes" in reason
            with pytest.raises(InputError, match="predicted classes"):
                get_attack(name).fit_score(bundle)
            continue
        assert isinstance(reason, str) and "scores" in reason
        with pytest.raises(InputError, match="outputs|labels"):
            get_attack(name).fit_score(bundle)
