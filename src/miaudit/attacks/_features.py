"""Features of a model's output vector for trained attack models, and bundle checks shared by attacks.

The trained attack (Shokri et al. 2017; Salem et al. 2019, "ML-Leaks") classifies a model's output
vector as member / non-member. :func:`attack_features` turns logits ``(..., A, C)`` into one
row of features per example (averaged over the ``A`` queries):

* the probability vector sorted in decreasing order, its first ``top_k`` entries (Salem et al. use
  the top 3; Shokri et al. the full vector) -- label-free, so one classifier serves every class;
* true-label features: ``p_y``, ``log p_y`` (the loss is ``-log p_y`` and is carried by it),
  the scaled logit ``log p_y - log(1 - p_y)`` (Carlini et al. 2022; the reference attacks' own
  :func:`._reference_stats.ref_scaled_logit`, clipped to ``+-PHI_MAX``), the entropy, the modified
  entropy (Song & Mittal 2021) and the correct-prediction flag ``argmax == y`` (Yeom et al. 2018;
  averaged over queries it is the fraction of correct queries).

Without labels only the label-free features are kept: the sorted probabilities and the entropy.

For raw scores (a bundle whose ``outputs_kind`` is ``"scores"``: per-class values used as given, not a
softmax-able vector) the features are the score vector itself, unsorted (its columns may mean something,
e.g. ``p_cat, p_dog``) and sorted in decreasing order (its first ``top_k`` entries), plus, with labels, the
true-class score ``s_y`` and the correct-prediction flag.

All features are float64 and finite for finite logits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .. import signals
from .._errors import InputError, option
from . import _reference_stats as rs

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["attack_features", "feature_names", "check_target", "check_reference"]

#: Names of the label features, in column order after the sorted probabilities.
LABEL_FEATURES = ("p_y", "log_p_y", "scaled_logit", "entropy", "modified_entropy", "correct")
#: The label features of raw scores, after the raw and the sorted score vectors.
SCORE_LABEL_FEATURES = ("s_y", "correct")


#: The log-probability features (``log p_y``, modified entropy) are clipped to +-_CLIP so ``-inf``
#: logits stay finite; the scaled logit comes clipped from :func:`._reference_stats.ref_scaled_logit`.
_CLIP = 1e4


def _n_sorted(n_classes: int, top_k: int | None) -> int:
    return n_classes if top_k is None else min(int(top_k), n_classes)


def feature_names(
    n_classes: int, *, top_k: int | None = 10, labels: bool = True, kind: str = "logits"
) -> list[str]:
    """Column names of :func:`attack_features` for ``n_classes`` classes (with or without labels)."""
    k = _n_sorted(n_classes, top_k)
    if kind == "scores":
        raw = [f"s_{i}" for i in range(n_classes)] + [f"s_sorted_{i}" for i in range(k)]
        return raw + (list(SCORE_LABEL_FEATURES) if labels else [])
    return [f"p_sorted_{i}" for i in range(k)] + (list(LABEL_FEATURES) if labels else ["entropy"])


def score_features(scores: np.ndarray, labels: np.ndarray | None, *, top_k: int | None = 10) -> np.ndarray:
    """Features of raw scores ``(..., A, C)`` (used as given): the vector, sorted, and with labels ``s_y`` and
    ``argmax == y``; averaged over the query axis. Columns: :func:`feature_names` with ``kind="scores"``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim < 2:
        raise InputError(f"scores: expected shape (..., A, C) with a query axis, got shape {s.shape}; "
                         "for one query per example pass scores[:, None, :]")
    if top_k is not None and int(top_k) < 1:
        raise InputError(f"top_k: expected a positive integer or None, got {top_k!r}; use e.g. top_k=10")
    k = _n_sorted(s.shape[-1], top_k)
    parts = [s, -np.sort(-s, axis=-1)[..., :k]]
    if labels is not None:
        idx = signals._label_index(np.asarray(labels)[..., None], s.shape)
        s_y = np.take_along_axis(s, idx[..., None], axis=-1)
        parts += [s_y, (np.argmax(s, axis=-1) == idx).astype(np.float64)[..., None]]
    out: np.ndarray = np.concatenate(parts, axis=-1).mean(axis=-2)
    return out


def attack_features(
    logits: np.ndarray, labels: np.ndarray | None, *, top_k: int | None = 10, kind: str = "logits"
) -> np.ndarray:
    """Per-example attack features, averaged over the query axis.

    Parameters
    ----------
    logits : array (..., A, C)
        Model logits (or log-probabilities) for ``A`` queries; the query axis is ``-2``.
    labels : int array broadcastable to ``logits.shape[:-2]``, or None
        True classes in ``[0, C)``; None keeps the label-free features only.
    top_k : int or None
        Number of sorted probabilities kept (``None``: all ``C``).
    kind : "logits" or "scores"
        What ``logits`` holds (a bundle's ``outputs_kind``); raw scores go to :func:`score_features`.

    Returns
    -------
    array (..., F) float64 with ``F = min(top_k, C) + 6`` columns (with labels; ``+ 1`` without) named by
    :func:`feature_names`.
    """
    if kind == "scores":
        return score_features(logits, labels, top_k=top_k)
    z = np.asarray(logits)
    if z.ndim < 2:
        raise InputError(
            f"logits: expected shape (..., A, C) with a query axis, got shape {z.shape}; "
            "for one query per example pass logits[:, None, :]"
        )
    if top_k is not None and int(top_k) < 1:
        raise InputError(f"top_k: expected a positive integer or None, got {top_k!r}; use e.g. top_k=10")
    logp = signals.log_softmax(z)
    p = np.exp(logp)
    k = _n_sorted(z.shape[-1], top_k)
    p_sorted = -np.sort(-p, axis=-1)[..., :k]
    if labels is None:
        unlabelled: np.ndarray = np.concatenate([p_sorted, signals.entropy(logp)[..., None]], axis=-1).mean(axis=-2)
        return unlabelled
    y = np.asarray(labels)[..., None]  # broadcast over the query axis
    idx = signals._label_index(y, z.shape)
    if z.shape[-1] > 1:  # the attacks' one scaled logit (same as the reference attacks)
        phi = rs.ref_scaled_logit(z, np.broadcast_to(np.asarray(labels), z.shape[:-2]))
    else:  # one class: p_y = 1, phi = +inf, clipped as the kernel clips it
        phi = np.full(z.shape[:-1], rs.PHI_MAX)
    log_py = np.take_along_axis(logp, idx[..., None], axis=-1)[..., 0]
    cols = [
        np.exp(log_py),
        np.maximum(log_py, -_CLIP),
        phi,
        signals.entropy(logp),
        np.minimum(signals.modified_entropy(logp, idx), _CLIP),
        (np.argmax(z, axis=-1) == idx).astype(np.float64),
    ]
    feats = np.concatenate([p_sorted, np.stack(cols, axis=-1)], axis=-1)
    out: np.ndarray = feats.mean(axis=-2)
    return out


def check_target(
    bundle: SignalBundle, attack: str, *, labels: bool = True, kinds: frozenset[str] = frozenset({"logits"})
) -> None:
    """Shapes an attack relies on: ``target_logits`` (N, A, C) and ``labels`` (N,) -- required unless
    ``labels=False`` --, and outputs of one of the ``kinds`` it understands."""
    z = np.asarray(bundle.target_logits)
    if z.ndim != 3:
        raise InputError(
            f"{attack}: bundle.target_logits: expected shape (N, A, C), got {z.shape}; build the bundle "
            "with SignalBundle.from_arrays"
        )
    kind = getattr(bundle, "outputs_kind", "logits")
    if kind not in kinds:
        raise InputError(
            f"{attack}: the bundle's outputs are {kind}, this attack reads {' or '.join(sorted(kinds))}; "
            "run it on outputs of that kind, or run the attacks that read these"
        )
    if bundle.labels is None:
        if labels:
            raise InputError(
                f"{attack}: needs the true labels ({option('label_column', api='labels=')}); add them to the "
                "bundle, or run the label-free attacks"
            )
        return
    y = np.asarray(bundle.labels)
    if y.shape != z.shape[:1]:
        raise InputError(
            f"{attack}: bundle.labels: expected shape ({z.shape[0]},) matching target_logits, got {y.shape}; build "
            "the bundle with SignalBundle.from_arrays"
        )


def check_reference(bundle: SignalBundle, attack: str) -> tuple[np.ndarray, np.ndarray]:
    """``(ref_logits (K, N, A, C), ref_is_member (K, N) bool)`` of ``bundle``, checked: the one attack-side
    check of a bundle's reference part (every reference attack and the shadow-model attack use it)."""
    check_target(bundle, attack)
    ref, ref_is_member = bundle.ref_logits, bundle.ref_is_member
    if ref is None or ref_is_member is None:
        raise InputError(
            f"{attack}: needs ref_logits and ref_is_member (outputs and training membership of reference models); "
            "add them to the bundle or run `miaudit audit` to train reference models"
        )
    n, a, c = bundle.target_logits.shape
    if ref.ndim != 4 or ref.shape[1:] != (n, a, c) or ref.shape[0] < 1:
        raise InputError(
            f"{attack}: bundle.ref_logits: expected shape (K, {n}, {a}, {c}) matching target_logits (N, A, C), got "
            f"{ref.shape}; give every reference model's logits on the same examples and queries"
        )
    r = np.asarray(ref_is_member)
    if r.shape != ref.shape[:2] or r.dtype != bool:
        raise InputError(
            f"{attack}: bundle.ref_is_member: expected a bool array of shape {ref.shape[:2]} (K, N), got "
            f"{r.dtype} {r.shape}; pass ref_is_member[k, i] = True iff reference k trained on example i"
        )
    return ref, r
