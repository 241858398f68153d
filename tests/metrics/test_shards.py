"""Metrics merged from shard counts (issue 12): exactly the unsharded figures, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from miaudit import InputError
from miaudit.metrics import (
    auc_interval,
    auc_score,
    confusion_at_thresholds,
    confusion_from_counts,
    merge_counts,
    score_counts,
)
from miaudit.metrics._roc import _advantage, _auc, _auc_interval, delong_sd, tpr_at_fpr_from


def _world(n: int, seed: int, *, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = rng.random(n) < 0.4
    s = rng.normal(size=n) + 0.7 * m
    if ties:  # rounded scores: many ties inside and across shards
        s = np.round(s, 1)
    return m, s


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n_shards", [1, 2, 7, 50])
def test_merged_shard_counts_give_the_unsharded_metrics_exactly(ties: bool, n_shards: int) -> None:
    m, s = _world(3000, n_shards, ties=ties)
    rng = np.random.default_rng(99)
    order = rng.permutation(m.size)  # shards of random examples and uneven sizes
    cuts = np.sort(rng.choice(np.arange(1, m.size), size=n_shards - 1, replace=False))
    parts = [score_counts(m[idx], s[idx]) for idx in np.split(order, cuts)]
    merged = confusion_from_counts(merge_counts(parts))
    full = confusion_at_thresholds(m, s)
    for field in ("thresholds", "tp", "fp"):
        assert np.array_equal(getattr(merged, field), getattr(full, field)), field
    assert (merged.n_members, merged.n_nonmembers) == (full.n_members, full.n_nonmembers)
    auc = _auc(merged)
    assert auc == auc_score(m, s) and _auc_interval(merged, auc, 0.95) == auc_interval(m, s)
    assert delong_sd(merged, auc) == delong_sd(full, _auc(full))
    assert _advantage(merged) == _advantage(full)
    for fpr in (0.001, 0.01, 0.1):
        assert tpr_at_fpr_from(merged, fpr, 0.95) == tpr_at_fpr_from(full, fpr, 0.95)


def test_merging_is_associative_and_one_class_shards_are_fine() -> None:
    m, s = _world(400, 3, ties=True)
    members_only = score_counts(m[m], s[m])
    nonmembers_only = score_counts(m[~m], s[~m])
    assert members_only.n_nonmembers == 0 and nonmembers_only.n_members == 0
    a = merge_counts([merge_counts([members_only]), nonmembers_only])
    b = score_counts(m, s)
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("values", "members", "nonmembers"))
    assert a.nbytes == 24 * a.values.size and np.all(np.diff(a.values) < 0)


def test_bad_shards() -> None:
    with pytest.raises(InputError, match=r"scores: expected finite"):
        score_counts(np.array([True, True]), np.array([np.nan, 1.0]))
    with pytest.raises(InputError, match=r"expected two arrays of shape \(N,\)"):
        score_counts(np.array([True]), np.array([1.0, 2.0]))
    with pytest.raises(InputError, match=r"merge_counts: expected at least one shard"):
        merge_counts([])
    with pytest.raises(InputError, match=r"merge_counts: part 0 is a ndarray, expected ScoreCounts"):
        merge_counts([np.zeros(3)])  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"scores: expected finite"):  # a two-class shard: the metrics' check
        score_counts(np.array([True, False]), np.array([np.inf, 1.0]))
