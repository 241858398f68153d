"""The signal bundle: a model's outputs on the audit examples, plus optional reference outputs.

This is the hand-over point between "a model trained anywhere" and miaudit's attacks.
Array conventions (after normalisation by :meth:`SignalBundle.from_arrays`):

=====================  ======================  =================================================
field                  shape / dtype           meaning
=====================  ======================  =================================================
labels                 (N,) int64 or None      true class in [0, C) (None: no labels; label-free attacks only)
target_logits          (N, A, C) float64       target model logits for A queries (A=1 if none);
                                               probabilities are converted to log-probabilities;
                                               with outputs_kind "scores": the raw scores as given
outputs_kind           "logits" or "scores"    what target_logits/ref_logits hold (see below)
is_member              (N,) bool or None       ground truth membership, evaluation only
ref_logits             (K, N, A, C) float32    K reference models' logits, or None
ref_is_member                 (K, N) bool or None     reference models' training membership
groups                 (N,) or None            optional user slice column (str or int)
population_logits      (M, A, C) or None       target outputs on known non-members (population z)
population_labels      (M,) int64 or None
ref_population_logits  (K, M, A, C) or None    reference outputs on the population
target_pred            (N, A) int64 or None    label-only access: the target's predicted class on
                                               A queries (query 0 the example itself, then its
                                               augmentations); outputs_kind "labels"
ref_pred               (K, N, A) int64 or None the references' predicted classes on the same queries
target_distance        (N,) float64 or None    label-only: distance of each example to the decision
                                               boundary of the target's predicted class
ref_distance           (K, N) float64 or None  the references' boundary distances
=====================  ======================  =================================================

Output kinds: ``"logits"`` (logits, or probabilities converted to log-probabilities at the door: their
softmax is the model's probability vector) or ``"scores"`` (any real per-class values, e.g. a table of
unnormalised confidence scores, kept exactly as given: no softmax, no normalisation) or ``"labels"`` (the
model answered with predicted classes only: ``target_pred``; ``target_logits`` then holds their one-hot
encoding, so that shapes, accuracies and the predicted class read the same for every kind). Attacks declare
which kinds they understand (``Attack.output_kinds``) and whether they need labels (``Attack.needs_labels``).

Precision: the target's outputs are kept in float64 (they are few and every attack reads them);
reference outputs are stored in float32, which halves the memory of the largest array
(K x N x A x C) and is far finer than the spread of any signal across models. Arrays built by
:meth:`SignalBundle.from_arrays` are read-only views, so a bundle cannot change under an attack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._errors import InputError
from ..signals import probs_to_logits

__all__ = ["SignalBundle", "PROB_SUM_TOLERANCE"]

#: Largest accepted deviation of a probability row's sum from 1.
PROB_SUM_TOLERANCE = 1e-3
#: Largest accepted excursion of a probability below 0 or above 1 (float noise); clipped after.
_PROB_RANGE_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class SignalBundle:
    """Outputs of a target model (and optionally of reference models) on N audit examples.

    Build it with :meth:`from_arrays` (validates and normalises) or load it with
    :func:`miaudit.data.load_bundle`. The fields follow the table in the module docstring.
    """

    labels: np.ndarray | None
    target_logits: np.ndarray
    is_member: np.ndarray | None = None
    ref_logits: np.ndarray | None = None
    ref_is_member: np.ndarray | None = None
    groups: np.ndarray | None = None
    population_logits: np.ndarray | None = None
    population_labels: np.ndarray | None = None
    ref_population_logits: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    outputs_kind: str = "logits"
    target_pred: np.ndarray | None = None
    ref_pred: np.ndarray | None = None
    target_distance: np.ndarray | None = None
    ref_distance: np.ndarray | None = None

    @property
    def n_examples(self) -> int:
        return int(self.target_logits.shape[0])

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    @property
    def n_queries(self) -> int:
        return int(self.target_logits.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.target_logits.shape[2])

    @property
    def n_references(self) -> int:
        if self.ref_logits is not None:
            return int(self.ref_logits.shape[0])
        return 0 if self.ref_pred is None else int(self.ref_pred.shape[0])

    @property
    def n_population(self) -> int:
        return 0 if self.population_logits is None else int(self.population_logits.shape[0])

    @classmethod
    def from_arrays(
        cls,
        *,
        labels: Any = None,
        target_logits: Any = None,
        target_probs: Any = None,
        target_scores: Any = None,
        is_member: Any = None,
        ref_logits: Any = None,
        ref_probs: Any = None,
        ref_scores: Any = None,
        ref_is_member: Any = None,
        groups: Any = None,
        population_logits: Any = None,
        population_probs: Any = None,
        population_labels: Any = None,
        ref_population_logits: Any = None,
        ref_population_probs: Any = None,
        meta: Mapping[str, Any] | None = None,
        target_pred: Any = None,
        ref_pred: Any = None,
        target_distance: Any = None,
        ref_distance: Any = None,
        n_classes: Any = None,
    ) -> SignalBundle:
        """Validate user arrays and return a normalised, read-only bundle.

        Parameters
        ----------
        labels : int array (N,), optional
            True classes in ``[0, C)``. Floats holding whole numbers are accepted. Without labels only
            the label-free attacks run (the others are skipped with the reason).
        target_logits, target_probs, target_scores : float array (N, C) or (N, A, C)
            Exactly one of them. Probabilities must lie in [0, 1] with rows summing to 1
            (tolerance ``1e-3``) and are converted to log-probabilities with
            :func:`miaudit.signals.probs_to_logits`. Scores are any finite real per-class values,
            used as given (``outputs_kind == "scores"``: not normalised, need not sum to 1).
        is_member : bool or 0/1 array (N,), optional
            Ground-truth membership of the target (evaluation only); needs both classes.
        ref_logits, ref_probs, ref_scores : float array (K, N, C) or (K, N, A, C), optional
            Reference models' outputs (at most one of them), with the target's A and C;
            ``ref_scores`` goes with ``target_scores`` (and only with it).
        ref_is_member : bool or 0/1 array (K, N)
            Required exactly when reference outputs are given.
        groups : array (N,), optional
            Slice column (ints, bools or strings; other objects are converted to ``str``).
        population_logits, population_probs : float array (M, C) or (M, A, C), optional
            The target's outputs on known non-members, with ``population_labels`` (M,).
        ref_population_logits, ref_population_probs : float array (K, M, C) or (K, M, A, C)
            Reference models' outputs on the population (needs reference outputs, same K).
        meta : mapping, optional
            Free-form description (copied).
        target_pred : int array (N,) or (N, A), optional
            Label-only access, instead of target outputs: the target's predicted classes (query 0 the
            example itself, then A - 1 augmented queries). The bundle's ``outputs_kind`` is ``"labels"``.
        ref_pred : int array (K, N) or (K, N, A), optional
            The references' predicted classes on the same queries (with ``ref_is_member``).
        target_distance, ref_distance : float array (N,), (K, N), optional
            Label-only: boundary distances (>= 0) of the target and the references (with ``target_pred``).
        n_classes : int, optional
            Label-only: the number of classes C (default: the largest class seen + 1, at least 2).

        Raises
        ------
        InputError
            With a one-line message naming the offending input, for every inconsistency.
        """
        if target_pred is not None:
            return _label_bundle(
                cls, labels=labels, target_pred=target_pred, ref_pred=ref_pred, target_distance=target_distance,
                ref_distance=ref_distance, n_classes=n_classes, is_member=is_member, ref_is_member=ref_is_member,
                groups=groups, meta=meta,
                others={"target_logits": target_logits, "target_probs": target_probs, "target_scores": target_scores,
                        "ref_logits": ref_logits, "ref_probs": ref_probs, "ref_scores": ref_scores,
                        "population_logits": population_logits, "population_probs": population_probs,
                        "population_labels": population_labels, "ref_population_logits": ref_population_logits,
                        "ref_population_probs": ref_population_probs})
        for name, value in (("ref_pred", ref_pred), ("target_distance", target_distance),
                            ("ref_distance", ref_distance), ("n_classes", n_classes)):
            if value is not None:
                raise InputError(f"{name}: given without target_pred; label-only bundles carry the target's "
                                 "predicted classes as target_pred (N,) or (N, A)")
        # --- target -------------------------------------------------------------------------
        scores_kind = target_scores is not None
        if scores_kind:
            for other, value in (("target_logits", target_logits), ("target_probs", target_probs)):
                if value is not None:
                    raise InputError(f"target_scores/{other}: both given; pass exactly one kind of outputs")
            tgt_name, tgt = "target_scores", target_scores
        else:
            tgt_name, tgt = _one_of("target_logits", target_logits, "target_probs", target_probs, required=True)
        tgt64 = _float_array(tgt_name, tgt, dtype=np.float64, ndims=(2, 3), shape_hint="(N, C) or (N, A, C)")
        if tgt64.ndim == 2:
            tgt64 = tgt64[:, None, :]
        n, a, c = tgt64.shape
        if n == 0:
            raise InputError(f"{tgt_name}: expected at least one example, got shape {tgt64.shape}; pass a non-empty array")
        if c < 2:
            raise InputError(
                f"{tgt_name}: expected at least 2 classes (last axis C >= 2), got C = {c}; "
                "for a binary model pass both columns (e.g. [1 - p, p])"
            )
        if tgt_name == "target_probs":
            tgt64 = _probs_to_logits(tgt_name, tgt64)

        # --- labels -------------------------------------------------------------------------
        labels_arr = None
        if labels is not None:
            labels_arr = _labels(labels, "labels", n_expected=n, n_classes=c, length_source=tgt_name)

        # --- membership ---------------------------------------------------------------------
        target_in_arr = None
        if is_member is not None:
            target_in_arr = _bool_array("is_member", is_member, shape=(n,), shape_hint="(N,)")
            n_members = int(target_in_arr.sum())
            if n_members == 0 or n_members == n:
                what = "True" if n_members == n else "False"
                raise InputError(
                    f"is_member: need both members and non-members, got all {n} values {what}; "
                    "pass the true membership of every example, or omit is_member to score without metrics"
                )

        # --- references ---------------------------------------------------------------------
        if scores_kind:
            for other, value in (("ref_logits", ref_logits), ("ref_probs", ref_probs)):
                if value is not None:
                    raise InputError(
                        f"{other}: given with target_scores; reference outputs must be of the target's kind, "
                        "pass them as ref_scores"
                    )
            ref_name, ref = "ref_scores", ref_scores
        else:
            if ref_scores is not None:
                raise InputError(
                    f"ref_scores: given with {tgt_name}; reference outputs must be of the target's kind, pass "
                    f"target_scores for the target as well, or the references as {tgt_name.replace('target', 'ref')}"
                )
            ref_name, ref = _one_of("ref_logits", ref_logits, "ref_probs", ref_probs, required=False)
        ref_arr = ref_in_arr = None
        k = 0
        if ref is None and ref_is_member is not None:
            raise InputError(
                "ref_is_member: given without reference outputs; pass ref_logits (or ref_probs) of shape "
                "(K, N, C) or (K, N, A, C) as well, or drop ref_is_member"
            )
        if ref is not None:
            if ref_is_member is None:
                raise InputError(
                    f"{ref_name}: given without ref_is_member; pass ref_is_member, a bool array (K, N) saying which "
                    "examples each reference model was trained on"
                )
            ref_arr = _model_outputs(ref_name, ref, n=n, a=a, c=c, n_name="N", n_source=tgt_name)
            k = ref_arr.shape[0]
            ref_in_arr = _bool_array("ref_is_member", ref_is_member, shape=(k, n), shape_hint=f"(K, N) = ({k}, {n})")

        # --- groups -------------------------------------------------------------------------
        groups_arr = None if groups is None else _groups(groups, n)

        # --- population ---------------------------------------------------------------------
        pop_name, pop = _one_of(
            "population_logits", population_logits, "population_probs", population_probs, required=False
        )
        rpop_name, rpop = _one_of(
            "ref_population_logits", ref_population_logits, "ref_population_probs", ref_population_probs,
            required=False,
        )
        pop_arr = pop_labels_arr = rpop_arr = None
        if scores_kind and (pop is not None or rpop is not None or population_labels is not None):
            raise InputError(
                "population outputs: given with target_scores; population data is read only by the attacks on "
                "logits or probabilities, pass the outputs as target_logits/target_probs, or drop the population"
            )
        if pop is None:
            if population_labels is not None:
                raise InputError(
                    "population_labels: given without population outputs; pass population_logits "
                    "(or population_probs) of shape (M, C) or (M, A, C) as well, or drop population_labels"
                )
            if rpop is not None:
                raise InputError(
                    f"{rpop_name}: given without the target's population outputs; pass population_logits "
                    "(M, C) and population_labels (M,) as well"
                )
        else:
            pop64 = _float_array(pop_name, pop, dtype=np.float64, ndims=(2, 3), shape_hint="(M, C) or (M, A, C)")
            if pop64.ndim == 2:
                pop64 = pop64[:, None, :]
            m = pop64.shape[0]
            if m == 0:
                raise InputError(f"{pop_name}: expected at least one population example, got shape {pop64.shape}; "
                                 "pass a non-empty array or omit it")
            if pop64.shape[1:] != (a, c):
                raise InputError(
                    f"{pop_name}: expected (A, C) = ({a}, {c}) like {tgt_name}, got shape {pop64.shape}; "
                    "query the target on the population the same way as on the audit examples"
                )
            if pop_name == "population_probs":
                pop64 = _probs_to_logits(pop_name, pop64)
            pop_arr = pop64
            if population_labels is None:
                raise InputError(
                    f"population_labels: missing; pass the true classes (M,) = ({m},) of the population "
                    f"examples with {pop_name}"
                )
            pop_labels_arr = _labels(
                population_labels, "population_labels", n_expected=m, n_classes=c, length_source=pop_name
            )
            if rpop is not None:
                if ref_arr is None:
                    raise InputError(
                        f"{rpop_name}: given without reference outputs on the audit examples; pass ref_logits "
                        "and ref_is_member as well, or drop it"
                    )
                rpop_arr = _model_outputs(rpop_name, rpop, n=m, a=a, c=c, n_name="M", n_source=pop_name)
                if rpop_arr.shape[0] != k:
                    raise InputError(
                        f"{rpop_name}: expected K = {k} reference models like {ref_name}, got shape "
                        f"{rpop_arr.shape}; pass the same reference models' outputs on the population"
                    )

        if meta is not None and not isinstance(meta, Mapping):
            raise InputError(f"meta: expected a dict, got {type(meta).__name__}; pass a dict or None")

        return cls(
            labels=_readonly(labels_arr),
            target_logits=_readonly_array(tgt64),
            is_member=_readonly(target_in_arr),
            ref_logits=_readonly(ref_arr),
            ref_is_member=_readonly(ref_in_arr),
            groups=_readonly(groups_arr),
            population_logits=_readonly(pop_arr),
            population_labels=_readonly(pop_labels_arr),
            ref_population_logits=_readonly(rpop_arr),
            meta={**({"outputs_kind": "probs"} if tgt_name == "target_probs" else {}), **dict(meta or {})},
            outputs_kind="scores" if scores_kind else "logits",
        )


# ---------------------------------------------------------------------------------------------
# validation helpers (each raises InputError with a one-line message)
# ---------------------------------------------------------------------------------------------


def _readonly_array(a: np.ndarray) -> np.ndarray:
    v = a.view()
    v.flags.writeable = False
    return v


def _readonly(a: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return None
    v = a.view()
    v.flags.writeable = False
    return v


def _one_of(name_a: str, a: Any, name_b: str, b: Any, *, required: bool) -> tuple[str, Any]:
    if a is not None and b is not None:
        raise InputError(
            f"{name_a}/{name_b}: both given; pass exactly one of them (logits if you have them, "
            "otherwise probabilities)"
        )
    if a is None and b is None:
        if required:
            raise InputError(
                f"{name_a}: missing; pass the model's outputs as {name_a} (N, C) or (N, A, C), "
                f"or probabilities as {name_b}"
            )
        return name_a, None
    return (name_a, a) if a is not None else (name_b, b)


def _describe(a: np.ndarray) -> str:
    return f"dtype {a.dtype} and shape {a.shape}"


def _as_array(name: str, x: Any) -> np.ndarray:
    """np.asarray that turns every conversion failure (ragged lists, ...) into an InputError."""
    if isinstance(x, (bytes, str)):
        raise InputError(f"{name}: expected an array, got {type(x).__name__}; pass a numpy array")
    try:
        return np.asarray(x)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InputError(
            f"{name}: could not be read as an array ({_one_line(exc)}); pass a rectangular numpy array"
        ) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def _float_array(name: str, x: Any, *, dtype: type, ndims: tuple[int, ...], shape_hint: str) -> np.ndarray:
    arr = _as_array(name, x)
    if arr.dtype.kind not in "biuf":
        raise InputError(
            f"{name}: expected a real-valued float array of shape {shape_hint}, got {_describe(arr)}; "
            "convert it with np.asarray(x, dtype=float)"
        )
    if arr.ndim not in ndims:
        raise InputError(
            f"{name}: expected a float array of shape {shape_hint}, got shape {arr.shape}; reshape it "
            "(one row per example, classes on the last axis)"
        )
    if arr.size == 0:
        raise InputError(f"{name}: expected a non-empty array of shape {shape_hint}, got shape {arr.shape}; "
                         "pass at least one example and two classes")
    with np.errstate(over="ignore", invalid="ignore"):
        out: np.ndarray = np.ascontiguousarray(arr, dtype=dtype)
    if not _all_finite(out):
        bad = int((~np.isfinite(out)).sum())
        where = " after conversion to float32" if np.isfinite(arr.astype(np.float64)).all() else ""
        raise InputError(
            f"{name}: expected finite values, found {bad} NaN/inf{where}; remove or fix those examples "
            "(e.g. recompute the outputs in float64, or clip logits)"
        )
    return out


_FINITE_CHUNK = 1 << 22  # elements per block: bounds the temporary bool array to 4 MB


def _all_finite(a: np.ndarray) -> bool:
    """``np.isfinite(a).all()`` in blocks, so a multi-GB reference array needs no GB-sized mask."""
    flat = a.reshape(-1)
    return all(bool(np.isfinite(flat[i : i + _FINITE_CHUNK]).all()) for i in range(0, flat.size, _FINITE_CHUNK))


def _probs_to_logits(name: str, p: np.ndarray) -> np.ndarray:
    lo, hi = float(p.min()), float(p.max())
    if lo < -_PROB_RANGE_TOLERANCE or hi > 1.0 + _PROB_RANGE_TOLERANCE:
        bad = lo if lo < -_PROB_RANGE_TOLERANCE else hi
        logits_name = name.replace("_probs", "_logits")
        raise InputError(
            f"{name}: expected probabilities in [0, 1], found {bad:.6g}; pass logits as {logits_name} instead"
        )
    sums = p.sum(axis=-1, dtype=np.float64)
    dev = np.abs(sums - 1.0)
    if (dev > PROB_SUM_TOLERANCE).any():
        idx = np.unravel_index(int(dev.argmax()), dev.shape)
        logits_name = name.replace("_probs", "_logits")
        raise InputError(
            f"{name}: expected rows summing to 1 (tolerance {PROB_SUM_TOLERANCE:g}), found a row at index "
            f"{tuple(int(i) for i in idx)} summing to {float(sums[idx]):.6g}; pass logits as {logits_name} "
            "instead, or normalise the rows"
        )
    return probs_to_logits(np.clip(p, 0.0, 1.0))


def _model_outputs(name: str, x: Any, *, n: int, a: int, c: int, n_name: str, n_source: str) -> np.ndarray:
    hint = f"(K, {n_name}, C) or (K, {n_name}, A, C)"
    is_probs = name.endswith("_probs")
    # Logits go straight to float32 (no float64 copy of the largest array); probabilities are
    # checked in float64 first.
    arr = _float_array(name, x, dtype=np.float64 if is_probs else np.float32, ndims=(3, 4), shape_hint=hint)
    if arr.ndim == 3:
        arr = arr[:, :, None, :]
    kk, nn, aa, cc = arr.shape
    if nn != n:
        raise InputError(
            f"{name}: expected {n_name} = {n} examples on axis 1 (like {n_source}), got shape {arr.shape}; "
            f"pass the outputs of each model on the same examples in the same order"
        )
    if cc != c:
        raise InputError(f"{name}: expected C = {c} classes on the last axis (like {n_source}), got shape "
                         f"{arr.shape}; pass the full output vector of each model")
    if aa != a:
        raise InputError(
            f"{name}: expected A = {a} queries (like {n_source}), got shape {arr.shape}; query the reference "
            "models with the same augmentations as the target"
        )
    if is_probs:
        arr = _probs_to_logits(name, arr).astype(np.float32)  # log-probs >= -709: finite in float32
    return arr


def _labels(x: Any, name: str, *, n_expected: int, n_classes: int, length_source: str) -> np.ndarray:
    arr = _as_array(name, x)
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D integer array (N,), got shape {arr.shape}; flatten it with .ravel()")
    if arr.shape[0] != n_expected:
        raise InputError(
            f"{name}: expected {n_expected} entries (the length of {length_source}), got {arr.shape[0]}; "
            "pass one label per example, in the same order"
        )
    if arr.dtype.kind in "iu":
        out = arr.astype(np.int64)
        if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and (arr > np.iinfo(np.int64).max).any():
            raise InputError(f"{name}: expected class indices in [0, {n_classes}), found values above 2^63; "
                             "encode classes as 0..C-1")
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InputError(f"{name}: expected integer class indices, found NaN/inf; remove those examples")
        if not (arr == np.round(arr)).all():
            raise InputError(
                f"{name}: expected integer class indices, got non-integer floats (dtype {arr.dtype}); "
                "pass class indices 0..C-1, e.g. y.argmax(axis=1) for one-hot labels"
            )
        if (np.abs(arr) > 2.0**62).any():
            raise InputError(f"{name}: expected class indices in [0, {n_classes}), got huge values; encode classes as 0..C-1")
        out = arr.astype(np.int64)
    else:
        raise InputError(
            f"{name}: expected integer class indices, got dtype {arr.dtype}; encode classes as 0..C-1 "
            "(e.g. with sklearn.preprocessing.LabelEncoder)"
        )
    if out.size and (out.min() < 0 or out.max() >= n_classes):
        bad = int(out.min()) if out.min() < 0 else int(out.max())
        raise InputError(
            f"{name}: expected class indices in [0, {n_classes}) (C = {n_classes} output columns), found {bad}; "
            "check the label encoding or pass the full output vector"
        )
    return np.ascontiguousarray(out)


def _bool_array(name: str, x: Any, *, shape: tuple[int, ...], shape_hint: str) -> np.ndarray:
    arr = _as_array(name, x)
    if arr.shape != shape:
        raise InputError(f"{name}: expected shape {shape_hint}, got shape {arr.shape}; pass one flag per example")
    if arr.dtype.kind == "b":
        return np.ascontiguousarray(arr, dtype=bool)
    if arr.dtype.kind in "iuf":
        with np.errstate(invalid="ignore"):
            ok = (arr == 0) | (arr == 1)
        if ok.all():
            return np.ascontiguousarray(arr == 1)
    raise InputError(
        f"{name}: expected a boolean array (or 0/1 values), got {_describe(arr)}"
        f"{' with values other than 0/1' if arr.dtype.kind in 'iuf' else ''}; pass True for members, "
        "False for non-members"
    )


def _groups(x: Any, n: int) -> np.ndarray:
    arr = _as_array("groups", x)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise InputError(
            f"groups: expected a 1-D array of {n} entries (one group per example), got shape {arr.shape}; "
            "pass one group value per example"
        )
    kind = arr.dtype.kind
    if kind in "biuU":
        return np.ascontiguousarray(arr)
    if kind == "S":
        try:
            return np.char.decode(arr, "utf-8")
        except UnicodeDecodeError:
            raise InputError("groups: byte strings that are not UTF-8; pass str or int group values") from None
    if kind == "f":
        if not np.isfinite(arr).all():
            raise InputError("groups: found NaN/inf group values; fill missing groups with a label such as 'unknown'")
        if (arr == np.round(arr)).all() and (np.abs(arr) < 2.0**62).all():
            return arr.astype(np.int64)
        return arr.astype(str)
    if kind == "O":
        return np.array(["" if v is None else str(v) for v in arr.tolist()], dtype=str)
    raise InputError(f"groups: expected int, bool or str values, got dtype {arr.dtype}; convert with .astype(str)")



# ---------------------------------------------------------------------------------------------
# label-only bundles
# ---------------------------------------------------------------------------------------------


def _pred_array(name: str, x: Any, ndims: tuple[int, ...], hint: str) -> np.ndarray:
    arr = _as_array(name, x)
    if arr.ndim not in ndims:
        raise InputError(f"{name}: expected predicted classes of shape {hint}, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name}: expected a non-empty array of shape {hint}, got shape {arr.shape}")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise InputError(f"{name}: expected integer class indices, got dtype {arr.dtype}; encode the classes as 0..C-1")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise InputError(f"{name}: found NaN/inf predicted classes; a label-only model answers a class per query")
        if not (arr == np.round(arr)).all() or (np.abs(arr) > 2.0**62).any():
            raise InputError(f"{name}: expected integer class indices, got non-integer floats; pass predicted "
                             "classes, not scores (scores go in target_scores)")
    out = arr.astype(np.int64)
    if out.min() < 0:
        raise InputError(f"{name}: expected class indices >= 0, found {int(out.min())}; encode the classes as 0..C-1")
    return np.ascontiguousarray(out)


def _distance_array(name: str, x: Any, shape: tuple[int, ...], hint: str) -> np.ndarray:
    arr = _float_array(name, x, dtype=np.float64, ndims=(len(shape),), shape_hint=hint)
    if arr.shape != shape:
        raise InputError(f"{name}: expected shape {hint} = {shape}, got {arr.shape}; one distance per example and model")
    if (arr < 0).any():
        raise InputError(f"{name}: expected distances >= 0, found {float(arr.min()):.6g}")
    return arr


def _label_bundle(cls: type[SignalBundle], *, labels: Any, target_pred: Any, ref_pred: Any, target_distance: Any,
                  ref_distance: Any, n_classes: Any, is_member: Any, ref_is_member: Any, groups: Any, meta: Any,
                  others: Mapping[str, Any]) -> SignalBundle:
    given = [k for k, v in others.items() if v is not None]
    if given:
        raise InputError(f"target_pred/{given[0]}: both given; a label-only bundle carries predicted classes "
                         "(target_pred, ref_pred) and no outputs")
    tp = _pred_array("target_pred", target_pred, (1, 2), "(N,) or (N, A)")
    if tp.ndim == 1:
        tp = tp[:, None]
    n, a = tp.shape
    rp = None
    if ref_pred is not None:
        rp = _pred_array("ref_pred", ref_pred, (2, 3), "(K, N) or (K, N, A)")
        if rp.ndim == 2:
            rp = rp[:, :, None]
        if rp.shape[1:] != (n, a):
            raise InputError(f"ref_pred: expected (K, N, A) with (N, A) = ({n}, {a}) like target_pred, got shape "
                             f"{rp.shape}; query the references on the same examples and augmentations")
        if ref_is_member is None:
            raise InputError("ref_pred: given without ref_is_member; pass ref_is_member, a bool array (K, N) saying "
                             "which examples each reference model was trained on")
    elif ref_is_member is not None:
        raise InputError("ref_is_member: given without ref_pred; pass the references' predicted classes as well")
    seen = int(max(tp.max(), -1 if rp is None else rp.max()))
    if labels is not None:
        la = _as_array("labels", labels)
        if la.dtype.kind in "iu" and la.size:
            seen = max(seen, int(la.max()))
    if isinstance(n_classes, np.ndarray) and n_classes.ndim == 0 and n_classes.dtype.kind in "iu":
        n_classes = int(n_classes)  # read from an .npz archive
    if n_classes is None:
        c = max(2, seen + 1)
    else:
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
            raise InputError(f"n_classes: expected an integer >= 2, got {n_classes!r}")
        c = int(n_classes)
        if seen >= c:
            raise InputError(f"target_pred/ref_pred/labels: found the class {seen}, outside the {c} classes "
                             f"[0, {c}); pass the right n_classes or encode the classes as 0..C-1")
    labels_arr = None if labels is None else _labels(labels, "labels", n_expected=n, n_classes=c,
                                                     length_source="target_pred")
    target_in_arr = None
    if is_member is not None:
        target_in_arr = _bool_array("is_member", is_member, shape=(n,), shape_hint="(N,)")
        if target_in_arr.all() or not target_in_arr.any():
            raise InputError(f"is_member: need both members and non-members, got all {n} values "
                             f"{bool(target_in_arr[0])}; pass the true membership of every example")
    k = 0 if rp is None else rp.shape[0]
    ref_in_arr = None if rp is None else _bool_array("ref_is_member", ref_is_member, shape=(k, n),
                                                     shape_hint=f"(K, N) = ({k}, {n})")
    td = rd = None
    if target_distance is not None:
        td = _distance_array("target_distance", target_distance, (n,), "(N,)")
    if ref_distance is not None:
        if rp is None or td is None:
            raise InputError("ref_distance: given without ref_pred and target_distance; pass the references' "
                             "predictions and the target's distances as well")
        rd = _distance_array("ref_distance", ref_distance, (k, n), "(K, N)")
    onehot = np.zeros((n, a, c), dtype=np.float64)
    np.put_along_axis(onehot, tp[..., None], 1.0, axis=-1)
    return cls(
        labels=_readonly(labels_arr), target_logits=_readonly_array(onehot), is_member=_readonly(target_in_arr),
        ref_is_member=_readonly(ref_in_arr), groups=_readonly(None if groups is None else _groups(groups, n)),
        meta=dict(meta or {}) if meta is None or isinstance(meta, Mapping) else _bad_meta(meta),
        outputs_kind="labels", target_pred=_readonly(tp), ref_pred=_readonly(rp),
        target_distance=_readonly(td), ref_distance=_readonly(rd),
    )


def _bad_meta(meta: Any) -> dict[str, Any]:
    raise InputError(f"meta: expected a dict, got {type(meta).__name__}; pass a dict or None")
