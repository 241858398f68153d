"""Per-example membership signals (field notes §2): pure numpy functions, float64-stable.

Every function takes ``logits`` of shape ``(..., C)`` and integer ``labels`` broadcastable to
``logits.shape[:-1]`` (for ``(N, A, C)`` logits pass ``labels[:, None]``; for ``(K, N, A, C)``
pass ``labels[None, :, None]``) and returns a float64 array of shape ``logits.shape[:-1]``.

Logits may be any real scores whose softmax is the model's probability vector; log-probabilities
are valid logits. Convert a probability array with :func:`probs_to_logits` first.

Numerics. Everything is computed in float64 from the logits, never from rounded probabilities:

* the log-normaliser is ``max + log1p(sum_{i != argmax} exp(z_i - max))``, so ``log p`` of the top
  class keeps full relative precision even when ``p`` rounds to 1 (a member's loss of ``1e-14`` is
  not swallowed by the rounding of ``log(1 + 1e-14)``);
* the scaled logit is ``z_y - logsumexp_{i != y} z_i`` (exact, no normalisation needed), and
  ``loss = softplus(-phi)``, ``log(1 - p_y) = -softplus(phi)`` follow from it without cancellation;
* logits of magnitude ``1e4`` give finite results, and so do ``-inf`` entries (``log 0``) of classes
  other than the true one (a true-class ``-inf`` has infinite loss, as it should).

Signals by themselves are only ranked within one model: ``confidence`` saturates at ``1.0`` in float64
for very confident predictions (ties), whereas ``loss`` and ``scaled_logit`` keep the order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._errors import InputError

__all__ = [
    "log_softmax",
    "probs_to_logits",
    "loss",
    "confidence",
    "entropy",
    "modified_entropy",
    "scaled_logit",
    "hinge",
    "correct",
    "SIGNALS",
]

_TINY = np.finfo(np.float64).tiny


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _as_logits(logits: np.ndarray, *, min_classes: int = 1) -> np.ndarray:
    z = np.asarray(logits)
    if z.dtype.kind not in "fiub":
        raise InputError(
            f"logits: expected a real-valued array of shape (..., C), got dtype {z.dtype}; "
            "pass the model's logits (or log-probabilities) as floats"
        )
    if z.ndim < 1 or z.shape[-1] < min_classes:
        raise InputError(
            f"logits: expected an array of shape (..., C) with C >= {min_classes} classes, got shape "
            f"{z.shape}; put the classes on the last axis"
        )
    return z.astype(np.float64, copy=False)


def _label_index(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``labels`` as an ``intp`` array broadcast to ``shape[:-1]``, checked against ``C = shape[-1]``."""
    y = np.asarray(labels)
    n_classes = shape[-1]
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
            raise InputError(
                f"labels: expected integer class indices in [0, {n_classes}), got dtype {y.dtype}; "
                "encode the labels as integers 0..C-1"
            )
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise InputError(
            f"labels: expected class indices in [0, {n_classes}), got values in [{y.min()}, {y.max()}]; "
            f"encode labels as 0..C-1 and give logits with all C={n_classes} columns"
        )
    try:
        return np.broadcast_to(y.astype(np.intp, copy=False), shape[:-1])
    except ValueError:
        raise InputError(
            f"labels: shape {y.shape} does not broadcast to the logits' leading shape {shape[:-1]}; "
            "for (N, A, C) logits pass labels[:, None], for (K, N, A, C) pass labels[None, :, None]"
        ) from None


def _take(a: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def _put(a: np.ndarray, idx: np.ndarray, value: float | np.ndarray) -> np.ndarray:
    """Copy of ``a`` with ``a[..., idx] = value`` (``value`` broadcast to ``idx.shape``)."""
    out = a.copy()
    v = np.broadcast_to(np.asarray(value, dtype=a.dtype), idx.shape)
    np.put_along_axis(out, idx[..., None], v[..., None], axis=-1)
    return out


def _lse_excluding(z: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``log sum_{i != idx} exp(z_i)`` (float64, stable; ``-inf`` if every other entry is ``-inf``)."""
    masked = _put(z, idx, -np.inf)
    m = masked.max(axis=-1)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(masked - m_safe[..., None]).sum(axis=-1)) + m_safe


def _phi(z: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Scaled logit ``log p_y - log(1 - p_y) = z_y - logsumexp_{i != y} z_i`` on float64 logits."""
    with np.errstate(invalid="ignore"):
        return _take(z, idx) - _lse_excluding(z, idx)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------
def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities in float64 with max-subtraction and a ``log1p`` normaliser.

    ``log p_i = (z_i - m) - log1p(sum_{j != argmax} exp(z_j - m))`` with ``m = max_j z_j``: the top
    class keeps full relative precision when its probability rounds to 1.
    """
    z = _as_logits(logits)
    top = np.argmax(z, axis=-1)
    m = _take(z, top)
    m = np.where(np.isfinite(m), m, 0.0)[..., None]
    e = _put(np.exp(z - m), top, 0.0)
    return (z - m) - np.log1p(e.sum(axis=-1, keepdims=True))


def probs_to_logits(probs: np.ndarray) -> np.ndarray:
    """Safe log of a probability array: zeros become ``log(tiny) ~ -708`` (finite), float64 out.

    The result is a valid logit array: its softmax gives back ``probs`` (renormalised).
    """
    p = np.asarray(probs, dtype=np.float64)
    return np.log(np.maximum(p, _TINY))


def loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy loss ``-log p_y`` (lower for members; Yeom et al. 2018).

    Computed as ``softplus(-phi)`` so that tiny losses of confident members keep their precision.
    """
    z = _as_logits(logits)
    if z.shape[-1] == 1:
        return np.zeros(z.shape[:-1])
    return _softplus(-_phi(z, _label_index(labels, z.shape)))


def confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Probability of the true class ``p_y`` (saturates at 1.0 in float64; prefer ``loss``)."""
    return np.exp(-loss(logits, labels))


def entropy(logits: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Shannon entropy ``-sum_i p_i log p_i`` of the prediction in nats (``labels`` unused)."""
    logp = log_softmax(logits)
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        return -np.where(p > 0.0, p * logp, 0.0).sum(axis=-1)


def modified_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Modified entropy of Song & Mittal (2021, eq. 5), lower for members.

    ``Mentr = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)``.

    Each term is computed without cancellation: ``log p_y = -softplus(-phi)``,
    ``1 - p_y = exp(-softplus(phi))``; ``log(1 - p_i) = log1p(-p_i)`` except for the top class, where
    it is ``logsumexp_{j != i} z_j - logsumexp_j z_j``.
    """
    z = _as_logits(logits)
    idx = _label_index(labels, z.shape)
    if z.shape[-1] == 1:
        return np.zeros(z.shape[:-1])
    phi = _phi(z, idx)
    log_py = -_softplus(-phi)
    one_minus_py = np.exp(-_softplus(phi))
    term_y = -one_minus_py * log_py

    logp = log_softmax(z)
    p = np.exp(logp)
    with np.errstate(divide="ignore"):
        log1m = np.log1p(-np.minimum(p, 0.5))  # exact where p_i <= 1/2 (all but possibly the top class)
    top = np.argmax(z, axis=-1)
    p_top = _take(p, top)
    # log(1 - p_top) from the logits: -softplus(phi_top)
    log1m_top = -_softplus(_phi(z, top))
    log1m = _put(log1m, top, np.where(p_top > 0.5, log1m_top, _take(log1m, top)))
    terms = _put(-(p * log1m), idx, 0.0)
    return term_y + terms.sum(axis=-1)


def scaled_logit(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LiRA's scaled logit ``phi = log p_y - log sum_{i != y} p_i`` (Carlini et al. 2022, §4.3).

    Computed exactly as ``z_y - logsumexp_{i != y} z_i`` in float64 (no normalisation needed).
    Needs C >= 2 classes.

    This is the reference version: exact and unclipped (``-inf`` for a true-class ``-inf`` logit,
    ``+inf`` when every other class is ``-inf``). The attacks use its fast kernel
    :func:`miaudit.attacks._reference_stats.ref_scaled_logit`, which agrees with it up to rounding and
    is the one place that clips the scaled logit (to ``+-PHI_MAX``, so scores stay finite).
    """
    z = _as_logits(logits, min_classes=2)
    return _phi(z, _label_index(labels, z.shape))


def correct(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Whether the top class of query 0 is the true class: bool ``(N,)`` for logits ``(N, A, C)``.

    The one definition of a model's accuracy in miaudit (``correct(...)[mask].mean()``).
    """
    z = np.asarray(logits)
    if z.ndim != 3:
        raise InputError(f"logits: expected shape (N, A, C), got {z.shape}; add a query axis with logits[:, None, :]")
    y = np.asarray(labels)
    if y.shape != z.shape[:1]:
        raise InputError(f"labels: expected shape ({z.shape[0]},) like the logits, got {y.shape}; pass one label per example")
    return np.asarray(np.argmax(z[:, 0, :], axis=-1) == y)


def hinge(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``z_y - max_{i != y} z_i`` on the given logits (Carlini et al. 2022, §4.3). Needs C >= 2."""
    z = _as_logits(logits, min_classes=2)
    idx = _label_index(labels, z.shape)
    with np.errstate(invalid="ignore"):
        return _take(z, idx) - _put(z, idx, -np.inf).max(axis=-1)


Signal = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: name -> (function, sign): ``sign * signal`` is higher for members.
SIGNALS: dict[str, tuple[Signal, float]] = {
    "loss": (loss, -1.0),
    "confidence": (confidence, 1.0),
    "entropy": (entropy, -1.0),
    "modified_entropy": (modified_entropy, -1.0),
    "scaled_logit": (scaled_logit, 1.0),
}
