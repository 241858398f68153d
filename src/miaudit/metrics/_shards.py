"""ROC figures from scores computed in shards (Ray tasks, files, machines): merge counts, not scores.

Every ROC figure derives from one primitive, the confusion counts at every distinct threshold
(:class:`~miaudit.metrics.Confusion`). Those are cumulative sums of, per distinct score value, how many
members and non-members have that score. So a shard of examples only has to report its
:class:`ScoreCounts` (distinct scores, members per score, non-members per score); :func:`merge_counts`
adds them up by value and :func:`confusion_from_counts` rebuilds the exact :class:`Confusion` of the whole
set: AUC, its DeLong interval, TPR at FPR with its intervals and the advantage are then identical, bit for
bit, to the figures computed on all scores at once, whatever the shards (``tests/metrics/test_shards.py``).

Sizes: a shard's counts have one row (8 + 8 + 8 bytes) per distinct score, at most its number of
examples; with continuous scores that is no smaller than the scores, but it never holds the examples'
features, logits or membership, and shards can be merged pairwise in a tree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import InputError
from ._checks import check_scores
from ._roc import Confusion

__all__ = ["ScoreCounts", "confusion_from_counts", "merge_counts", "score_counts"]


@dataclass(frozen=True, eq=False)
class ScoreCounts:
    """Per distinct score (``values``, strictly decreasing float64): members and non-members with it (int64)."""

    values: np.ndarray
    members: np.ndarray
    nonmembers: np.ndarray

    @property
    def n_members(self) -> int:
        return int(self.members.sum())

    @property
    def n_nonmembers(self) -> int:
        return int(self.nonmembers.sum())

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes + self.members.nbytes + self.nonmembers.nbytes)


def _check_shard(is_member: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`~._checks.check_scores`, except that a shard may hold members only or non-members only."""
    m, s = np.asarray(is_member), np.asarray(scores)
    if m.ndim == 1 and m.size and (m.dtype == bool or m.dtype.kind in "iuf") and np.isin(m, (0, 1)).all() \
            and not (m.all() or not m.any()):
        return check_scores(m, s)
    if m.ndim != 1 or s.shape != m.shape:
        raise InputError(f"scores and is_member: expected two arrays of shape (N,), got {s.shape} and {m.shape}; "
                         "pass one score and one flag per example")
    if m.dtype != bool and not (m.dtype.kind in "iuf" and np.isin(m, (0, 1)).all()):
        raise InputError("is_member: expected booleans or 0/1; encode members as 1/True and non-members as 0/False")
    if s.dtype.kind not in "iuf" or not np.isfinite(s).all():
        raise InputError("scores: expected finite real numbers; replace NaN/inf scores before counting")
    return m.astype(bool), s.astype(np.float64)


def score_counts(is_member: Any, scores: Any) -> ScoreCounts:
    """The counts of one shard (checked like every metric's input: finite scores, bool membership)."""
    m, s = _check_shard(is_member, scores)
    values, inverse = np.unique(s.astype(np.float64), return_inverse=True)
    members = np.bincount(inverse, weights=m, minlength=values.size).astype(np.int64)
    total = np.bincount(inverse, minlength=values.size).astype(np.int64)
    return ScoreCounts(values[::-1].copy(), members[::-1].copy(), (total - members)[::-1].copy())


def merge_counts(parts: Iterable[ScoreCounts]) -> ScoreCounts:
    """The counts of the union of the shards (exact: integer sums per distinct value)."""
    parts = list(parts)
    if not parts:
        raise InputError("merge_counts: expected at least one shard's ScoreCounts, got none")
    for i, p in enumerate(parts):
        if not isinstance(p, ScoreCounts):
            raise InputError(f"merge_counts: part {i} is a {type(p).__name__}, expected ScoreCounts "
                             "(from miaudit.metrics.score_counts)")
    values = np.concatenate([p.values for p in parts])
    uniq, inverse = np.unique(values, return_inverse=True)
    members = np.bincount(inverse, weights=np.concatenate([p.members for p in parts]).astype(np.float64),
                          minlength=uniq.size)
    nonmembers = np.bincount(inverse, weights=np.concatenate([p.nonmembers for p in parts]).astype(np.float64),
                             minlength=uniq.size)
    # float64 sums of integers are exact below 2**53 examples
    return ScoreCounts(uniq[::-1].copy(), np.rint(members[::-1]).astype(np.int64),
                       np.rint(nonmembers[::-1]).astype(np.int64))


def confusion_from_counts(counts: ScoreCounts) -> Confusion:
    """The :class:`Confusion` (every distinct threshold, ``+inf`` first) of the examples ``counts`` describe."""
    tp = np.zeros(counts.values.size + 1, dtype=np.int64)
    fp = np.zeros_like(tp)
    np.cumsum(counts.members, out=tp[1:])
    np.cumsum(counts.nonmembers, out=fp[1:])
    thresholds = np.empty(counts.values.size + 1, dtype=np.float64)
    thresholds[0] = np.inf
    thresholds[1:] = counts.values
    return Confusion(thresholds, tp, fp, int(tp[-1]), int(fp[-1]))
