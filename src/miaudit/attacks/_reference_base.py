"""Shared plumbing of the reference-model attacks (field notes §3): LiRA (:mod:`.lira`), RMIA
(:mod:`.rmia`), Attack-R and difficulty calibration (:mod:`.calibration`).

Every reference attack reads the reference part of a :class:`~miaudit.data.SignalBundle`:
``ref_logits`` ``(K, N, A, C)`` and ``ref_is_member`` ``(K, N)`` (reference model ``k`` was trained on example
``i`` iff ``ref_is_member[k, i]``), plus ``target_logits`` ``(N, A, C)`` to score. ``bundle.is_member`` is never
read. Counts of IN and OUT references may differ per example and may be small or zero (in a full audit
each target is scored with the other ``K - 1`` models, so ``K = 4`` leaves 1 or 2 IN references): every
estimator has a documented fallback and every score is finite.

Work is streamed over chunks of ``chunk_size`` examples (``None``: about 1 MiB of float64 per model and
chunk); within a chunk the reference models are visited one at a time (vectorised over examples and
queries, float64 accumulation in a fixed order), so no ``(K, n, A)`` float64 block is built and the
reference logits are never copied. ``fit`` keeps only per-example statistics of size ``O(N * A)``.
Chunking does not change any result, bit for bit (global statistics are computed from the full
per-example arrays after the pass).

This module holds the bundle validation, the chunk stream (:class:`_Chunk`) and the per-example
moments (:func:`_moments`, :func:`_pooled_var`, :func:`_spread`); the numerical kernels are in
:mod:`._reference_stats`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._errors import InputError
from . import _reference_stats as rs
from ._base import Attack
from ._features import check_reference

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__: list[str] = []


class _ReferenceAttack(Attack):
    """Validation, chunking and the per-chunk signal stream shared by the reference attacks."""

    requires: ClassVar[frozenset[str]] = frozenset({"reference"})

    chunk_size: int | None

    def _check_bundle(self, bundle: SignalBundle) -> tuple[np.ndarray, np.ndarray]:
        """The bundle's reference part, checked by the one attack-side check (:func:`._features.check_reference`)."""
        ref_logits, ref_is_member = check_reference(bundle, self.name)
        if bundle.n_classes < 2:
            raise InputError(
                f"{self.name}: bundle.target_logits has C = {bundle.n_classes} class; reference attacks need C >= 2"
            )
        return ref_logits, ref_is_member

    def _chunk(self, bundle: SignalBundle) -> int:
        rs.check_chunk_size(self.chunk_size, name=self.name)
        if self.chunk_size is not None:
            return int(self.chunk_size)
        return rs.auto_chunk_size(bundle.n_queries, bundle.n_classes)

    def _chunks(self, bundle: SignalBundle) -> Iterator[_Chunk]:
        """Consecutive chunks of examples: views into the reference logits, no copies."""
        ref_logits, ref_is_member = self._check_bundle(bundle)
        labels = np.asarray(bundle.labels)
        for sl in rs.iter_chunks(bundle.n_examples, self._chunk(bundle)):
            yield _Chunk(sl, ref_logits[:, sl], ref_is_member[:, sl], labels[sl])

    def _target_phi(self, bundle: SignalBundle) -> np.ndarray:
        """Target scaled logits ``(N, A)`` float64."""
        labels = np.asarray(bundle.labels)
        tl = bundle.target_logits
        out = np.empty((bundle.n_examples, bundle.n_queries))
        for sl in rs.iter_chunks(bundle.n_examples, self._chunk(bundle)):
            out[sl] = rs.ref_scaled_logit(tl[sl], labels[sl])
        return out

    def _check_fitted(self, bundle: SignalBundle, n_fitted: int | None) -> None:
        if n_fitted is None:
            raise InputError(f"{self.name}: score() was called before fit(); call fit(bundle) or fit_score(bundle)")
        if bundle.n_examples != n_fitted:
            raise InputError(
                f"{self.name}: fitted on {n_fitted} examples but asked to score {bundle.n_examples}; "
                "score the same bundle the attack was fitted on"
            )


class _Chunk:
    """A chunk of examples: ``sl`` into the bundle, reference logits ``(K, n, A, C)``, ``is_member (K, n)``."""

    __slots__ = ("sl", "logits", "is_member", "labels")

    def __init__(self, sl: slice, logits: np.ndarray, is_member: np.ndarray, labels: np.ndarray) -> None:
        self.sl, self.logits, self.is_member, self.labels = sl, logits, is_member, labels

    def phis(self) -> Iterator[np.ndarray]:
        """Each reference model's scaled logits ``(n, A)`` float64, one model at a time."""
        for k in range(self.logits.shape[0]):
            yield rs.ref_scaled_logit(self.logits[k], self.labels)

    def phi_rows(self, rows: np.ndarray) -> np.ndarray:
        """All models' scaled logits ``(K, r, A)`` on a few rows of the chunk."""
        return rs.ref_scaled_logit(self.logits[:, rows], self.labels[rows])


def _moments(attack: _ReferenceAttack, bundle: SignalBundle, transform: Any = None) -> dict[str, np.ndarray]:
    """Stream the references once: per-example IN/OUT moments of ``transform(phi)`` (default phi)."""
    n = bundle.n_examples
    a = bundle.n_queries if transform is None else 1
    out: dict[str, np.ndarray] = {k: np.zeros((n, a)) for k in ("mean_in", "mean_out", "ss_in", "ss_out")}
    out["n_in"] = np.zeros(n, dtype=np.int64)
    out["n_out"] = np.zeros(n, dtype=np.int64)
    for ch in attack._chunks(bundle):
        sl = ch.sl
        vals = ch.phis() if transform is None else (transform(phi) for phi in ch.phis())
        n_in, n_out, m_in, m_out, ss_in, ss_out = rs.stream_moments(vals, ch.is_member)
        out["n_in"][sl], out["n_out"][sl] = n_in, n_out
        out["mean_in"][sl], out["mean_out"][sl] = m_in, m_out
        out["ss_in"][sl], out["ss_out"][sl] = ss_in, ss_out
    return out


def _pooled_var(ss: np.ndarray, df: np.ndarray) -> np.ndarray | None:
    """Per-query pooled within-group variance ``sum ss / sum df`` ((A,)), or None without any df."""
    tot = df.sum()
    if tot <= 0:
        return None
    var: np.ndarray = np.maximum(ss.sum(axis=0) / tot, rs.VAR_FLOOR)
    return var


def _spread(means: np.ndarray, have: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-query mean and variance across examples of ``means[have]`` (fallback 0 and 1)."""
    if have.sum() == 0:
        return np.zeros(means.shape[1]), np.ones(means.shape[1])
    sel = means[have]
    var = sel.var(axis=0) if sel.shape[0] > 1 else np.ones(means.shape[1])
    return sel.mean(axis=0), np.maximum(var, rs.VAR_FLOOR)

