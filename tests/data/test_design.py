"""The game's random design: exact balance properties, determinism, uniformity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miaudit._errors import InputError
from miaudit.data import balanced_membership, draw_membership


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 500), seed=st.integers(0, 2**32))
def test_draw_membership_exact_half(n: int, seed: int) -> None:
    m = draw_membership(n, seed=seed)
    assert m.dtype == bool and m.shape == (n,)
    assert int(m.sum()) == n // 2
    assert np.array_equal(m, draw_membership(n, seed=seed))


def test_draw_membership_depends_on_seed_and_is_uniform() -> None:
    n = 6
    draws = np.array([draw_membership(n, seed=s) for s in range(4000)])
    assert not np.array_equal(draws[0], draws[1]) or not np.array_equal(draws[1], draws[2])
    # each position is a member with probability 1/2 (4000 draws: sd = 0.0079)
    assert np.all(np.abs(draws.mean(axis=0) - 0.5) < 0.04)


@settings(max_examples=80, deadline=None)
@given(n=st.integers(2, 300), half_k=st.integers(1, 20), seed=st.integers(0, 2**32))
def test_balanced_membership_properties(n: int, half_k: int, seed: int) -> None:
    k = 2 * half_k
    m = balanced_membership(n, k, seed=seed)
    assert m.dtype == bool and m.shape == (k, n)
    assert np.all(m.sum(axis=0) == half_k)  # every example IN for exactly K/2 models
    rows = m.sum(axis=1)
    assert np.all((rows == n // 2) | (rows == (n + 1) // 2))  # every model trained on N/2 +- 1/2
    assert np.array_equal(m, balanced_membership(n, k, seed=seed))


def test_balanced_membership_marginals_uniform() -> None:
    # Models come in complementary pairs (0, 1), (2, 3): a fixed example is IN for exactly one model
    # of each pair, chosen uniformly and independently across pairs (4 patterns, ~1/4 each).
    counts: dict[tuple[bool, ...], int] = {}
    for s in range(1200):
        m = balanced_membership(5, 4, seed=s)
        assert np.array_equal(m[1], ~m[0]) and np.array_equal(m[3], ~m[2])
        col = tuple(m[:, 2].tolist())
        counts[col] = counts.get(col, 0) + 1
    assert len(counts) == 4
    assert all(abs(c / 1200 - 1 / 4) < 0.05 for c in counts.values())


def test_partner_leaves_reference_counts_independent_of_target_membership() -> None:
    from miaudit.data import partner_of

    m = balanced_membership(101, 8, seed=3)
    for t in range(8):
        p = partner_of(m, t)
        assert p == (t ^ 1)
        refs = [k for k in range(8) if k not in (t, p)]
        n_in = m[refs].sum(axis=0)
        assert np.all(n_in == 3)  # K/2 - 1 for members and non-members of t alike
    assert partner_of(np.array([[True, False], [True, True]]), 0) is None


def test_balanced_membership_differs_across_seeds() -> None:
    assert not np.array_equal(balanced_membership(50, 8, seed=0), balanced_membership(50, 8, seed=1))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((10, 3), r"n_models: expected an even number.*got 3; use 2 or 4"),
        ((10, 0), r"n_models: expected an integer >= 2, got 0"),
        ((1, 2), r"n_examples: expected an integer >= 2, got 1"),
        ((10.0, 2), r"n_examples: expected an integer >= 2, got 10.0"),
        ((10, True), r"n_models: expected an integer"),
    ],
)
def test_balanced_membership_errors(args: tuple, match: str) -> None:
    with pytest.raises(InputError, match=match):
        balanced_membership(*args, seed=0)


def test_seed_errors() -> None:
    with pytest.raises(InputError, match=r"seed: expected an integer seed, got 'a'"):
        draw_membership(10, seed="a")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"seed: expected a non-negative integer, got -1"):
        balanced_membership(10, 2, seed=-1)
    with pytest.raises(InputError, match=r"n: expected an integer >= 2, got 1"):
        draw_membership(1, seed=0)
    # SeedSequence accepted
    assert draw_membership(10, seed=np.random.SeedSequence(3)).sum() == 5
