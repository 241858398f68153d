"""Reference attacks over shards of examples, e.g. as Ray tasks (issue 12, "scoring at scale").

The expensive part of LiRA is one pass over the K reference models' logits of every example, ``O(K N A C)``;
it only produces per-example IN/OUT moments (counts, means, sums of squares; ``O(N A)``), each example's
from its own column of the references. So the pass splits over shards of examples: :func:`shard_moments`
computes one shard's moments (a pure function of that shard's reference logits, membership and labels:
what a Ray task runs), the driver concatenates them in order and finishes the fit (global variances, the
empirical-Bayes prior, the query correlation on a subsample) and scores the target. The result equals
``attack.fit_score(bundle)`` bit for bit (``tests/training/test_ray.py``), since the moments of an example
do not depend on which examples share its chunk.

:func:`sharded_fit_score` runs the shards inline or as Ray tasks (``executor="ray"``, local Ray or
``address``). Each Ray task gets its shard through the object store (one ``ray.put`` per shard); on a
real cluster the shards would rather be read by the workers from shared storage (``docs/scale.md``).
LiRA online and offline only: RMIA's pass also needs the population statistics (not sharded yet).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError
from . import _reference_stats as rs
from .lira import _Lira

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["merge_moments", "shard_moments", "sharded_fit_score"]

_KEYS = ("n_in", "n_out", "mean_in", "mean_out", "ss_in", "ss_out")


def shard_moments(ref_logits: np.ndarray, ref_is_member: np.ndarray, labels: np.ndarray,
                  chunk_size: int | None = None) -> dict[str, np.ndarray]:
    """Per-example IN/OUT moments of the scaled logits of one shard: ``ref_logits`` (K, n, A, C),
    ``ref_is_member`` (K, n), ``labels`` (n,). Streams ``chunk_size`` examples at a time, one model at a time."""
    n, a = ref_logits.shape[1], ref_logits.shape[2]
    size = chunk_size or rs.auto_chunk_size(a, ref_logits.shape[3])
    out: dict[str, np.ndarray] = {k: np.zeros((n, a)) for k in _KEYS[2:]}
    out["n_in"], out["n_out"] = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    for sl in rs.iter_chunks(n, size):
        lab = labels[sl]
        vals = (rs.ref_scaled_logit(ref_logits[k, sl], lab) for k in range(ref_logits.shape[0]))
        for key, v in zip(_KEYS, rs.stream_moments(vals, ref_is_member[:, sl])):
            out[key][sl] = v
    return out


def merge_moments(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The moments of consecutive shards, in order."""
    return {k: np.concatenate([p[k] for p in parts]) for k in _KEYS}


def _ray_shard(ref_logits: np.ndarray, ref_is_member: np.ndarray, labels: np.ndarray,
               chunk_size: int | None) -> dict[str, np.ndarray]:
    from ..training._work import pin_threads

    pin_threads()
    return shard_moments(ref_logits, ref_is_member, labels, chunk_size)


def sharded_fit_score(attack: Any, bundle: SignalBundle, *, n_shards: int, executor: str = "inline",
                      address: str | None = None, num_cpus: float = 1.0) -> np.ndarray:
    """``attack.fit(bundle)`` with the reference pass split over ``n_shards`` shards of examples, then
    ``attack.score(bundle)``; identical to ``attack.fit_score(bundle)``."""
    if not isinstance(attack, _Lira):
        raise InputError(f"sharded scoring: expected lira_online or lira_offline, got "
                         f"{getattr(attack, 'name', type(attack).__name__)!r}; score other attacks unsharded")
    if isinstance(n_shards, bool) or not isinstance(n_shards, int) or n_shards < 1:
        raise InputError(f"n_shards: expected an int >= 1, got {n_shards!r}")
    if executor not in ("inline", "ray"):
        raise InputError(f"executor: expected 'inline' or 'ray', got {executor!r}")
    attack._validate()
    ref_logits, ref_is_member = attack._check_bundle(bundle)
    rs.check_chunk_size(attack.chunk_size, name=attack.name)
    labels = np.asarray(bundle.labels)
    bounds = np.linspace(0, bundle.n_examples, min(n_shards, bundle.n_examples) + 1).astype(int)
    shards = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    if executor == "inline":
        parts = [shard_moments(ref_logits[:, sl], ref_is_member[:, sl], labels[sl], attack.chunk_size)
                 for sl in shards]
    else:
        from ..training._ray import connect_ray

        ray, started = connect_ray(address, num_cpus=num_cpus * len(shards))
        try:
            remote = ray.remote(_ray_shard).options(num_cpus=num_cpus, max_retries=3, retry_exceptions=False)
            refs = [remote.remote(ray.put(np.ascontiguousarray(ref_logits[:, sl])),
                                  np.ascontiguousarray(ref_is_member[:, sl]), labels[sl], attack.chunk_size)
                    for sl in shards]
            parts = ray.get(refs)
        finally:
            if started:
                ray.shutdown()
    attack._fit_moments(bundle, merge_moments(parts))
    scores: np.ndarray = attack.score(bundle)
    return scores
