"""The game's random design: exact balance properties, determinism, uniformity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miaudit._errors import InputError
from miaudit.audit import balanced_membership, draw_membership


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 500), seed=st.integers(0, 2**32 - 1))
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
@given(n=st.integers(2, 300), half_k=st.integers(1, 20), seed=st.integers(0, 2**32 - 1))
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
    from miaudit.audit import partner_of

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
    with pytest.raises(InputError, match=r"seed: expected an integer in \[0, 2\*\*32\), got 'a'"):
        draw_membership(10, seed="a")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"seed: expected an integer in \[0, 2\*\*32\), got -1"):
        balanced_membership(10, 2, seed=-1)
    with pytest.raises(InputError, match=r"n: expected an integer >= 2, got 1"):
        draw_membership(1, seed=0)
    # SeedSequence accepted
    assert draw_membership(10, seed=np.random.SeedSequence(3)).sum() == 5


# ----------------------------------------------------------------------------- references of a target


def test_target_bundle_takes_one_model_as_target_and_leaves_out_its_partner() -> None:
    from miaudit.audit import target_bundle

    rng = np.random.default_rng(3)
    n, k, a, c = 12, 4, 1, 3
    mem = balanced_membership(n, k, seed=0)
    logits = rng.normal(size=(k, n, a, c))
    labels = rng.integers(0, c, n)
    b = target_bundle(labels, logits, mem, 2)
    np.testing.assert_array_equal(b.target_logits, logits[2])
    np.testing.assert_array_equal(b.is_member, mem[2])
    # model 3 is model 2's complementary partner: left out so reference counts do not leak
    np.testing.assert_array_equal(b.ref_is_member, mem[[0, 1]])
    np.testing.assert_allclose(b.ref_logits, logits[[0, 1]].astype(np.float32))
    assert b.meta["target_model"] == 2 and b.meta["references"] == [0, 1]
    with pytest.raises(InputError, match=r"target: expected a model index in \[0, 4\), got 7"):
        target_bundle(labels, logits, mem, 7)
    with pytest.raises(InputError, match=r"logits/is_member: expected \(K, N, \[A,\] C\) and \(K, N\)"):
        target_bundle(labels, logits, mem[:2], 0)


def test_two_models_are_refused_with_the_reason() -> None:
    from miaudit.audit import references_for_target

    mem = balanced_membership(20, 2, seed=0)
    with pytest.raises(InputError, match=r"needs K >= 4, got K = 2: the target's complementary partner must be left out"):
        references_for_target(mem, 0)


def test_a_balanced_design_not_in_pairs_is_refused() -> None:
    """LiRA's reference code draws keep = argsort(rand) < K/2: balanced, but no model has a partner, so a
    member of the target has K/2 - 1 IN references and a non-member K/2."""
    from miaudit.audit import references_for_target

    keep = np.argsort(np.random.default_rng(0).random((8, 200)), axis=0) < 4
    with pytest.raises(InputError, match=r"model 0 cannot be the target of this design: the number of IN references "
                       r"depends on the target's membership \(members 3.00, non-members 4.00"):
        references_for_target(keep, 0)


def test_independent_random_halves_are_a_sound_design() -> None:
    from miaudit.audit import references_for_target

    rng = np.random.default_rng(1)
    mem = np.stack([rng.permutation(400) < 200 for _ in range(6)])
    assert references_for_target(mem, 0) == [1, 2, 3, 4, 5]


def test_check_references_flags_count_dependence_and_mirrors() -> None:
    from miaudit.audit import check_references

    m = balanced_membership(300, 8, seed=4)
    ok = check_references(m[0], m[2:])
    assert ok.ok and ok.mean_in_members == ok.mean_in_nonmembers == 3.0 and ok.p_value == 1.0
    kept_partner = check_references(m[0], m[1:])  # the partner kept: counts reveal membership
    assert not kept_partner.ok and kept_partner.mirrors == (0,)
    assert "the number of IN references depends on the target's membership" in kept_partner.warnings[0]
    with_target = check_references(m[0], np.vstack([m[0], m[2:]]))
    assert with_target.mirrors == (0,) and "the target itself or its partner" in with_target.warnings[-1]
    d = ok.to_dict()
    assert d["warnings"] == [] and d["n_references"] == 6


def test_check_references_rarely_alarms_on_independent_designs() -> None:
    """1e-3 alarm level: 300 independent designs, no alarm expected (P(any) ~ 0.26 would need 1 in 1000)."""
    from miaudit.audit import check_references

    rng = np.random.default_rng(5)
    alarms = 0
    for _ in range(300):
        tgt = rng.permutation(200) < 100
        refs = np.stack([rng.permutation(200) < 100 for _ in range(8)])
        alarms += not check_references(tgt, refs).ok
    assert alarms <= 3
