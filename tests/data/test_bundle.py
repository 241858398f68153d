"""SignalBundle.from_arrays: normalisation and every validation error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from miaudit._errors import InputError
from miaudit.data import SignalBundle
from miaudit.signals import probs_to_logits

N, C, K, A, M = 12, 3, 4, 2, 5


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.fixture
def arrays() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    ref_is_member = np.zeros((K, N), dtype=bool)
    ref_is_member[: K // 2] = True
    return {
        "labels": rng.integers(0, C, N),
        "target_logits": rng.normal(size=(N, C)),
        "is_member": np.arange(N) % 2 == 0,
        "ref_logits": rng.normal(size=(K, N, C)),
        "ref_is_member": ref_is_member,
    }


def test_normalised_shapes_and_dtypes(arrays: dict[str, Any]) -> None:
    b = SignalBundle.from_arrays(**arrays, meta={"model": "x"})
    assert b.labels.dtype == np.int64 and b.labels.shape == (N,)
    assert b.target_logits.dtype == np.float64 and b.target_logits.shape == (N, 1, C)
    assert b.ref_logits is not None and b.ref_logits.dtype == np.float32 and b.ref_logits.shape == (K, N, 1, C)
    assert b.is_member is not None and b.is_member.dtype == bool
    assert b.ref_is_member is not None and b.ref_is_member.dtype == bool and b.ref_is_member.shape == (K, N)
    assert (b.n_examples, b.n_queries, b.n_classes, b.n_references, b.n_population) == (N, 1, C, K, 0)
    np.testing.assert_array_equal(b.target_logits[:, 0], arrays["target_logits"])
    np.testing.assert_allclose(b.ref_logits[:, :, 0], arrays["ref_logits"], rtol=1e-6)
    assert b.meta == {"model": "x"}


def test_arrays_are_read_only_and_inputs_untouched(arrays: dict[str, Any]) -> None:
    b = SignalBundle.from_arrays(**arrays)
    with pytest.raises(ValueError):
        b.target_logits[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        b.labels[0] = 0
    arrays["labels"][0] = 0  # the caller's array stays writeable
    arrays["target_logits"][0, 0] = 5.0


def test_augmented_queries(arrays: dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    arrays["target_logits"] = rng.normal(size=(N, A, C))
    arrays["ref_logits"] = rng.normal(size=(K, N, A, C))
    b = SignalBundle.from_arrays(**arrays)
    assert b.n_queries == A and b.ref_logits is not None and b.ref_logits.shape == (K, N, A, C)


def test_probabilities_converted_with_probs_to_logits(arrays: dict[str, Any]) -> None:
    p = _softmax(arrays.pop("target_logits"))
    rp = _softmax(arrays.pop("ref_logits"))
    p[0] = [1.0, 0.0, 0.0]  # an exact zero stays finite
    b = SignalBundle.from_arrays(target_probs=p, ref_probs=rp, **arrays)
    np.testing.assert_array_equal(b.target_logits[:, 0], probs_to_logits(p))
    np.testing.assert_allclose(b.ref_logits[:, :, 0], probs_to_logits(rp).astype(np.float32))
    assert np.isfinite(b.target_logits).all() and np.isfinite(b.ref_logits).all()


def test_label_and_membership_encodings(arrays: dict[str, Any]) -> None:
    arrays["labels"] = arrays["labels"].astype(np.float32)  # whole numbers as floats are fine
    arrays["is_member"] = arrays["is_member"].astype(np.int8)  # 0/1 ints are fine
    arrays["ref_is_member"] = arrays["ref_is_member"].astype(float)
    b = SignalBundle.from_arrays(**arrays)
    assert b.labels.dtype == np.int64 and b.is_member is not None and b.is_member.dtype == bool
    assert int(b.is_member.sum()) == N // 2


def test_groups_population(arrays: dict[str, Any]) -> None:
    rng = np.random.default_rng(2)
    b = SignalBundle.from_arrays(
        **arrays,
        groups=np.array(["a", "b"] * (N // 2), dtype=object),
        population_probs=_softmax(rng.normal(size=(M, C))),
        population_labels=rng.integers(0, C, M),
        ref_population_logits=rng.normal(size=(K, M, C)),
    )
    assert b.groups is not None and b.groups.dtype.kind == "U"
    assert b.population_logits is not None and b.population_logits.shape == (M, 1, C)
    assert b.population_logits.dtype == np.float64
    assert b.ref_population_logits is not None and b.ref_population_logits.shape == (K, M, 1, C)
    assert b.ref_population_logits.dtype == np.float32
    assert b.n_population == M


def _mod(arrays: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(arrays)
    for k, v in changes.items():
        if v is _DROP:
            out.pop(k, None)
        else:
            out[k] = v
    return out


_DROP = object()
_rng = np.random.default_rng(9)
_P = _softmax(_rng.normal(size=(N, C)))

ERRORS: list[tuple[dict[str, Any], str]] = [
    # lengths
    ({"labels": np.zeros(N - 1, int)}, r"labels: expected 12 entries \(the length of target_logits\), got 11"),
    ({"is_member": np.ones(N - 1, bool)}, r"is_member: expected shape \(N,\), got shape \(11,\)"),
    ({"ref_logits": np.zeros((K, N + 1, C))}, r"ref_logits: expected N = 12 examples on axis 1"),
    ({"ref_is_member": np.ones((K, N - 1), bool)}, r"ref_is_member: expected shape \(K, N\) = \(4, 12\), got shape \(4, 11\)"),
    ({"ref_is_member": np.ones((K + 1, N), bool)}, r"ref_is_member: expected shape \(K, N\) = \(4, 12\), got shape \(5, 12\)"),
    ({"ref_logits": np.zeros((K, N, C + 1))}, r"ref_logits: expected C = 3 classes on the last axis"),
    # labels
    ({"labels": np.full(N, 3)}, r"labels: expected class indices in \[0, 3\).*found 3"),
    ({"labels": np.full(N, -1)}, r"labels: expected class indices in \[0, 3\).*found -1"),
    ({"labels": np.full(N, 0.5)}, r"labels: expected integer class indices, got non-integer floats"),
    ({"labels": np.array(["a"] * N)}, r"labels: expected integer class indices, got dtype <U1"),
    ({"labels": np.full(N, np.nan)}, r"labels: expected integer class indices, found NaN/inf"),
    ({"labels": np.zeros((N, 1), int)}, r"labels: expected a 1-D integer array \(N,\), got shape \(12, 1\)"),
    ({"labels": [[0, 1], [1]]}, r"labels: could not be read as an array"),
    ({"labels": "012"}, r"labels: expected an array, got str"),
    # non-finite
    ({"target_logits": np.full((N, C), np.nan)}, r"target_logits: expected finite values, found 36 NaN/inf"),
    ({"target_logits": np.full((N, C), np.inf)}, r"target_logits: expected finite values"),
    ({"ref_logits": np.full((K, N, C), -np.inf)}, r"ref_logits: expected finite values"),
    ({"ref_logits": np.full((K, N, C), 1e300)}, r"ref_logits: expected finite values.*after conversion to float32"),
    # probabilities
    ({"target_logits": _DROP, "target_probs": _P * 3.0}, r"target_probs: expected probabilities in \[0, 1\], found"),
    ({"target_logits": _DROP, "target_probs": _P * 0.9},
     r"target_probs: expected rows summing to 1 \(tolerance 0.001\).*pass logits as target_logits instead"),
    ({"target_logits": _DROP, "target_probs": _P - 0.2}, r"pass logits as target_logits instead"),
    ({"ref_logits": _DROP, "ref_probs": np.full((K, N, C), 0.5)}, r"ref_probs: expected rows summing to 1"),
    # both / neither
    ({"target_probs": _P}, r"target_logits/target_probs: both given; pass exactly one"),
    ({"target_logits": _DROP}, r"target_logits: missing; pass the model's outputs"),
    ({"ref_probs": np.zeros((K, N, C))}, r"ref_logits/ref_probs: both given"),
    ({"ref_is_member": _DROP}, r"ref_logits: given without ref_is_member; pass ref_is_member"),
    ({"ref_logits": _DROP}, r"ref_is_member: given without reference outputs"),
    # membership
    ({"is_member": np.ones(N, bool)}, r"is_member: need both members and non-members, got all 12 values True"),
    ({"is_member": np.zeros(N, int)}, r"is_member: need both members and non-members, got all 12 values False"),
    ({"is_member": np.full(N, 2)}, r"is_member: expected a boolean array \(or 0/1 values\).*other than 0/1"),
    ({"is_member": np.array(["yes"] * N)}, r"is_member: expected a boolean array"),
    ({"is_member": np.full(N, np.nan)}, r"is_member: expected a boolean array"),
    ({"ref_is_member": np.full((K, N), 0.5)}, r"ref_is_member: expected a boolean array"),
    # empty / shapes / dtypes
    ({"labels": np.zeros(0, int), "target_logits": np.zeros((0, C)), "is_member": _DROP, "ref_logits": _DROP,
      "ref_is_member": _DROP}, r"target_logits: expected a non-empty array"),
    ({"target_logits": np.zeros((N, 1)), "labels": np.zeros(N, int)}, r"target_logits: expected at least 2 classes"),
    ({"target_logits": np.zeros(N)}, r"target_logits: expected a float array of shape \(N, C\) or \(N, A, C\), got shape \(12,\)"),
    ({"target_logits": np.zeros((N, C), complex)}, r"target_logits: expected a real-valued float array.*complex128"),
    ({"target_logits": np.array([["a"] * C] * N)}, r"target_logits: expected a real-valued float array"),
    ({"target_logits": np.zeros((N, A, C))}, r"ref_logits: expected A = 2 queries \(like target_logits\)"),
    ({"ref_logits": np.zeros((K, N))}, r"ref_logits: expected a float array of shape \(K, N, C\) or \(K, N, A, C\)"),
    # groups
    ({"groups": np.arange(N - 1)}, r"groups: expected a 1-D array of 12 entries"),
    ({"groups": np.full(N, np.nan)}, r"groups: found NaN/inf group values"),
    ({"groups": np.zeros(N, complex)}, r"groups: expected int, bool or str values, got dtype complex128"),
    # population
    ({"population_logits": np.zeros((M, C))}, r"population_labels: missing; pass the true classes \(M,\) = \(5,\)"),
    ({"population_labels": np.zeros(M, int)}, r"population_labels: given without population outputs"),
    ({"population_logits": np.zeros((M, C + 1)), "population_labels": np.zeros(M, int)},
     r"population_logits: expected \(A, C\) = \(1, 3\) like target_logits, got shape \(5, 1, 4\)"),
    ({"population_logits": np.zeros((M, C)), "population_labels": np.zeros(M + 1, int)},
     r"population_labels: expected 5 entries \(the length of population_logits\), got 6"),
    ({"population_logits": np.zeros((M, C)), "population_labels": np.full(M, 7)},
     r"population_labels: expected class indices in \[0, 3\)"),
    ({"population_logits": np.zeros((0, C)), "population_labels": np.zeros(0, int)},
     r"population_logits: expected a non-empty array"),
    ({"ref_population_logits": np.zeros((K, M, C))}, r"ref_population_logits: given without the target's population outputs"),
    ({"population_logits": np.zeros((M, C)), "population_labels": np.zeros(M, int),
      "ref_population_logits": np.zeros((K + 1, M, C))}, r"ref_population_logits: expected K = 4 reference models"),
    ({"population_logits": np.zeros((M, C)), "population_labels": np.zeros(M, int),
      "ref_population_logits": np.zeros((K, M + 1, C))}, r"ref_population_logits: expected M = 5 examples on axis 1"),
    ({"population_logits": np.zeros((M, C)), "population_labels": np.zeros(M, int), "ref_logits": _DROP,
      "ref_is_member": _DROP, "ref_population_logits": np.zeros((K, M, C))},
     r"ref_population_logits: given without reference outputs on the audit examples"),
    ({"population_probs": np.full((M, C), 0.5), "population_labels": np.zeros(M, int)},
     r"population_probs: expected rows summing to 1"),
    ({"meta": ["x"]}, r"meta: expected a dict, got list"),
]


@pytest.mark.parametrize(("changes", "match"), ERRORS, ids=[f"e{i}" for i in range(len(ERRORS))])
def test_errors(arrays: dict[str, Any], changes: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match) as info:
        SignalBundle.from_arrays(**_mod(arrays, **changes))
    assert "\n" not in str(info.value)


def test_prob_tolerance_boundary(arrays: dict[str, Any]) -> None:
    p = _P.copy()
    p[:, 0] += 0.0009  # within 1e-3: accepted
    arrays.pop("target_logits")
    SignalBundle.from_arrays(target_probs=p, **arrays)
    p[:, 0] += 0.0002  # 1.1e-3: refused
    with pytest.raises(InputError, match=r"target_probs: expected rows summing to 1"):
        SignalBundle.from_arrays(target_probs=p, **arrays)
