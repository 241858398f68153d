"""BASE of Lassila, Östman and Ngo (2025), "Practical Bayes-Optimal Membership Inference Attacks"
(arXiv 2505.24089): ``base`` (online, all references) and ``base_offline`` (OUT references only).

Shared reference-attack plumbing (validation, chunking): :mod:`._reference_base`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .._errors import InputError
from . import _reference_stats as rs
from ._reference_base import _ReferenceAttack

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["Base", "BaseOffline"]


def _check_positive(value: object, what: str, name: str, fix: str) -> float:
    """``value`` as a float if it is a finite real number > 0, else :class:`InputError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        math.isfinite(float(value)) and float(value) > 0
    ):
        raise InputError(f"{name}: {what} must be a finite number > 0, got {value!r}; use {fix}")
    return float(value)


class _Base(_ReferenceAttack):
    """BASE of Lassila, Östman and Ngo (2025), "Practical Bayes-Optimal Membership Inference Attacks",
    arXiv 2505.24089: the target's tempered log-confidence against a log-mean-exp threshold of the
    references' tempered log-confidences.

    For example ``i`` with label ``y_i`` and a model's logits ``z``, the log-confidence at temperature ``T``
    (``temperature``, default 2.0) is ``c(x_i) = log_softmax(z / T)[y_i]``. For probabilities (stored as
    log-probabilities in the bundle) this is ``log`` of ``p_y^(1/T) / sum_j p_j^(1/T)``, the tempered
    probability vector, so probabilities work as logits do.

    * online (``base``): ``score_i = c_target(x_i) - t_i`` with ``t_i = logsumexp_k c_k(x_i) - log K`` over
      **all** K reference models (IN and OUT for ``i``): the log of the references' mean tempered
      confidence.
    * offline (``base_offline``): ``t_i = logsumexp_{k OUT for i} c_k(x_i) - log(#OUT_i)`` over the OUT
      references of ``i`` only, and ``score_i = c_target(x_i) - scale * t_i`` (``scale``, default 0.33, the
      offline scale factor of LeakPro's implementation; ``scale=1`` is the plain difference). An example
      with no OUT reference borrows ``log`` of the mean of ``exp(t_j)`` over the examples ``j`` that have
      one (as ``rmia_offline`` borrows its ``P_out``); if no example has an OUT reference, ``t = 0`` and the
      score is the target's tempered log-confidence alone.

    Higher = more likely member. With ``A > 1`` queries the per-query scores are averaged. Log-confidences
    come from the clipped scaled logit (:func:`._reference_stats.ref_scaled_logit` of ``z / T``, exact
    ``log p_y = -softplus(-phi)``), so ``-inf`` logits (probability 0) give finite scores. The references are
    streamed one model at a time (running ``logaddexp``; chunking does not change any score). Not sharded
    (:mod:`._sharded` covers LiRA only). ``exposure_``: ``threshold`` (``t_i`` averaged over queries,
    borrowed values included), ``mean_in`` / ``mean_out`` (the mean tempered confidence ``exp(c)`` of the
    IN / OUT references, averaged over queries; NaN where there is none), ``n_in``, ``n_out``.
    """

    offline: ClassVar[bool] = False

    temperature: float
    scale: float

    def _validate(self) -> None:
        _check_positive(self.temperature, "temperature", self.name, "temperature=2.0")
        if self.offline:
            _check_positive(self.scale, "scale", self.name, "scale=0.33 (LeakPro's offline factor) or scale=1")

    def _log_conf(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``log_softmax(logits / T)[y]`` of a block ``(..., n, A, C)``: ``(..., n, A)`` float64."""
        t = float(self.temperature)
        z = logits if t == 1.0 else np.divide(logits, t, dtype=np.float64)
        return rs.log_py_from_phi(rs.ref_scaled_logit(z, labels))

    def fit(self, bundle: SignalBundle) -> _Base:
        self._validate()
        _, ref_is_member = self._check_bundle(bundle)
        k, n = ref_is_member.shape
        a = bundle.n_queries
        lse_in, lse_out = np.full((n, a), -np.inf), np.full((n, a), -np.inf)
        for ch in self._chunks(bundle):
            acc_in = np.full((ch.logits.shape[1], a), -np.inf)
            acc_out = acc_in.copy()
            for j in range(k):
                c = self._log_conf(ch.logits[j], ch.labels)
                inn = ch.is_member[j][:, None]
                np.logaddexp(acc_in, np.where(inn, c, -np.inf), out=acc_in)
                np.logaddexp(acc_out, np.where(inn, -np.inf, c), out=acc_out)
            lse_in[ch.sl], lse_out[ch.sl] = acc_in, acc_out
        n_in = ref_is_member.sum(axis=0)
        n_out = k - n_in
        has_out = n_out > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            log_mean_in = lse_in - np.log(np.maximum(n_in, 1))[:, None]
            log_mean_out = lse_out - np.log(np.maximum(n_out, 1))[:, None]
        if self.offline:
            fill = rs.logmeanexp(log_mean_out[has_out], axis=0) if has_out.any() else np.zeros(a)
            thr = np.where(has_out[:, None], log_mean_out, fill[None, :])
        else:
            thr = np.logaddexp(lse_in, lse_out) - np.log(k)
        self.threshold_ = thr
        self.n_fitted_ = n
        self.exposure_ = {
            "threshold": thr.mean(axis=1),
            "mean_in": np.where(n_in > 0, np.exp(log_mean_in).mean(axis=1), np.nan),
            "mean_out": np.where(has_out, np.exp(log_mean_out).mean(axis=1), np.nan),
            "n_in": n_in.astype(np.float64),
            "n_out": n_out.astype(np.float64),
        }
        return self

    def score(self, bundle: SignalBundle) -> np.ndarray:
        self._check_fitted(bundle, getattr(self, "n_fitted_", None))
        self._validate()
        self._check_bundle(bundle)
        labels = np.asarray(bundle.labels)
        s = float(self.scale) if self.offline else 1.0
        out = np.empty(bundle.n_examples)
        for sl in rs.iter_chunks(bundle.n_examples, self._chunk(bundle)):
            c_t = self._log_conf(bundle.target_logits[sl], labels[sl])
            out[sl] = (c_t - s * self.threshold_[sl]).mean(axis=1)
        return out


class Base(_Base):
    __doc__ = _Base.__doc__
    name = "base"
    description = "BASE online (Lassila et al. 2025): tempered log-confidence vs log-mean-exp over all references"
    offline = False

    def __init__(self, *, temperature: float = 2.0, chunk_size: int | None = None) -> None:
        self.temperature = temperature
        self.chunk_size = chunk_size


class BaseOffline(_Base):
    __doc__ = _Base.__doc__
    name = "base_offline"
    description = "BASE offline (Lassila et al. 2025): tempered log-confidence vs scaled threshold of OUT references"
    offline = True

    def __init__(self, *, temperature: float = 2.0, scale: float = 0.33, chunk_size: int | None = None) -> None:
        self.temperature = temperature
        self.scale = scale
        self.chunk_size = chunk_size
