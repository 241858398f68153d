"""One conformance test for every registered attack (the registry grows as attacks are added).

Synthetic worlds with a known answer. Example ``i`` has a difficulty ``d_i``; every model (target or
reference) gives it the true-class logit ``2 + d_i + shift * in + noise`` (other classes N(0, 1)), so
the outputs of the K = 8 reference models (balanced ``ref_is_member``: each example IN for exactly 4) follow
the same per-example law as the target's. ``shift > 0`` (1.5 here): members have systematically higher
confidence (a leaky world); ``shift = 0``: outputs are independent of membership (a null world).
"""

from __future__ import annotations

import numpy as np
import pytest

from miaudit._errors import InputError
from miaudit.attacks import attack_class, available_attacks, get_attack, missing_requirements
from miaudit.data import SignalBundle

N, C, A, K, M = 2000, 5, 2, 8, 400
ATTACKS = available_attacks()


def _balanced(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(k, n) bool: every example IN for exactly k/2 models."""
    keys = rng.random((k, n))
    return keys < np.median(keys, axis=0, keepdims=True)


def _outputs(is_member: np.ndarray, labels: np.ndarray, difficulty: np.ndarray, shift: float,
             rng: np.random.Generator) -> np.ndarray:
    """Logits (..., n, A, C) for membership ``is_member`` (..., n)."""
    z = rng.normal(size=is_member.shape + (A, C))
    margin = 2.0 + difficulty + shift * is_member  # (..., n)
    y = np.broadcast_to(labels, is_member.shape)[..., None, None]
    true = margin[..., None] + 0.5 * rng.normal(size=is_member.shape + (A,))
    np.put_along_axis(z, np.broadcast_to(y, is_member.shape + (A, 1)), true[..., None], axis=-1)
    return z


def make_world(shift: float, *, seed: int = 0, n: int = N, with_population: bool = True) -> SignalBundle:
    """A full bundle (target, is_member, K references, population) of the synthetic world."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, C, size=n)
    difficulty = rng.normal(scale=1.5, size=n)
    is_member = rng.permutation(np.arange(n) < n // 2)
    ref_is_member = _balanced(n, K, rng)
    pop = {}
    if with_population:
        pop_labels = rng.integers(0, C, size=M)
        pop_diff = rng.normal(scale=1.5, size=M)
        out = np.zeros(M, dtype=bool)
        pop = dict(
            population_logits=_outputs(out, pop_labels, pop_diff, shift, rng),
            population_labels=pop_labels.astype(np.int64),
            ref_population_logits=_outputs(np.zeros((K, M), bool), pop_labels, pop_diff, shift, rng).astype(np.float32),
        )
    return SignalBundle(
        labels=labels.astype(np.int64),
        target_logits=_outputs(is_member, labels, difficulty, shift, rng),
        is_member=is_member,
        ref_logits=_outputs(ref_is_member, labels, difficulty, shift, rng).astype(np.float32),
        ref_is_member=ref_is_member,
        **pop,
    )


def without(bundle: SignalBundle, *fields: str) -> SignalBundle:
    kw = {f: getattr(bundle, f) for f in SignalBundle.__dataclass_fields__}
    for f in fields:
        kw[f] = None
    return SignalBundle(**kw)


def auc(is_member: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted 1/2 (brute force is fine at this size)."""
    pos, neg = scores[is_member], scores[~is_member]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


@pytest.fixture(scope="module")
def leaky() -> SignalBundle:
    return make_world(1.5, seed=1)


@pytest.fixture(scope="module")
def null() -> SignalBundle:
    return make_world(0.0, seed=2)


def test_world_is_what_it_claims(leaky):
    assert leaky.target_logits.shape == (N, A, C) and leaky.target_logits.dtype == np.float64
    assert leaky.ref_logits.shape == (K, N, A, C) and leaky.ref_logits.dtype == np.float32
    assert np.all(leaky.ref_is_member.sum(axis=0) == K // 2)
    assert leaky.is_member.sum() == N // 2
    # the world leaks: the oracle statistic (true-class logit minus its known mean) separates members
    idx = leaky.labels[:, None, None]
    true = np.take_along_axis(leaky.target_logits, np.broadcast_to(idx, (N, A, 1)), -1)[..., 0].mean(1)
    assert auc(leaky.is_member, true) > 0.6


def test_registry_has_the_documented_names():
    for name in ["loss", "confidence", "entropy", "modified_entropy", "scaled_logit", "trained_lr", "trained_gb", "shokri"]:
        assert name in ATTACKS


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_conformance(name, leaky, null):
    cls = attack_class(name)
    assert cls.name == name and cls.description

    scores = get_attack(name).fit_score(leaky)
    assert isinstance(scores, np.ndarray) and scores.shape == (N,) and scores.dtype == np.float64
    assert np.all(np.isfinite(scores))

    # deterministic: a fresh instance on the same input gives the same scores
    np.testing.assert_array_equal(get_attack(name).fit_score(leaky), scores)

    # higher scores for members in a leaky world
    assert auc(leaky.is_member, scores) > 0.6, f"{name}: AUC {auc(leaky.is_member, scores):.3f} on the leaky world"

    # no claim of leakage in a null world
    null_scores = get_attack(name).fit_score(null)
    assert np.all(np.isfinite(null_scores))
    assert abs(auc(null.is_member, null_scores) - 0.5) < 0.06

    # never reads the evaluation ground truth unless it declares "membership"
    if "membership" not in cls.requires:
        np.testing.assert_array_equal(get_attack(name).fit_score(without(leaky, "is_member")), scores)


def permuted(bundle: SignalBundle, perm: np.ndarray) -> SignalBundle:
    """The same world with its audit examples in another order (population untouched)."""
    kw = {f: getattr(bundle, f) for f in SignalBundle.__dataclass_fields__}
    for f in ("labels", "target_logits", "is_member"):
        kw[f] = kw[f][perm]
    kw["ref_logits"] = kw["ref_logits"][:, perm]
    kw["ref_is_member"] = kw["ref_is_member"][:, perm]
    return SignalBundle(**kw)


@pytest.mark.parametrize("name", [a for a in ATTACKS if "membership" not in attack_class(a).requires])
def test_attack_is_order_equivariant(name, small):
    """Reordering the examples reorders the scores (cross-fitted attacks are exempt: folds follow order)."""
    perm = np.random.default_rng(0).permutation(small.n_examples)
    scores = get_attack(name).fit_score(small)
    np.testing.assert_allclose(get_attack(name).fit_score(permuted(small, perm)), scores[perm], rtol=1e-9, atol=1e-12)


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


@pytest.fixture(scope="module")
def small() -> SignalBundle:
    return make_world(1.0, seed=3, n=200)


@pytest.mark.parametrize("kind", list(_MINIMAL))
@pytest.mark.parametrize("name", ATTACKS)
def test_attack_respects_requires(name, kind, small):
    bundle = without(small, *_MINIMAL[kind])
    cls = attack_class(name)
    reason = missing_requirements(name, bundle)
    if set(cls.requires) <= _PROVIDES[kind]:
        assert reason is None
        scores = get_attack(name).fit_score(bundle)  # runs on the least it claims to need
        assert scores.shape == (200,) and np.all(np.isfinite(scores))
    else:
        assert isinstance(reason, str) and reason
        with pytest.raises(InputError):  # never a bare TypeError/AttributeError on a missing field
            get_attack(name).fit_score(bundle)


def test_missing_requirements_full_bundle(small):
    for name in ATTACKS:
        assert missing_requirements(name, small) is None
