"""Loss calibrated by reference models: Attack-R of Ye et al. (2022), "Enhanced Membership Inference
Attacks against Machine Learning Models", ACM CCS (``attack_r``), and the difficulty calibration of
Watson et al. (2022), "On the Importance of Difficulty Calibration in Membership Inference Attacks",
ICLR (``calibrated_loss``).

Shared reference-attack plumbing (validation, chunking, moments): :mod:`._reference_base`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import special

from .._errors import InputError
from . import _reference_stats as rs
from ._reference_base import _moments, _pooled_var, _ReferenceAttack, _spread

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["AttackR", "CalibratedLoss"]


def _loss_moments(attack: _ReferenceAttack, bundle: SignalBundle) -> dict[str, np.ndarray]:
    """Per-example IN/OUT moments of the query-averaged loss (arrays of shape (N, 1))."""
    return _moments(attack, bundle, transform=lambda phi: rs.loss_from_phi(phi).mean(axis=-1, keepdims=True))


class AttackR(_ReferenceAttack):
    """Attack-R of Ye et al. (2022), "Enhanced Membership Inference Attacks against Machine Learning
    Models", ACM CCS: the per-example ``alpha``-quantile of the OUT references' losses is the threshold.

    Sweeping ``alpha`` is thresholding the percentile of the target's loss ``l`` within the example's
    OUT losses ``l_1..l_m``, so the threshold-free score is that percentile, smoothed with a Gaussian
    kernel: ``F(l) = mean_j Phi((l - l_j) / h)`` (small = member), reported as ``-log F(l)`` (computed
    with ``log_ndtr``, exact in the far tail, so confident members do not tie at a percentile of 0).
    ``h = bandwidth * s * m^(-1/5)`` (Silverman's rule, ``bandwidth=1.06``) with ``s`` the example's
    OUT loss standard deviation moderated toward the global value (Smyth 2004, as in LiRA). Losses are
    averaged over queries. Examples without OUT references are scored against ``N(mean, var)`` of all
    examples' OUT mean losses. ``exposure_`` holds ``mean_in``, ``mean_out``, ``std_out``, ``n_in``,
    ``n_out`` of the loss.
    """

    name = "attack_r"
    description = "Attack-R (Ye et al. 2022): percentile of the loss among OUT reference losses"

    def __init__(self, *, bandwidth: float = 1.06, chunk_size: int | None = None) -> None:
        self.bandwidth = bandwidth
        self.chunk_size = chunk_size

    def fit(self, bundle: SignalBundle) -> AttackR:
        if isinstance(self.bandwidth, bool) or not isinstance(self.bandwidth, (int, float)) or not self.bandwidth > 0:
            raise InputError(
                f"{self.name}: bandwidth must be a number > 0, got {self.bandwidth!r}; use bandwidth=1.06"
            )
        m = _loss_moments(self, bundle)
        n_in, n_out = m["n_in"], m["n_out"]
        df = np.maximum(n_out - 1, 0)
        has_out = n_out > 0
        pop_mean, pop_var = _spread(m["mean_out"], has_out)
        v = _pooled_var(m["ss_out"], df)
        if v is None:
            v = pop_var
        c_hat = np.where(df > 0, m["ss_out"][:, 0] / v[0] / np.maximum(df, 1), 0.0)
        d0, c0 = rs.fit_scaled_inv_chi2(c_hat, df)
        var = np.maximum(rs.moderate(c_hat, df, prior_df=d0, prior_var=c0) * v[0], rs.VAR_FLOOR)
        self.h_ = self.bandwidth * np.sqrt(var) * np.maximum(n_out, 1) ** -0.2
        self.fallback_ = (float(pop_mean[0]), float(np.sqrt(pop_var[0] + v[0])))
        self.n_fitted_ = bundle.n_examples
        self.exposure_ = {
            "mean_in": m["mean_in"][:, 0],
            "mean_out": np.where(has_out, m["mean_out"][:, 0], pop_mean[0]),
            "std_out": np.sqrt(var),
            "n_in": n_in.astype(np.float64),
            "n_out": n_out.astype(np.float64),
        }
        return self

    def score(self, bundle: SignalBundle) -> np.ndarray:
        self._check_fitted(bundle, getattr(self, "n_fitted_", None))
        target_loss = rs.loss_from_phi(self._target_phi(bundle)).mean(axis=1)
        out = np.empty(bundle.n_examples)
        mu, sd = self.fallback_
        for ch in self._chunks(bundle):
            sl = ch.sl
            ref_loss = np.stack([rs.loss_from_phi(phi).mean(axis=-1) for phi in ch.phis()])  # (K, n)
            u = (target_loss[sl] - ref_loss) / self.h_[sl]
            log_f = rs.logmeanexp(special.log_ndtr(u), axis=0, where=~ch.is_member)
            no_out = ~np.isfinite(log_f)
            if no_out.any():
                log_f = np.where(no_out, special.log_ndtr((target_loss[sl] - mu) / sd), log_f)
            out[sl] = -log_f
        return out


class CalibratedLoss(_ReferenceAttack):
    """Difficulty calibration of Watson et al. (2022), "On the Importance of Difficulty Calibration in
    Membership Inference Attacks", ICLR: ``score = -(loss(x) - mean over OUT references of loss(x))``.

    Losses are averaged over queries. An example without OUT references uses its IN mean plus the
    mean OUT-IN loss shift over examples that have both. ``exposure_``: ``mean_in``, ``mean_out``,
    ``n_in``, ``n_out`` of the loss.
    """

    name = "calibrated_loss"
    score_column = "neg_calibrated_loss"  # minus the calibrated loss
    description = "Difficulty-calibrated loss (Watson et al. 2022): loss minus its mean over OUT references"

    def __init__(self, *, chunk_size: int | None = None) -> None:
        self.chunk_size = chunk_size

    def fit(self, bundle: SignalBundle) -> CalibratedLoss:
        m = _loss_moments(self, bundle)
        n_in, n_out = m["n_in"], m["n_out"]
        has_in, has_out = n_in > 0, n_out > 0
        mean_in, mean_out = m["mean_in"][:, 0], m["mean_out"][:, 0]
        both = has_in & has_out
        if both.any():
            shift = float(np.mean(mean_out[both] - mean_in[both]))
        else:
            shift = 0.0
        pop_mean, _ = _spread(m["mean_out"], has_out)
        fill = np.where(has_in, mean_in + shift, pop_mean[0])
        self.mean_out_ = np.where(has_out, mean_out, fill)
        self.n_fitted_ = bundle.n_examples
        self.exposure_ = {
            "mean_in": mean_in,
            "mean_out": self.mean_out_.copy(),
            "n_in": n_in.astype(np.float64),
            "n_out": n_out.astype(np.float64),
        }
        return self

    def score(self, bundle: SignalBundle) -> np.ndarray:
        self._check_fitted(bundle, getattr(self, "n_fitted_", None))
        self._check_bundle(bundle)
        target_loss = rs.loss_from_phi(self._target_phi(bundle)).mean(axis=1)
        out: np.ndarray = -(target_loss - self.mean_out_)
        return out
