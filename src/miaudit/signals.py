"""Per-example membership signals (field notes §2): pure numpy functions, float64-stable.

Every function takes ``logits`` of shape ``(..., C)`` and integer ``labels`` broadcastable to
``logits.shape[:-1]`` (for ``(N, A, C)`` logits pass ``labels[:, None]``; for ``(K, N, A, C)``
pass ``labels[None, :, None]``) and returns an array of shape ``logits.shape[:-1]``.

Logits may be any real scores whose softmax is the model's probability vector; log-probabilities
are valid logits. Convert a probability array with :func:`probs_to_logits` first.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "log_softmax",
    "probs_to_logits",
    "loss",
    "confidence",
    "entropy",
    "modified_entropy",
    "scaled_logit",
    "hinge",
    "SIGNALS",
]

_TINY = np.finfo(np.float64).tiny


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities in float64, computed with max-subtraction (log-sum-exp)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def probs_to_logits(probs: np.ndarray) -> np.ndarray:
    """Safe log of a probability array (zeros become a very negative finite number)."""
    p = np.asarray(probs, dtype=np.float64)
    return np.log(np.maximum(p, _TINY))


def _label_take(a: np.ndarray, labels: np.ndarray) -> np.ndarray:
    idx = np.broadcast_to(np.asarray(labels, dtype=np.intp), a.shape[:-1])
    return np.take_along_axis(a, idx[..., None], axis=-1)[..., 0]


def _log_rest(logp: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p_y, log sum_{i != y} p_i), both float64 and stable."""
    log_py = _label_take(logp, labels)
    masked = logp.copy()
    idx = np.broadcast_to(np.asarray(labels, dtype=np.intp), logp.shape[:-1])
    np.put_along_axis(masked, idx[..., None], -np.inf, axis=-1)
    m = masked.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    log_rest = np.log(np.exp(masked - m).sum(axis=-1)) + m[..., 0]
    return log_py, log_rest


def loss(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cross-entropy loss ``-log p_y`` (lower for members)."""
    return -_label_take(log_softmax(logits), labels)


def confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Probability of the true class ``p_y``."""
    return np.exp(_label_take(log_softmax(logits), labels))


def entropy(logits: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Shannon entropy ``-sum_i p_i log p_i`` of the prediction (labels unused)."""
    logp = log_softmax(logits)
    return -(np.exp(logp) * logp).sum(axis=-1)


def modified_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal (2021) Mentr = -(1 - p_y) log p_y - sum_{i != y} p_i log(1 - p_i)."""
    logp = log_softmax(logits)
    p = np.exp(logp)
    log1m = np.log1p(-np.minimum(p, 1.0 - 1e-16))  # log(1 - p_i), finite
    log_py = _label_take(logp, labels)
    p_y = np.exp(log_py)
    term_y = -(1.0 - p_y) * log_py
    all_terms = -(p * log1m)
    term_rest = all_terms.sum(axis=-1) - _label_take(all_terms, labels)
    return term_y + term_rest


def scaled_logit(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """LiRA's scaled logit ``phi = log p_y - log sum_{i != y} p_i`` (Carlini et al. 2022)."""
    log_py, log_rest = _log_rest(log_softmax(logits), labels)
    return log_py - log_rest


def hinge(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``z_y - max_{i != y} z_i`` on the given logits."""
    z = np.asarray(logits, dtype=np.float64)
    z_y = _label_take(z, labels)
    masked = z.copy()
    idx = np.broadcast_to(np.asarray(labels, dtype=np.intp), z.shape[:-1])
    np.put_along_axis(masked, idx[..., None], -np.inf, axis=-1)
    return z_y - masked.max(axis=-1)


#: name -> (function, sign): sign * signal is higher for members.
SIGNALS = {
    "loss": (loss, -1.0),
    "confidence": (confidence, 1.0),
    "entropy": (entropy, -1.0),
    "modified_entropy": (modified_entropy, -1.0),
    "scaled_logit": (scaled_logit, 1.0),
}
