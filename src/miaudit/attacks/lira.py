"""LiRA, the likelihood-ratio attack of Carlini et al. (2022), "Membership Inference Attacks From First
Principles", IEEE S&P: ``lira_online`` (IN and OUT references) and ``lira_offline`` (OUT references only).

Shared reference-attack plumbing (validation, chunking, moments): :mod:`._reference_base`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._errors import InputError
from .._seeds import check_seed
from . import _reference_stats as rs
from ._reference_base import _moments, _pooled_var, _ReferenceAttack, _spread

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["LiraOnline", "LiraOffline"]

_VARIANCES = ("shrunk", "global", "per_example")
#: LiRA's model of the A queries: "correlated" (multivariate Gaussian with a correlation estimated
#: from the references) or "independent" (the paper's average of per-query likelihood ratios).
_QUERY_MODELS = ("correlated", "independent")
#: At most this many examples (a subsample drawn with the attack's ``seed``) estimate the query correlation.
_CORR_ROWS = 20_000


def _validate_prior_df(prior_df: Any, name: str) -> None:
    if isinstance(prior_df, str):
        if prior_df != "auto":
            raise InputError(
                f"{name}: prior_df must be 'auto' or a number >= 0, got {prior_df!r}; use prior_df='auto'"
            )
    elif isinstance(prior_df, bool) or not isinstance(prior_df, (int, float, np.number)) or not prior_df >= 0:
        raise InputError(f"{name}: prior_df must be 'auto' or a number >= 0, got {prior_df!r}; use prior_df='auto'")



class _Lira(_ReferenceAttack):
    """Likelihood-ratio attack of Carlini et al. (2022), "Membership Inference Attacks From First
    Principles", IEEE S&P, with an empirical-Bayes variance estimator.

    Per example ``i`` and query ``a`` the scaled logits ``phi`` of the reference models are modelled as
    ``N(mu_in, s_in^2)`` over the IN references and ``N(mu_out, s_out^2)`` over the OUT references.

    * **online** (``lira_online``): ``sum over queries of log N(phi; mu_in, s_in) - log N(phi; mu_out,
      s_out)``, divided by A (the paper averages the per-query log-likelihood ratios).
    * **offline** (``lira_offline``, OUT references only): the one-sided test of the paper,
      ``Phi((phi - mu_out) / s_out)``, reported as the mean over queries of the z-score
      ``(phi - mu_out) / s_out``, which orders examples exactly as ``Phi`` for one query but does not
      round to 1.0 (no ties at low FPR).

    Variance estimators (``variance``):

    * ``"global"`` -- the paper's fixed variance: one pooled within-group variance per query for IN
      (``v_in = sum_i ss_in,i / sum_i (n_in,i - 1)``) and one for OUT.
    * ``"per_example"`` -- the paper's per-example variances ``ss / (n - 1)`` (falls back to the
      global value where an example has fewer than 2 IN, resp. OUT, references).
    * ``"shrunk"`` (default) -- ``s_in^2 = c_i v_in``, ``s_out^2 = c_i v_out``: the global variances
      times a per-example scale ``c_i`` estimated from IN and OUT pooled,
      ``c_hat_i = (ss_in/v_in + ss_out/v_out) / d_i`` with ``d_i = (n_in - 1) + (n_out - 1)``
      degrees of freedom (offline: OUT only), and shrunk toward the prior scale ``c0`` as
      ``c_i = (d0 c0 + d_i c_hat_i) / (d0 + d_i)``, i.e. weight ``d_i / (d_i + d0)`` on the example.
      ``prior_df="auto"`` estimates ``(d0, c0)`` from all examples by the empirical-Bayes moment
      method of Smyth (2004, limma): no heterogeneity gives ``d0 = inf`` (the global variance, best
      with few references), strong heterogeneity a small ``d0`` (close to per-example variances, best
      with hundreds); a number fixes ``d0`` (``c0 = 1``). Works from 4 to hundreds of references
      without a cliff.

    Several queries (``A > 1``, augmentations): ``query_model="correlated"`` (default) models the A
    scaled logits of an example as one multivariate Gaussian whose covariance is ``D R D``, with ``D``
    the per-query standard deviations above and ``R`` one (A, A) correlation matrix estimated from
    the references' standardised residuals (fitted as ``query_corr_``); the online score is the
    log-likelihood ratio of the two multivariate Gaussians divided by A, the offline score the
    generalised-least-squares combination of the per-query z-scores. Augmented queries are strongly
    correlated, and averaging per-query ratios as if independent counts the same evidence several
    times. ``query_model="independent"`` is the paper's average (R = I). With A = 1 both agree.

    ``seed`` (default 0) draws the subsample of at most 20,000 examples on which ``query_corr_`` is
    estimated (no randomness at all with fewer examples).

    ``predictive=True`` (default) uses the predictive variance of a new draw given estimated means,
    ``s^2 (1 + 1/n)``, so that examples with few references are not over-confident.

    Fallbacks (finite scores everywhere): an example with no IN reference gets
    ``mu_in = mu_out + delta``, where ``delta`` is the mean IN-OUT shift over examples that have both,
    with the spread of that shift added to its variance; no OUT reference: ``mu_out = mu_in - delta``
    (offline: the population mean and variance of OUT means). Fitted per-example statistics, averaged
    over queries, are exposed as ``exposure_`` (``mean_in``, ``mean_out``, ``std_in``, ``std_out``,
    ``n_in``, ``n_out``; the values the score used, fallbacks included, with predictive inflation;
    offline: no ``std_in`` and ``mean_in`` is NaN where an example has no IN reference).
    """

    offline: ClassVar[bool] = False

    def __init__(
        self,
        *,
        variance: str = "shrunk",
        prior_df: float | str = "auto",
        predictive: bool = True,
        query_model: str = "correlated",
        seed: int = 0,
        chunk_size: int | None = None,
    ) -> None:
        self.variance = variance
        self.prior_df = prior_df
        self.predictive = predictive
        self.query_model = query_model
        self.seed = seed
        self.chunk_size = chunk_size

    def _validate(self) -> None:
        if self.variance not in _VARIANCES:
            raise InputError(
                f"{self.name}: variance must be one of {', '.join(_VARIANCES)}, got {self.variance!r}; "
                "use variance='shrunk'"
            )
        _validate_prior_df(self.prior_df, self.name)
        check_seed(self.seed)
        if self.query_model not in _QUERY_MODELS:
            raise InputError(
                f"{self.name}: query_model must be one of {', '.join(_QUERY_MODELS)}, got {self.query_model!r}; "
                "use query_model='correlated'"
            )

    def _scale(self, ss: np.ndarray, df: np.ndarray) -> np.ndarray:
        """Per-example variance scale ``c`` (N, A) for scaled sums of squares ``ss`` and ``df`` (N,)."""
        n, a = ss.shape
        with np.errstate(invalid="ignore", divide="ignore"):
            c_hat = np.where(df[:, None] > 0, ss / np.maximum(df, 1)[:, None], 0.0)
        if self.variance == "global":
            return np.ones((n, a))
        if self.variance == "per_example":
            return np.where(df[:, None] > 0, np.maximum(c_hat, rs.VAR_FLOOR), 1.0)
        out = np.empty((n, a))
        d0s, c0s = [], []
        for q in range(a):
            if self.prior_df == "auto":
                d0, c0 = rs.fit_scaled_inv_chi2(c_hat[:, q], df)
            else:
                d0, c0 = float(self.prior_df), 1.0
            d0s.append(d0)
            c0s.append(c0)
            out[:, q] = rs.moderate(c_hat[:, q], df, prior_df=d0, prior_var=c0)
        self.prior_df_ = np.array(d0s)
        self.prior_scale_ = np.array(c0s)
        return np.maximum(out, rs.VAR_FLOOR)

    def fit(self, bundle: SignalBundle) -> _Lira:
        self._validate()
        return self._fit_moments(bundle, _moments(self, bundle))

    def _fit_moments(self, bundle: SignalBundle, m: dict[str, np.ndarray]) -> _Lira:
        """The fit from the per-example IN/OUT moments of the references (:func:`._reference_base._moments`,
        or merged from shards by :mod:`._sharded`): everything after the one pass over the references."""
        n_in, n_out = m["n_in"], m["n_out"]
        df_in, df_out = np.maximum(n_in - 1, 0), np.maximum(n_out - 1, 0)
        has_in, has_out = n_in > 0, n_out > 0
        mean_in, mean_out = m["mean_in"], m["mean_out"]
        pop_out_mean, pop_out_var = _spread(mean_out, has_out)
        v_out = _pooled_var(m["ss_out"], df_out)
        if self.offline:
            if v_out is None:
                v_out = pop_out_var
            c = self._scale(m["ss_out"] / v_out, df_out)
            var_out = c * v_out
            mu_out = np.where(has_out[:, None], mean_out, pop_out_mean)
            if self.predictive:
                var_out = var_out * (1.0 + 1.0 / np.maximum(n_out, 1))[:, None]
            var_out = np.where(has_out[:, None], var_out, v_out + pop_out_var)
            mu_in, var_in = mean_in, np.full_like(var_out, np.nan)
        else:
            v_in = _pooled_var(m["ss_in"], df_in)
            pop_in_mean, pop_in_var = _spread(mean_in, has_in)
            if v_in is None and v_out is None:
                v_in = v_out = np.maximum(pop_in_var, pop_out_var)
            elif v_in is None:
                v_in = v_out
            elif v_out is None:
                v_out = v_in
            if self.variance == "per_example":  # the paper's: separate IN and OUT sample variances
                with np.errstate(invalid="ignore", divide="ignore"):
                    var_in = np.where(df_in[:, None] > 0, m["ss_in"] / np.maximum(df_in, 1)[:, None], v_in)
                    var_out = np.where(df_out[:, None] > 0, m["ss_out"] / np.maximum(df_out, 1)[:, None], v_out)
            else:
                c = self._scale(m["ss_in"] / v_in + m["ss_out"] / v_out, df_in + df_out)
                var_in, var_out = c * v_in, c * v_out
            both = has_in & has_out
            if both.any():
                diff = mean_in[both] - mean_out[both]
                delta = diff.mean(axis=0)
                delta_var = diff.var(axis=0) if diff.shape[0] > 1 else np.zeros_like(delta)
            elif has_in.any() and has_out.any():
                delta, delta_var = pop_in_mean - pop_out_mean, pop_in_var + pop_out_var
            else:
                delta, delta_var = np.zeros(bundle.n_queries), np.zeros(bundle.n_queries)
            mu_in = np.where(has_in[:, None], mean_in, mean_out + delta)
            mu_out = np.where(has_out[:, None], mean_out, mean_in - delta)
            if self.predictive:
                inf_in = 1.0 + 1.0 / np.maximum(n_in, 1)
                inf_out = 1.0 + 1.0 / np.maximum(n_out, 1)
                var_in_p, var_out_p = var_in * inf_in[:, None], var_out * inf_out[:, None]
            else:
                var_in_p, var_out_p = var_in.copy(), var_out.copy()
            # a missing group borrows the other group's mean: add its uncertainty and the shift's spread
            borrow_in = var_in * (1.0 + 1.0 / np.maximum(n_out, 1))[:, None] + delta_var
            borrow_out = var_out * (1.0 + 1.0 / np.maximum(n_in, 1))[:, None] + delta_var
            var_in_p = np.where(has_in[:, None], var_in_p, borrow_in)
            var_out_p = np.where(has_out[:, None], var_out_p, borrow_out)
            var_in, var_out = var_in_p, var_out_p
            self.delta_ = delta
        self.mu_in_, self.mu_out_ = mu_in, mu_out
        self.var_in_ = var_in if self.offline else np.maximum(var_in, rs.VAR_FLOOR)
        self.var_out_ = np.maximum(var_out, rs.VAR_FLOOR)
        self.n_fitted_ = bundle.n_examples
        self.exposure_ = {
            "mean_in": mu_in.mean(axis=1),
            "mean_out": mu_out.mean(axis=1),
            "std_in": np.sqrt(var_in).mean(axis=1),
            "std_out": np.sqrt(self.var_out_).mean(axis=1),
            "n_in": n_in.astype(np.float64),
            "n_out": n_out.astype(np.float64),
        }
        if self.offline:  # IN references are not modelled offline: no std_in, mean_in only where observed
            del self.exposure_["std_in"]
            self.exposure_["mean_in"] = np.where(has_in, mean_in.mean(axis=1), np.nan)
        a = bundle.n_queries
        self.query_corr_ = (
            self._query_correlation(bundle) if a > 1 and self.query_model == "correlated" else np.eye(a)
        )
        return self

    def _query_correlation(self, bundle: SignalBundle) -> np.ndarray:
        """Correlation (A, A) of the standardised reference residuals across queries, pooled over
        examples and models (IN and OUT online, OUT only offline), on up to ``_CORR_ROWS`` examples
        (a subsample drawn with ``seed``), shrunk 5% toward the identity so it is well conditioned."""
        ref_logits, ref_is_member = self._check_bundle(bundle)
        n = bundle.n_examples
        rows = np.arange(n) if n <= _CORR_ROWS else np.sort(
            np.random.default_rng(self.seed).choice(n, size=_CORR_ROWS, replace=False))
        phi = rs.ref_scaled_logit(ref_logits[:, rows], np.asarray(bundle.labels)[rows])  # (K, r, A)
        is_member = np.asarray(ref_is_member)[:, rows][..., None]
        mu = np.where(is_member, self.mu_in_[rows][None], self.mu_out_[rows][None])
        var = np.where(is_member, self.var_in_[rows][None], self.var_out_[rows][None])
        z = (phi - mu) / np.sqrt(var)
        use = ~is_member[..., 0] if self.offline else np.ones(is_member.shape[:2], dtype=bool)
        zz = z[use]
        zz = zz[np.all(np.isfinite(zz), axis=1)]
        a = phi.shape[-1]
        if zz.shape[0] < 2 * a:
            return np.eye(a)
        corr = np.corrcoef(zz, rowvar=False)
        if not np.all(np.isfinite(corr)):
            return np.eye(a)
        out: np.ndarray = 0.95 * corr + 0.05 * np.eye(a)
        return out

    def score(self, bundle: SignalBundle) -> np.ndarray:
        self._check_fitted(bundle, getattr(self, "n_fitted_", None))
        self._check_bundle(bundle)
        phi = self._target_phi(bundle)
        a = phi.shape[1]
        corr = getattr(self, "query_corr_", np.eye(a))
        if self.offline:
            z = (phi - self.mu_out_) / np.sqrt(self.var_out_)
            if np.array_equal(corr, np.eye(a)):
                mean_z: np.ndarray = z.mean(axis=1)
                return mean_z
            # generalised-least-squares combination of correlated z-scores (the one-sided test of the
            # multivariate Gaussian with a common shift); equals the mean z up to scale when corr = I
            w = np.linalg.solve(corr, np.ones(a))
            gls: np.ndarray = z @ w / float(np.sqrt(w.sum())) / np.sqrt(a)
            return gls
        r_in = (phi - self.mu_in_) / np.sqrt(self.var_in_)
        r_out = (phi - self.mu_out_) / np.sqrt(self.var_out_)
        if np.array_equal(corr, np.eye(a)):
            q_in, q_out = (r_in**2).sum(axis=1), (r_out**2).sum(axis=1)
        else:  # multivariate Gaussian over the A queries: covariance D R D, D = per-query std
            prec = np.linalg.inv(corr)
            q_in = np.einsum("na,ab,nb->n", r_in, prec, r_in)
            q_out = np.einsum("na,ab,nb->n", r_out, prec, r_out)
        llr = 0.5 * (q_out - q_in + (np.log(self.var_out_) - np.log(self.var_in_)).sum(axis=1))
        out: np.ndarray = llr / a
        return out


class LiraOnline(_Lira):
    __doc__ = _Lira.__doc__
    name = "lira_online"
    description = "LiRA online (Carlini et al. 2022): per-example Gaussian likelihood ratio, IN vs OUT references"
    offline = False


class LiraOffline(_Lira):
    __doc__ = _Lira.__doc__
    name = "lira_offline"
    description = "LiRA offline (Carlini et al. 2022): one-sided z-score against OUT references"
    offline = True

