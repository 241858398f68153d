"""Synthetic worlds shared by the API/CLI tests: bundles whose leakage is known."""

from __future__ import annotations

import numpy as np


def leaky_world(n: int = 600, k: int = 8, c: int = 3, shift: float = 1.5, seed: int = 0, null: bool = False):
    """Per-example Gaussian scaled logits; members shifted up by ``shift`` (0 leakage if ``null``).

    Returns a dict of arrays with the bundle's keys (labels, target_logits (N, C),
    is_member, ref_logits (K, N, C), ref_is_member).
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    base = rng.normal(2.0, 1.5, n)  # per-example difficulty
    d = 0.0 if null else shift

    def logits_for(is_member: np.ndarray) -> np.ndarray:
        phi = base + d * is_member + rng.normal(0, 0.5, n)
        z = rng.normal(0, 0.3, (n, c))
        z[np.arange(n), labels] = phi + np.log(c - 1)
        return z

    is_member = np.zeros(n, bool)
    is_member[rng.permutation(n)[: n // 2]] = True
    ref_is_member = np.zeros((k, n), bool)
    for i in range(n):
        ref_is_member[rng.permutation(k)[: k // 2], i] = True
    return {
        "labels": labels,
        "target_logits": logits_for(is_member),
        "is_member": is_member,
        "ref_logits": np.stack([logits_for(ref_is_member[j]) for j in range(k)]).astype(np.float32),
        "ref_is_member": ref_is_member,
    }
