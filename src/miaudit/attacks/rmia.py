"""RMIA of Zarifzadeh, Liu and Shokri (2024), "Low-Cost High-Power Membership Inference Attacks", ICML:
``rmia`` (online) and ``rmia_offline`` (OUT references only, ``a`` tuned on a paired reference model).

Shared reference-attack plumbing (validation, chunking): :mod:`._reference_base`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy import special

from .._errors import InputError
from .._seeds import check_seed
from . import _reference_stats as rs
from ._reference_base import _ReferenceAttack

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["Rmia", "RmiaOffline"]


class Rmia(_ReferenceAttack):
    """RMIA of Zarifzadeh, Liu and Shokri (2024), "Low-Cost High-Power Membership Inference Attacks", ICML.

    ``Pr(x | theta)`` is the target's ``p_y`` (mean over the A queries); ``Pr(x)`` its expectation over
    reference models:

    * online: ``(mean over IN refs + mean over OUT refs) / 2`` of ``p_y`` (the paper's average over
      references, balanced so that examples with unequal IN/OUT counts are treated alike); an example
      with no IN (OUT) reference borrows the other mean times the mean IN/OUT ratio over examples;
    * offline (``offline=True``, automatic when no reference has any IN example):
      ``Pr(x) = ((1 + a) P_out(x) + (1 - a)) / 2`` (paper, §3 / App. B.2.2), where ``a`` is tuned on a
      *paired reference model*: reference ``k`` plays the target, the other references give
      ``P_out`` and ``ref_is_member[k]`` are the labels; ``a`` maximises the AUC (or the TPR at ``tune_fpr``)
      over ``a_grid`` points in ``[0, 1]``, averaged over ``n_paired`` pseudo-targets. The target and
      ``is_member`` are never used. With a single reference ``a = 0.5``; ``a=`` fixes it.

    ``LR(x, z) = [Pr(x|theta)/Pr(x)] / [Pr(z|theta)/Pr(z)]`` for population samples ``z``:
    ``bundle.population_logits`` (target), ``ref_population_logits`` and ``population_labels`` when all
    three are present, otherwise **all audit examples** (members included; as every ``z`` enters only
    through the reference distribution of ratios, this changes the score's scale, not its order).
    ``score(x)`` is the fraction of ``z`` with ``LR(x, z) >= gamma``, computed by sorting the ``|Z|``
    log-ratios and interpolating (:func:`continuous_cdf`, no ``N x |Z|`` matrix) so that it is a
    continuous, strictly increasing function of ``Pr(x|theta)/Pr(x)``; outside the population's range it
    continues linearly (values may leave ``[0, 1]``), so small population sets do not produce ties and
    zero TPR at low FPR. ``gamma`` defaults to 1 online and 2 offline (the paper's choices).

    Tuning ``a`` uses at most ``tune_max_examples`` examples per paired model (a subsample drawn with
    ``seed``, default 0).
    """

    name = "rmia"
    description = "RMIA (Zarifzadeh et al. 2024): likelihood ratio against population samples"
    default_offline: ClassVar[bool] = False

    def __init__(
        self,
        *,
        offline: bool | None = None,
        gamma: float | None = None,
        a: float | None = None,
        a_grid: int = 21,
        tune_fpr: float | None = None,
        n_paired: int = 1,
        tune_max_examples: int = 200_000,
        seed: int = 0,
        chunk_size: int | None = None,
    ) -> None:
        self.offline = offline
        self.gamma = gamma
        self.a = a
        self.a_grid = a_grid
        self.tune_fpr = tune_fpr
        self.n_paired = n_paired
        self.tune_max_examples = tune_max_examples
        self.seed = seed
        self.chunk_size = chunk_size

    def _validate(self) -> None:
        n = self.name
        check_seed(self.seed)
        if self.gamma is not None and not (isinstance(self.gamma, (int, float)) and self.gamma > 0):
            raise InputError(f"{n}: gamma must be a number > 0 or None, got {self.gamma!r}; use gamma=1")
        if self.a is not None and not (isinstance(self.a, (int, float)) and 0.0 <= self.a <= 1.0):
            raise InputError(f"{n}: a must be in [0, 1] or None (tuned), got {self.a!r}; use a=None")
        if not isinstance(self.a_grid, int) or self.a_grid < 2:
            raise InputError(f"{n}: a_grid must be an integer >= 2, got {self.a_grid!r}; use a_grid=21")
        if self.tune_fpr is not None and not (isinstance(self.tune_fpr, float) and 0.0 < self.tune_fpr < 1.0):
            raise InputError(f"{n}: tune_fpr must be None (AUC) or in (0, 1), got {self.tune_fpr!r}; use 0.01")
        if not isinstance(self.n_paired, int) or self.n_paired < 1:
            raise InputError(f"{n}: n_paired must be an integer >= 1, got {self.n_paired!r}; use n_paired=1")
        if not isinstance(self.tune_max_examples, int) or self.tune_max_examples < 10:
            raise InputError(
                f"{n}: tune_max_examples must be an integer >= 10, got {self.tune_max_examples!r}; use 200000"
            )

    @staticmethod
    def _log_pr_offline(log_p_out: np.ndarray, a: float) -> np.ndarray:
        """``log(((1 + a) P_out + (1 - a)) / 2)`` from ``log P_out``, stable (``a = 1`` allowed)."""
        with np.errstate(divide="ignore"):
            out: np.ndarray = np.logaddexp(np.log((1.0 + a) / 2.0) + log_p_out, np.log((1.0 - a) / 2.0))
        return out

    def _population(self, bundle: SignalBundle) -> bool:
        return (
            bundle.population_logits is not None
            and bundle.ref_population_logits is not None
            and bundle.population_labels is not None
        )

    def fit(self, bundle: SignalBundle) -> Rmia:
        self._validate()
        ref_logits, ref_is_member = self._check_bundle(bundle)
        k, n = ref_is_member.shape
        offline = self.default_offline if self.offline is None else bool(self.offline)
        if not ref_is_member.any():
            offline = True
        self.offline_ = offline
        # paired pseudo-targets: references with the most balanced membership
        paired: list[int] = []
        if offline and self.a is None and k >= 2:
            frac = ref_is_member.mean(axis=1)
            order = np.argsort(np.abs(frac - 0.5), kind="stable")
            paired = [int(j) for j in order if 0 < frac[j] < 1][: self.n_paired]
        lm_in, lm_out = np.full(n, -np.inf), np.full(n, -np.inf)
        n_in = ref_is_member.sum(axis=0)
        pair_lp = {j: np.empty(n) for j in paired}
        pair_lo = {j: np.empty(n) for j in paired}
        for ch in self._chunks(bundle):
            masks = [ch.is_member, ~ch.is_member]
            for j in paired:
                only_j = np.zeros_like(ch.is_member)
                only_j[j] = True
                others_out = ~ch.is_member
                others_out[j] = False
                masks += [only_j, others_out]
            res = rs.log_mean_prob(ch.phis(), masks, fallback=ch.phi_rows)
            lm_in[ch.sl], lm_out[ch.sl] = res[0], res[1]
            for t, j in enumerate(paired):
                pair_lp[j][ch.sl], pair_lo[j][ch.sl] = res[2 + 2 * t], res[3 + 2 * t]
        has_in, has_out = n_in > 0, n_in < k
        if offline:
            self.a_ = float(self.a) if self.a is not None else self._tune(pair_lp, pair_lo, ref_is_member)
            if has_out.any():
                fill = special.logsumexp(lm_out[has_out]) - np.log(has_out.sum())
            else:
                fill = np.log(0.5)
            log_p_out = np.where(has_out, lm_out, fill)
            self.log_pr_x_ = self._log_pr_offline(log_p_out, self.a_)
        else:
            both = has_in & has_out
            ratio = float(np.mean(lm_in[both] - lm_out[both])) if both.any() else 0.0
            li = np.where(has_in, lm_in, np.minimum(lm_out + ratio, 0.0))
            lo = np.where(has_out, lm_out, np.minimum(lm_in - ratio, 0.0))
            self.log_pr_x_ = np.logaddexp(li, lo) - np.log(2.0)
        self.log_pr_z_: np.ndarray | None = self._fit_population(bundle) if self._population(bundle) else None
        self.n_fitted_ = n
        self.exposure_ = {
            "mean_in": np.exp(lm_in),
            "mean_out": np.exp(lm_out),
            "log_pr_x": self.log_pr_x_.copy(),
            "n_in": n_in.astype(np.float64),
            "n_out": (k - n_in).astype(np.float64),
        }
        return self

    def _fit_population(self, bundle: SignalBundle) -> np.ndarray:
        rpl = np.asarray(bundle.ref_population_logits)
        pl = np.asarray(bundle.population_logits)
        labels = np.asarray(bundle.population_labels)
        if rpl.ndim != 4 or pl.ndim != 3 or rpl.shape[1:] != pl.shape or labels.shape != pl.shape[:1]:
            raise InputError(
                f"{self.name}: population arrays: expected population_logits (M, A, C), ref_population_logits "
                f"(K, M, A, C) and population_labels (M,), got {pl.shape}, {rpl.shape}, {labels.shape}; "
                "give the target's and every reference's outputs on the same M population examples"
            )
        out = np.empty(pl.shape[0])
        for sl in rs.iter_chunks(pl.shape[0], self._chunk(bundle)):
            logp = rs.log_py_from_phi(rs.ref_scaled_logit(rpl[:, sl], labels[sl]))
            lm = rs.logmeanexp(logp, axis=(0, 2))
            out[sl] = self._log_pr_offline(lm, self.a_) if self.offline_ else lm
        return out

    def _tune(self, pair_lp: dict[int, np.ndarray], pair_lo: dict[int, np.ndarray], ref_is_member: np.ndarray) -> float:
        """Choose ``a`` on paired reference models only (never the target)."""
        if not pair_lp:
            return 0.5
        grid = np.linspace(0.0, 1.0, self.a_grid)
        rng = np.random.default_rng(self.seed)
        total = np.zeros(grid.size)
        for j, lp in pair_lp.items():
            lo = pair_lo[j]
            labels = ref_is_member[j]
            ok = np.flatnonzero(np.isfinite(lo))
            if ok.size > self.tune_max_examples:
                ok = np.sort(rng.choice(ok, self.tune_max_examples, replace=False))
            y = labels[ok]
            if y.all() or not y.any():
                continue
            for g, a in enumerate(grid):
                s = lp[ok] - self._log_pr_offline(lo[ok], float(a))
                if self.tune_fpr is None:
                    total[g] += rs.auc_from_scores(y, s)
                else:
                    total[g] += rs.tpr_at_fpr_fast(y, s, self.tune_fpr)
        self.tune_objective_ = total / max(1, len(pair_lp))
        if not np.any(total):
            return 0.5
        return float(grid[int(np.argmax(total))])

    def score(self, bundle: SignalBundle) -> np.ndarray:
        self._check_fitted(bundle, getattr(self, "n_fitted_", None))
        self._check_bundle(bundle)
        labels = np.asarray(bundle.labels)
        lpt = np.empty(bundle.n_examples)
        for sl in rs.iter_chunks(bundle.n_examples, self._chunk(bundle)):
            phi_t = rs.ref_scaled_logit(bundle.target_logits[sl], labels[sl])
            lpt[sl] = rs.logmeanexp(rs.log_py_from_phi(phi_t), axis=-1)
        log_r_x = lpt - self.log_pr_x_
        if self.log_pr_z_ is not None:
            pl = np.asarray(bundle.population_logits)
            plab = np.asarray(bundle.population_labels)
            lpz = rs.logmeanexp(rs.log_py_from_phi(rs.ref_scaled_logit(pl, plab)), axis=-1)
            log_r_z = np.sort(lpz - self.log_pr_z_)
        else:
            log_r_z = np.sort(log_r_x)
        gamma = self.gamma if self.gamma is not None else (2.0 if self.offline_ else 1.0)
        return rs.continuous_cdf(log_r_z, log_r_x - np.log(gamma))


class RmiaOffline(Rmia):
    __doc__ = Rmia.__doc__
    name = "rmia_offline"
    description = "RMIA offline (Zarifzadeh et al. 2024): OUT references only, a tuned on a paired reference model"
    default_offline = True

