"""Reference-model attacks (field notes §3): LiRA, RMIA, Attack-R and difficulty calibration.

Every attack here reads the reference part of a :class:`~miaudit.data.SignalBundle`:
``ref_logits`` ``(K, N, A, C)`` and ``ref_is_member`` ``(K, N)`` (reference model ``k`` was trained on example
``i`` iff ``ref_is_member[k, i]``), plus ``target_logits`` ``(N, A, C)`` to score. ``bundle.is_member`` is never
read. Counts of IN and OUT references may differ per example and may be small or zero (in a full audit
each target is scored with the other ``K - 1`` models, so ``K = 4`` leaves 1 or 2 IN references): every
estimator below has a documented fallback and every score is finite.

Work is streamed over chunks of ``chunk_size`` examples (``None``: about 1 MiB of float64 per model and
chunk); within a chunk the reference models are visited one at a time (vectorised over examples and
queries, float64 accumulation in a fixed order), so no ``(K, n, A)`` float64 block is built and the
reference logits are never copied. ``fit`` keeps only per-example statistics of size ``O(N * A)``.
Chunking does not change any result, bit for bit (global statistics are computed from the full
per-example arrays after the pass).

Registered names: ``lira_online``, ``lira_offline``, ``rmia``, ``rmia_offline``, ``attack_r``,
``calibrated_loss``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy import special

from .._errors import ConfigError, InputError
from . import _reference_stats as rs
from ._base import Attack, register_attack

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["LiraOnline", "LiraOffline", "Rmia", "RmiaOffline", "AttackR", "CalibratedLoss"]

_VARIANCES = ("shrunk", "global", "per_example")


# --------------------------------------------------------------------------------------------
# shared plumbing
# --------------------------------------------------------------------------------------------
#: LiRA's model of the A queries: "correlated" (multivariate Gaussian with a correlation estimated
#: from the references) or "independent" (the paper's average of per-query likelihood ratios).
_QUERY_MODELS = ("correlated", "independent")
_CORR_ROWS = 20_000


class _ReferenceAttack(Attack):
    """Validation, chunking and the per-chunk signal stream shared by the reference attacks."""

    requires: ClassVar[frozenset[str]] = frozenset({"reference"})

    chunk_size: int | None

    def _check_bundle(self, bundle: "SignalBundle") -> tuple[np.ndarray, np.ndarray]:
        name = self.name
        ref_logits, ref_is_member = bundle.ref_logits, bundle.ref_is_member
        if ref_logits is None or ref_is_member is None:
            missing = "ref_logits" if ref_logits is None else "ref_is_member"
            raise InputError(
                f"{name}: bundle.{missing} is missing; expected reference-model logits ref_logits (K, N, A, C) "
                "with their membership ref_is_member (K, N); add them to the bundle or run `miaudit audit` to train "
                "reference models"
            )
        tl = np.asarray(bundle.target_logits)
        if tl.ndim != 3:
            raise InputError(
                f"{name}: bundle.target_logits: expected shape (N, A, C), got {tl.shape}; build the bundle "
                "with SignalBundle.from_arrays"
            )
        n, a, c = tl.shape
        if ref_logits.ndim != 4 or ref_logits.shape[1:] != (n, a, c) or ref_logits.shape[0] < 1:
            raise InputError(
                f"{name}: bundle.ref_logits: expected shape (K, {n}, {a}, {c}) matching target_logits "
                f"(N, A, C) = {tl.shape}, got {ref_logits.shape}; give every reference model's logits on "
                "the same examples and queries"
            )
        ref_is_member = np.asarray(ref_is_member)
        if ref_is_member.shape != ref_logits.shape[:2] or ref_is_member.dtype != bool:
            raise InputError(
                f"{name}: bundle.ref_is_member: expected a bool array of shape {ref_logits.shape[:2]} (K, N), got "
                f"{ref_is_member.dtype} {ref_is_member.shape}; pass ref_is_member[k, i] = True iff reference k trained on example i"
            )
        if c < 2:
            raise InputError(
                f"{name}: bundle.target_logits has C = {c} class; reference attacks need C >= 2 classes"
            )
        labels = np.asarray(bundle.labels)
        if labels.shape != (n,):
            raise InputError(
                f"{name}: bundle.labels: expected shape ({n},) matching target_logits, got {labels.shape}"
            )
        return ref_logits, ref_is_member

    def _chunk(self, bundle: "SignalBundle") -> int:
        rs.check_chunk_size(self.chunk_size, name=self.name)
        if self.chunk_size is not None:
            return int(self.chunk_size)
        return rs.auto_chunk_size(bundle.n_queries, bundle.n_classes)

    def _chunks(self, bundle: "SignalBundle") -> Iterator["_Chunk"]:
        """Consecutive chunks of examples: views into the reference logits, no copies."""
        ref_logits, ref_is_member = self._check_bundle(bundle)
        labels = np.asarray(bundle.labels)
        for sl in rs.iter_chunks(bundle.n_examples, self._chunk(bundle)):
            yield _Chunk(sl, ref_logits[:, sl], ref_is_member[:, sl], labels[sl])

    def _target_phi(self, bundle: "SignalBundle") -> np.ndarray:
        """Target scaled logits ``(N, A)`` float64."""
        labels = np.asarray(bundle.labels)
        tl = bundle.target_logits
        out = np.empty((bundle.n_examples, bundle.n_queries))
        for sl in rs.iter_chunks(bundle.n_examples, self._chunk(bundle)):
            out[sl] = rs.ref_scaled_logit(tl[sl], labels[sl])
        return out

    def _check_fitted(self, bundle: "SignalBundle", n_fitted: int | None) -> None:
        if n_fitted is None:
            raise InputError(f"{self.name}: score() was called before fit(); call fit(bundle) or fit_score(bundle)")
        if bundle.n_examples != n_fitted:
            raise InputError(
                f"{self.name}: fitted on {n_fitted} examples but asked to score {bundle.n_examples}; "
                "score the same bundle the attack was fitted on"
            )


class _Chunk:
    """A chunk of examples: ``sl`` into the bundle, reference logits ``(K, n, A, C)``, ``is_member (K, n)``."""

    __slots__ = ("sl", "logits", "is_member", "labels")

    def __init__(self, sl: slice, logits: np.ndarray, is_member: np.ndarray, labels: np.ndarray) -> None:
        self.sl, self.logits, self.is_member, self.labels = sl, logits, is_member, labels

    def phis(self) -> Iterator[np.ndarray]:
        """Each reference model's scaled logits ``(n, A)`` float64, one model at a time."""
        for k in range(self.logits.shape[0]):
            yield rs.ref_scaled_logit(self.logits[k], self.labels)

    def phi_rows(self, rows: np.ndarray) -> np.ndarray:
        """All models' scaled logits ``(K, r, A)`` on a few rows of the chunk."""
        return rs.ref_scaled_logit(self.logits[:, rows], self.labels[rows])


def _moments(attack: _ReferenceAttack, bundle: "SignalBundle", transform: Any = None) -> dict[str, np.ndarray]:
    """Stream the references once: per-example IN/OUT moments of ``transform(phi)`` (default phi)."""
    n = bundle.n_examples
    a = bundle.n_queries if transform is None else 1
    out = {k: np.zeros((n, a)) for k in ("mean_in", "mean_out", "ss_in", "ss_out")}
    out["n_in"] = np.zeros(n, dtype=np.int64)
    out["n_out"] = np.zeros(n, dtype=np.int64)
    for ch in attack._chunks(bundle):
        sl = ch.sl
        vals = ch.phis() if transform is None else (transform(phi) for phi in ch.phis())
        n_in, n_out, m_in, m_out, ss_in, ss_out = rs.stream_moments(vals, ch.is_member)
        out["n_in"][sl], out["n_out"][sl] = n_in, n_out
        out["mean_in"][sl], out["mean_out"][sl] = m_in, m_out
        out["ss_in"][sl], out["ss_out"][sl] = ss_in, ss_out
    return out


def _pooled_var(ss: np.ndarray, df: np.ndarray) -> np.ndarray | None:
    """Per-query pooled within-group variance ``sum ss / sum df`` ((A,)), or None without any df."""
    tot = df.sum()
    if tot <= 0:
        return None
    return np.maximum(ss.sum(axis=0) / tot, rs.VAR_FLOOR)


def _spread(means: np.ndarray, have: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-query mean and variance across examples of ``means[have]`` (fallback 0 and 1)."""
    if have.sum() == 0:
        return np.zeros(means.shape[1]), np.ones(means.shape[1])
    sel = means[have]
    var = sel.var(axis=0) if sel.shape[0] > 1 else np.ones(means.shape[1])
    return sel.mean(axis=0), np.maximum(var, rs.VAR_FLOOR)


def _validate_prior_df(prior_df: Any, name: str) -> None:
    if isinstance(prior_df, str):
        if prior_df != "auto":
            raise ConfigError(
                f"{name}: prior_df must be 'auto' or a number >= 0, got {prior_df!r}; use prior_df='auto'"
            )
    elif isinstance(prior_df, bool) or not isinstance(prior_df, (int, float, np.number)) or not prior_df >= 0:
        raise ConfigError(f"{name}: prior_df must be 'auto' or a number >= 0, got {prior_df!r}; use prior_df='auto'")


# --------------------------------------------------------------------------------------------
# LiRA
# --------------------------------------------------------------------------------------------
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
        chunk_size: int | None = None,
    ) -> None:
        self.variance = variance
        self.prior_df = prior_df
        self.predictive = predictive
        self.query_model = query_model
        self.chunk_size = chunk_size

    def _validate(self) -> None:
        if self.variance not in _VARIANCES:
            raise ConfigError(
                f"{self.name}: variance must be one of {', '.join(_VARIANCES)}, got {self.variance!r}; "
                "use variance='shrunk'"
            )
        _validate_prior_df(self.prior_df, self.name)
        if self.query_model not in _QUERY_MODELS:
            raise ConfigError(
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

    def fit(self, bundle: "SignalBundle") -> "_Lira":
        self._validate()
        m = _moments(self, bundle)
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

    def _query_correlation(self, bundle: "SignalBundle") -> np.ndarray:
        """Correlation (A, A) of the standardised reference residuals across queries, pooled over
        examples and models (IN and OUT online, OUT only offline), on up to ``_CORR_ROWS`` examples
        (a fixed, seeded subsample), shrunk 5% toward the identity so it is well conditioned."""
        ref_logits, ref_is_member = self._check_bundle(bundle)
        n = bundle.n_examples
        rows = np.arange(n) if n <= _CORR_ROWS else np.sort(
            np.random.default_rng(0).choice(n, size=_CORR_ROWS, replace=False))
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
        return 0.95 * corr + 0.05 * np.eye(a)

    def score(self, bundle: "SignalBundle") -> np.ndarray:
        self._check_fitted(bundle, getattr(self, "n_fitted_", None))
        self._check_bundle(bundle)
        phi = self._target_phi(bundle)
        a = phi.shape[1]
        corr = getattr(self, "query_corr_", np.eye(a))
        if self.offline:
            z = (phi - self.mu_out_) / np.sqrt(self.var_out_)
            if np.array_equal(corr, np.eye(a)):
                return z.mean(axis=1)
            # generalised-least-squares combination of correlated z-scores (the one-sided test of the
            # multivariate Gaussian with a common shift); equals the mean z up to scale when corr = I
            w = np.linalg.solve(corr, np.ones(a))
            return z @ w / float(np.sqrt(w.sum())) / np.sqrt(a)
        r_in = (phi - self.mu_in_) / np.sqrt(self.var_in_)
        r_out = (phi - self.mu_out_) / np.sqrt(self.var_out_)
        if np.array_equal(corr, np.eye(a)):
            q_in, q_out = (r_in**2).sum(axis=1), (r_out**2).sum(axis=1)
        else:  # multivariate Gaussian over the A queries: covariance D R D, D = per-query std
            prec = np.linalg.inv(corr)
            q_in = np.einsum("na,ab,nb->n", r_in, prec, r_in)
            q_out = np.einsum("na,ab,nb->n", r_out, prec, r_out)
        llr = 0.5 * (q_out - q_in + (np.log(self.var_out_) - np.log(self.var_in_)).sum(axis=1))
        return llr / a


@register_attack
class LiraOnline(_Lira):
    __doc__ = _Lira.__doc__
    name = "lira_online"
    description = "LiRA online (Carlini et al. 2022): per-example Gaussian likelihood ratio, IN vs OUT references"
    offline = False


@register_attack
class LiraOffline(_Lira):
    __doc__ = _Lira.__doc__
    name = "lira_offline"
    description = "LiRA offline (Carlini et al. 2022): one-sided z-score against OUT references"
    offline = True


# --------------------------------------------------------------------------------------------
# RMIA
# --------------------------------------------------------------------------------------------
@register_attack
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
        if self.gamma is not None and not (isinstance(self.gamma, (int, float)) and self.gamma > 0):
            raise ConfigError(f"{n}: gamma must be a number > 0 or None, got {self.gamma!r}; use gamma=1")
        if self.a is not None and not (isinstance(self.a, (int, float)) and 0.0 <= self.a <= 1.0):
            raise ConfigError(f"{n}: a must be in [0, 1] or None (tuned), got {self.a!r}; use a=None")
        if not isinstance(self.a_grid, int) or self.a_grid < 2:
            raise ConfigError(f"{n}: a_grid must be an integer >= 2, got {self.a_grid!r}; use a_grid=21")
        if self.tune_fpr is not None and not (isinstance(self.tune_fpr, float) and 0.0 < self.tune_fpr < 1.0):
            raise ConfigError(f"{n}: tune_fpr must be None (AUC) or in (0, 1), got {self.tune_fpr!r}; use 0.01")
        if not isinstance(self.n_paired, int) or self.n_paired < 1:
            raise ConfigError(f"{n}: n_paired must be an integer >= 1, got {self.n_paired!r}; use n_paired=1")
        if not isinstance(self.tune_max_examples, int) or self.tune_max_examples < 10:
            raise ConfigError(
                f"{n}: tune_max_examples must be an integer >= 10, got {self.tune_max_examples!r}; use 200000"
            )

    @staticmethod
    def _log_pr_offline(log_p_out: np.ndarray, a: float) -> np.ndarray:
        """``log(((1 + a) P_out + (1 - a)) / 2)`` from ``log P_out``, stable (``a = 1`` allowed)."""
        with np.errstate(divide="ignore"):
            return np.logaddexp(np.log((1.0 + a) / 2.0) + log_p_out, np.log((1.0 - a) / 2.0))

    def _population(self, bundle: "SignalBundle") -> bool:
        return (
            bundle.population_logits is not None
            and bundle.ref_population_logits is not None
            and bundle.population_labels is not None
        )

    def fit(self, bundle: "SignalBundle") -> "Rmia":
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
        if self._population(bundle):
            self.log_pr_z_ = self._fit_population(bundle)
        else:
            self.log_pr_z_ = None
        self.n_fitted_ = n
        self.exposure_ = {
            "mean_in": np.exp(lm_in),
            "mean_out": np.exp(lm_out),
            "log_pr_x": self.log_pr_x_.copy(),
            "n_in": n_in.astype(np.float64),
            "n_out": (k - n_in).astype(np.float64),
        }
        return self

    def _fit_population(self, bundle: "SignalBundle") -> np.ndarray:
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

    def score(self, bundle: "SignalBundle") -> np.ndarray:
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


@register_attack
class RmiaOffline(Rmia):
    __doc__ = Rmia.__doc__
    name = "rmia_offline"
    description = "RMIA offline (Zarifzadeh et al. 2024): OUT references only, a tuned on a paired reference model"
    default_offline = True


# --------------------------------------------------------------------------------------------
# Attack-R and difficulty calibration
# --------------------------------------------------------------------------------------------
def _loss_moments(attack: _ReferenceAttack, bundle: "SignalBundle") -> dict[str, np.ndarray]:
    """Per-example IN/OUT moments of the query-averaged loss (arrays of shape (N, 1))."""
    return _moments(attack, bundle, transform=lambda phi: rs.loss_from_phi(phi).mean(axis=-1, keepdims=True))


@register_attack
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

    def fit(self, bundle: "SignalBundle") -> "AttackR":
        if isinstance(self.bandwidth, bool) or not isinstance(self.bandwidth, (int, float)) or not self.bandwidth > 0:
            raise ConfigError(
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

    def score(self, bundle: "SignalBundle") -> np.ndarray:
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


@register_attack
class CalibratedLoss(_ReferenceAttack):
    """Difficulty calibration of Watson et al. (2022), "On the Importance of Difficulty Calibration in
    Membership Inference Attacks", ICLR: ``score = -(loss(x) - mean over OUT references of loss(x))``.

    Losses are averaged over queries. An example without OUT references uses its IN mean plus the
    mean OUT-IN loss shift over examples that have both. ``exposure_``: ``mean_in``, ``mean_out``,
    ``n_in``, ``n_out`` of the loss.
    """

    name = "calibrated_loss"
    description = "Difficulty-calibrated loss (Watson et al. 2022): loss minus its mean over OUT references"

    def __init__(self, *, chunk_size: int | None = None) -> None:
        self.chunk_size = chunk_size

    def fit(self, bundle: "SignalBundle") -> "CalibratedLoss":
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

    def score(self, bundle: "SignalBundle") -> np.ndarray:
        self._check_fitted(bundle, getattr(self, "n_fitted_", None))
        self._check_bundle(bundle)
        target_loss = rs.loss_from_phi(self._target_phi(bundle)).mean(axis=1)
        return -(target_loss - self.mean_out_)
