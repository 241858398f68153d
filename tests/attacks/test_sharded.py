"""LiRA with its reference pass split over shards of examples equals the unsharded attack, bit for bit
(issue 12). The same through Ray tasks on a real cluster: ``tests/training/test_ray.py``."""

from __future__ import annotations

import numpy as np
import pytest

from miaudit import InputError
from miaudit.attacks import get_attack
from miaudit.attacks._sharded import sharded_fit_score

from .test_reference import gaussian_world


@pytest.mark.parametrize("name", ["lira_online", "lira_offline"])
@pytest.mark.parametrize("n_queries", [1, 2])
def test_sharded_equals_unsharded(name: str, n_queries: int) -> None:
    bundle, _, _ = gaussian_world(500, 6, seed=13, n_queries=n_queries, population=30)
    whole = get_attack(name).fit_score(bundle)
    for n_shards, chunk in ((1, None), (3, 37), (7, 1), (500, None), (900, None)):
        attack = get_attack(name, chunk_size=chunk)
        np.testing.assert_array_equal(sharded_fit_score(attack, bundle, n_shards=n_shards), whole)
        assert attack.n_fitted_ == 500


def test_sharded_refuses_other_attacks_and_bad_shards() -> None:
    bundle, _, _ = gaussian_world(60, 4, seed=1, n_queries=1, population=10)
    with pytest.raises(InputError, match=r"sharded scoring: expected lira_online or lira_offline, got 'rmia'"):
        sharded_fit_score(get_attack("rmia"), bundle, n_shards=2)
    with pytest.raises(InputError, match=r"n_shards: expected an int >= 1, got 0"):
        sharded_fit_score(get_attack("lira_online"), bundle, n_shards=0)
    with pytest.raises(InputError, match=r"executor: expected 'inline' or 'ray', got 'dask'"):
        sharded_fit_score(get_attack("lira_online"), bundle, n_shards=2, executor="dask")
