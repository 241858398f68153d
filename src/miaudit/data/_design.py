"""The membership game's random design (field notes §1).

* :func:`draw_membership` splits N examples into members and non-members for one target model.
* :func:`balanced_membership` draws the K x N membership matrix of K reference models in which
  every example is IN for exactly K/2 models (LiRA's ``keep`` matrix with pkeep = 0.5, Carlini et
  al. 2022) *and* every model is trained on N/2 examples (N/2 +- 1/2 when N is odd), so that any
  model can serve as the target against the other K - 1 ("paired model" design).

Both are deterministic functions of their seed.
"""

from __future__ import annotations

import numpy as np

from .._errors import InputError

__all__ = ["draw_membership", "balanced_membership"]

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
    """Balanced K x N membership matrix for K reference models (K even).

    Properties (exact, for every seed):

    * every example is IN for exactly ``K / 2`` models (column sums);
    * every model is IN on ``floor(N / 2)`` or ``ceil(N / 2)`` examples (row sums);
    * for a fixed example, the set of models it is IN for is a uniformly random ``K/2``-subset.

    Construction: a random permutation of the examples is cut into consecutive pairs; the first
    example of a pair gets a uniformly random ``K/2``-subset of models and the second its
    complement, so each model receives exactly one example of every pair. With N odd the last
    example gets its own random ``K/2``-subset. Memory: one (N/2, K) bool array.

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
    order = rng.permutation(n)
    n_pairs = n // 2
    n_rows = n_pairs + (n % 2)
    base = np.zeros((n_rows, k), dtype=bool)
    base[:, : k // 2] = True
    patterns = rng.permuted(base, axis=1)  # each row a uniformly random K/2-subset
    out = np.empty((k, n), dtype=bool)
    first = order[0 : 2 * n_pairs : 2]
    second = order[1 : 2 * n_pairs : 2]
    out[:, first] = patterns[:n_pairs].T
    out[:, second] = ~patterns[:n_pairs].T
    if n % 2:
        out[:, order[-1]] = patterns[-1]
    return out
