"""The membership game's random design (field notes §1).

* :func:`draw_membership` splits N examples into members and non-members for one target model.
* :func:`balanced_membership` draws the K x N membership matrix of K models in which every example
  is IN for exactly K/2 models (LiRA's design with pkeep = 0.5, Carlini et al. 2022) and every model
  is trained on N/2 examples, as K/2 complementary pairs, so that any model can serve as the target
  against the others without the reference counts giving its membership away (:func:`partner_of`).

Both are deterministic functions of their seed.
"""

from __future__ import annotations

import numpy as np

from .._errors import InputError

__all__ = ["draw_membership", "balanced_membership", "partner_of"]

Seed = int | np.integer | np.random.SeedSequence


def _rng(seed: Seed, name: str = "seed") -> np.random.Generator:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer, np.random.SeedSequence)):
        raise InputError(f"{name}: expected an integer seed, got {seed!r}; pass e.g. seed=0")
    if isinstance(seed, (int, np.integer)) and int(seed) < 0:
        raise InputError(f"{name}: expected a non-negative integer, got {int(seed)}; pass e.g. seed=0")
    return np.random.default_rng(seed if isinstance(seed, np.random.SeedSequence) else int(seed))


def _count(value: object, name: str, *, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}; pass a whole number")
    if int(value) < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {int(value)}; use more examples/models")
    return int(value)


def draw_membership(n: int, *, seed: Seed) -> np.ndarray:
    """Random member/non-member split: a bool (n,) array with exactly ``n // 2`` True entries.

    Every subset of size ``n // 2`` is equally likely (a uniform random permutation).
    """
    n = _count(n, "n", minimum=2)
    rng = _rng(seed)
    out = np.zeros(n, dtype=bool)
    out[rng.permutation(n)[: n // 2]] = True
    return out


def balanced_membership(n_examples: int, n_models: int, *, seed: Seed) -> np.ndarray:
    """Balanced K x N membership matrix for K models (K even), built from complementary pairs.

    Models ``2j`` and ``2j + 1`` are trained on complementary halves of the pool: model ``2j`` on a
    uniformly random half, model ``2j + 1`` on the rest (with N odd, which of the two gets the
    extra example is a fair coin, so every example is IN for each model with probability 1/2). The K/2 halves are
    independent. Properties (exact, for every seed):

    * every example is IN for exactly ``K / 2`` models (one of each pair);
    * every model is IN on ``floor(N / 2)`` or ``ceil(N / 2)`` examples;
    * each model's training set is a uniformly random half of the pool.

    Why pairs: when model ``t`` plays the target against the others (LiRA's leave-one-out
    evaluation), a member of ``t`` would otherwise have K/2 - 1 IN references and a non-member
    K/2, so the *number* of IN references alone reveals membership to any estimator whose output
    depends on it (a variance widened for small samples, a smoothed percentile). Dropping the
    target's partner from the references (:func:`partner_of`) leaves K - 2 references in which
    every example is IN for exactly K/2 - 1, whatever its membership in the target.

    Returns
    -------
    ndarray of bool, shape (n_models, n_examples)
    """
    n = _count(n_examples, "n_examples", minimum=2)
    k = _count(n_models, "n_models", minimum=2)
    if k % 2:
        raise InputError(
            f"n_models: expected an even number of models (each example is IN for exactly half), got {k}; "
            f"use {k - 1} or {k + 1}"
        )
    rng = _rng(seed)
    out = np.empty((k, n), dtype=bool)
    for j in range(k // 2):
        half = np.zeros(n, dtype=bool)
        half[rng.permutation(n)[: n // 2]] = True
        if n % 2 and rng.random() < 0.5:  # odd N: either model of the pair gets the larger half
            half = ~half
        out[2 * j] = half
        out[2 * j + 1] = ~half
    return out


def partner_of(membership: np.ndarray, model: int) -> int | None:
    """Index of the model trained on exactly the complement of ``model``'s training set, or None."""
    m = np.asarray(membership, dtype=bool)
    comp = ~m[model]
    for k in range(m.shape[0]):
        if k != model and np.array_equal(m[k], comp):
            return k
    return None
