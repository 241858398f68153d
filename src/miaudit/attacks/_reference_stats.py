"""Numerical building blocks of the reference-model attacks (private).

Pure numpy/scipy functions on arrays; the attack classes in :mod:`.lira`, :mod:`.rmia` and :mod:`.calibration` only
wire them together. Everything accumulates in float64.

* :func:`ref_scaled_logit` -- the attacks' scaled logit (the one definition of its clipping): the
  fast kernel of :func:`miaudit.signals.scaled_logit` on a ``(K, n, A, C)`` block, with a class loop
  instead of ``take_along_axis``/``put_along_axis`` (several times faster for the small C of tabular
  and image classifiers; equal up to rounding), clipped to ``[-PHI_MAX, PHI_MAX]``.
* :func:`stream_moments` -- per-example IN/OUT counts, means and within-group sums of squares,
  accumulated one reference model at a time (:func:`group_moments` is the two-pass reference).
* :func:`log_mean_prob` -- ``log`` of mean ``p_y`` over groups of models (RMIA), underflow-safe.
* :func:`fit_scaled_inv_chi2` / :func:`moderate` -- the empirical-Bayes variance moderation of
  Smyth (2004, "Linear models and empirical Bayes methods for assessing differential expression in
  microarray experiments", Stat. Appl. Genet. Mol. Biol. 3(1), §6.2), used by LiRA's ``"shrunk"``
  variance estimator.
* :func:`continuous_cdf` -- a strictly increasing, piecewise-linear empirical CDF (RMIA).
* :func:`auc_from_scores`, :func:`tpr_at_fpr_fast` -- small objectives for RMIA's paired tuning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
from scipy import special

from .. import signals
from .._errors import InputError

__all__ = [
    "PHI_MAX",
    "VAR_FLOOR",
    "ref_scaled_logit",
    "log_py_from_phi",
    "loss_from_phi",
    "iter_chunks",
    "auto_chunk_size",
    "check_chunk_size",
    "group_moments",
    "stream_moments",
    "log_mean_prob",
    "fit_scaled_inv_chi2",
    "moderate",
    "trigamma_inverse",
    "logmeanexp",
    "continuous_cdf",
    "auc_from_scores",
    "tpr_at_fpr_fast",
]

#: Scaled logits are clipped to [-PHI_MAX, PHI_MAX] so that ``-inf`` logits (log 0) stay finite.
PHI_MAX = 1e6
#: Smallest variance used anywhere (guards division by zero when references agree exactly).
VAR_FLOOR = 1e-12
#: Above this many classes the generic (gather/scatter) path of :mod:`miaudit.signals` is used.
_CLASS_LOOP_MAX = 32
#: Elements of one model's float64 ``(n, A, C)`` block per chunk when ``chunk_size`` is left to us
#: (1 MiB: the per-model work of a chunk stays in cache).
_CHUNK_ELEMENTS = 1 << 17


def ref_scaled_logit(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Scaled logit ``phi = z_y - logsumexp_{i != y} z_i`` of a block of logits, float64, clipped.

    The one scaled logit of miaudit's attacks (the reference attacks and the attack features of
    :mod:`._features` both call it) and the one place that defines its clipping: values are clipped to
    ``[-PHI_MAX, PHI_MAX]`` so that ``-inf`` logits give finite values. It is the fast kernel of
    :func:`miaudit.signals.scaled_logit` (Carlini et al. 2022, §4.3), the exact, unclipped reference
    version, and agrees with it up to rounding and this clipping (``tests/test_signals.py``).

    ``logits`` has shape ``(..., n, A, C)`` (any float dtype; e.g. ``(K, n, A, C)`` float32 reference
    logits or ``(n, A, C)`` target logits) and integer ``labels`` in ``[0, C)`` broadcastable to
    ``logits.shape[:-2]`` (typically ``(n,)``; not range-checked here). Returns ``(..., n, A)`` float64.

    For ``C == 2`` this is the exact difference ``z_y - z_{1-y}`` (no exp/log at all); for
    ``C <= 32`` the label gather and the masked log-sum-exp loop over classes with elementwise
    operations, which avoids numpy's slow reductions over a short last axis; above, the gather/scatter
    code of :mod:`miaudit.signals`.
    """
    z = np.asarray(logits)
    y = np.asarray(labels, dtype=np.intp)
    n_classes = z.shape[-1]
    if n_classes < 2:
        raise InputError(
            f"logits: expected C >= 2 classes on the last axis for the scaled logit, got shape {z.shape}; "
            "give the logits of every class"
        )
    if n_classes > _CLASS_LOOP_MAX:
        phi = signals.scaled_logit(z, y[..., None])
    elif n_classes == 2:
        phi = np.subtract(z[..., 1], z[..., 0], dtype=np.float64)
        phi *= np.where(y == 1, 1.0, -1.0)[..., None]
    else:
        masks = [(y == c)[..., None] for c in range(n_classes)]
        cols = [z[..., c].astype(np.float64) for c in range(n_classes)]
        z_y = np.zeros(cols[0].shape)
        m = np.full(cols[0].shape, -np.inf)
        for c in range(n_classes):
            np.copyto(z_y, cols[c], where=masks[c])
            np.maximum(m, np.where(masks[c], -np.inf, cols[c]), out=m)
        m_safe = np.where(np.isfinite(m), m, 0.0)
        s = np.zeros(cols[0].shape)
        for c in range(n_classes):
            with np.errstate(invalid="ignore", over="ignore"):  # the label's column may overflow; masked out
                e = np.exp(cols[c] - m_safe)
            s += np.where(masks[c], 0.0, e)
        with np.errstate(divide="ignore", invalid="ignore"):
            phi = z_y - (np.log(s) + m_safe)
    np.clip(phi, -PHI_MAX, PHI_MAX, out=phi)
    if np.isnan(phi.sum()):  # after clipping only NaN can make the sum NaN
        raise InputError(
            "logits: the scaled logit came out NaN (NaN or +inf logits, or +inf in two classes); "
            "replace non-finite logits before scoring"
        )
    return phi


def log_py_from_phi(phi: np.ndarray) -> np.ndarray:
    """``log p_y = -softplus(-phi)`` (exact identity for the scaled logit, no cancellation)."""
    out: np.ndarray = -np.logaddexp(0.0, -phi)
    return out


def loss_from_phi(phi: np.ndarray) -> np.ndarray:
    """Cross-entropy ``-log p_y = softplus(-phi)``, keeps tiny member losses exact."""
    out: np.ndarray = np.logaddexp(0.0, -phi)
    return out


def auto_chunk_size(n_queries: int, n_classes: int) -> int:
    """Examples per chunk so that one model's float64 ``(n, A, max(C, 2))`` block is about 1 MiB.

    Work is done one reference model at a time within a chunk, so memory per chunk is
    ``O(n * A * C)`` whatever K is (at least 1024 examples per chunk to amortise Python overhead).
    """
    per_example = max(1, n_queries) * max(2, min(n_classes, _CLASS_LOOP_MAX))
    return max(1024, _CHUNK_ELEMENTS // per_example)


def iter_chunks(n: int, chunk_size: int) -> Iterator[slice]:
    """Consecutive slices of ``range(n)`` of length ``chunk_size`` (the last may be shorter)."""
    for start in range(0, n, chunk_size):
        yield slice(start, min(n, start + chunk_size))


def check_chunk_size(chunk_size: int | None, *, name: str) -> None:
    """Raise :class:`InputError` unless ``chunk_size`` is None or a positive integer."""
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1
    ):
        raise InputError(
            f"{name}: chunk_size must be a positive integer or None (automatic), got {chunk_size!r}; "
            "use e.g. chunk_size=10000"
        )


def stream_moments(
    values: Iterable[np.ndarray], is_member: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`group_moments` for values delivered one reference model at a time.

    ``values`` yields ``K`` arrays of shape ``(n, A)`` (model ``k``'s signal on the chunk), ``is_member`` is
    ``(K, n)``. The sums run over models in a fixed order on per-example shifted data
    (``x - x_0``, shifted-data algorithm: no cancellation for signals far from zero), so results do
    not depend on how examples are chunked, and only ``O(n * A)`` memory is touched per model.
    """
    it = iter(values)
    shift = np.array(next(it), dtype=np.float64)
    s1i = np.zeros_like(shift)
    s2i = np.zeros_like(shift)
    s1o = np.zeros_like(shift)
    s2o = np.zeros_like(shift)
    # model 0 contributes x = 0 to every sum; only its count matters
    for k, v in enumerate(it, start=1):
        x = v - shift
        xi = x * is_member[k][:, None]
        xo = x - xi
        s1i += xi
        s1o += xo
        xi *= x
        xo *= x
        s2i += xi
        s2o += xo
    n_in = is_member.sum(axis=0).astype(np.int64)
    n_out = is_member.shape[0] - n_in
    with np.errstate(invalid="ignore", divide="ignore"):
        d_in = np.where(n_in[:, None] > 0, s1i / np.maximum(n_in, 1)[:, None], 0.0)
        d_out = np.where(n_out[:, None] > 0, s1o / np.maximum(n_out, 1)[:, None], 0.0)
    ss_in = np.maximum(s2i - s1i * d_in, 0.0)
    ss_out = np.maximum(s2o - s1o * d_out, 0.0)
    mean_in = np.where(n_in[:, None] > 0, shift + d_in, 0.0)
    mean_out = np.where(n_out[:, None] > 0, shift + d_out, 0.0)
    return n_in, n_out.astype(np.int64), mean_in, mean_out, ss_in, ss_out


def group_moments(
    values: np.ndarray, is_member: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-example IN/OUT counts, means and within-group sums of squares over reference models.

    ``values`` ``(K, n, A)`` float64, ``is_member`` ``(K, n)`` bool. Returns ``n_in``, ``n_out`` ``(n,)``
    int64 and ``mean_in``, ``mean_out``, ``ss_in``, ``ss_out`` ``(n, A)`` float64 (two-pass sums of
    squares about the group mean, stable in float64). A group with no members gets mean 0, ss 0.
    """
    w = is_member[..., None]
    n_in = is_member.sum(axis=0)
    n_out = is_member.shape[0] - n_in
    total = values.sum(axis=0)
    sum_in = np.where(w, values, 0.0).sum(axis=0)
    sum_out = total - sum_in
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = np.where(n_in[:, None] > 0, sum_in / n_in[:, None], 0.0)
        mean_out = np.where(n_out[:, None] > 0, sum_out / n_out[:, None], 0.0)
    dev = values - np.where(w, mean_in, mean_out)
    dev *= dev
    ss_in = np.where(w, dev, 0.0).sum(axis=0)
    ss_out = dev.sum(axis=0) - ss_in
    np.maximum(ss_out, 0.0, out=ss_out)
    return n_in.astype(np.int64), n_out.astype(np.int64), mean_in, mean_out, ss_in, ss_out


def trigamma_inverse(x: float) -> float:
    """Solve ``trigamma(y) = x`` for ``y > 0`` (Newton's method as in limma's ``trigammaInverse``)."""
    if x > 1e7:
        return float(1.0 / np.sqrt(x))
    if x < 1e-6:
        return 1.0 / x
    y = 0.5 + 1.0 / x
    for _ in range(50):
        tri = float(special.polygamma(1, y))
        dif = tri * (1.0 - tri / x) / float(special.polygamma(2, y))
        y += dif
        if -dif / y < 1e-8:
            break
    return float(y)


def fit_scaled_inv_chi2(s2: np.ndarray, df: np.ndarray) -> tuple[float, float]:
    """Empirical-Bayes prior ``(d0, s0^2)`` for sample variances ``s2`` with ``df`` degrees of freedom.

    Model (Smyth 2004, §6.2): ``sigma_i^2 ~ s0^2 d0 / chi2_{d0}`` and
    ``s_i^2 | sigma_i^2 ~ sigma_i^2 chi2_{df_i} / df_i``. The moments of ``log s_i^2`` give
    ``trigamma(d0/2) = var(e) - mean(trigamma(df/2))`` with ``e = log s2 - digamma(df/2) + log(df/2)``.
    Returns ``d0 = inf`` when the sample variances are no more dispersed than sampling noise alone
    explains (all examples share one variance), and ``(0, 1)`` when nothing can be estimated.
    Only entries with ``df > 0`` and ``s2 > 0`` are used.
    """
    ok = (df > 0) & (s2 > 0) & np.isfinite(s2)
    if ok.sum() < 3:
        if ok.any():
            return float("inf"), float(np.exp(np.mean(np.log(s2[ok]))))
        return 0.0, 1.0
    d = df[ok].astype(np.float64)
    e = np.log(s2[ok]) - special.digamma(d / 2) + np.log(d / 2)
    e_mean = float(e.mean())
    e_var = float(e.var(ddof=1)) - float(special.polygamma(1, d / 2).mean())
    if e_var <= 0:
        return float("inf"), float(np.exp(e_mean))
    d0 = 2.0 * trigamma_inverse(e_var)
    s0sq = float(np.exp(e_mean + special.digamma(d0 / 2) - np.log(d0 / 2)))
    return d0, s0sq


def moderate(s2: np.ndarray, df: np.ndarray, *, prior_df: float, prior_var: float) -> np.ndarray:
    """Posterior variance ``(d0 s0^2 + df s^2) / (d0 + df)``: weight ``df / (df + d0)`` on the example.

    ``prior_df = inf`` gives the prior (global) variance everywhere, ``0`` the raw sample variance
    (where ``df > 0``; entries with ``df == 0`` always get the prior).
    """
    s2 = np.where(df > 0, s2, 0.0)
    if np.isinf(prior_df):
        return np.full(np.broadcast(s2, df).shape, prior_var)
    num = prior_df * prior_var + df * s2
    den = prior_df + df
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), prior_var)
    return out


def logmeanexp(a: np.ndarray, axis: int | tuple[int, ...], where: np.ndarray | None = None) -> np.ndarray:
    """``log(mean(exp(a)))`` along ``axis`` (over entries where ``where`` is True), stable; ``-inf`` if empty.

    The reduced axes are moved last and flattened, so every output entry is summed in the same order
    whatever the other dimensions are (chunking over examples gives bit-identical results).
    """
    axes = tuple(int(x) % a.ndim for x in np.atleast_1d(axis))
    keep = [i for i in range(a.ndim) if i not in axes]
    out_shape = tuple(a.shape[i] for i in keep)

    def flat(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(x, keep + list(axes))).reshape(out_shape + (-1,))

    if where is None:
        masked = flat(a)
        n = np.full(out_shape, masked.shape[-1])
    else:
        w = flat(np.broadcast_to(where, a.shape))
        masked = np.where(w, flat(a), -np.inf)
        n = w.sum(axis=-1)
    m = masked.max(axis=-1, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        s = np.log(np.exp(masked - m_safe).sum(axis=-1)) + m_safe[..., 0]
        return np.where(n > 0, s - np.log(np.maximum(n, 1)), -np.inf)


def continuous_cdf(sorted_values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Continuous, strictly increasing version of ``#{z : z <= t} / M`` for sorted ``z`` (M values).

    Inside ``[z_min, z_max]`` the step function is replaced by linear interpolation through
    ``(u_k, #{z <= u_k} / M)`` at the distinct values ``u_k``; beyond it the line continues with slope
    ``1 / (M * mean gap)`` (so the value can leave ``[0, 1]`` for ``t`` outside the sample's range).
    Every strictly larger ``t`` gets a strictly larger value: no ties from a small reference sample.
    ``O((M + len(t)) log M)``, no ``len(t) x M`` matrix.
    """
    z = np.asarray(sorted_values, dtype=np.float64)
    m = z.size
    u, counts = np.unique(z, return_counts=True)
    cum = np.cumsum(counts) / m
    gap = (u[-1] - u[0]) / (u.size - 1) if u.size > 1 else 1.0
    slope = 1.0 / (m * gap)
    out: np.ndarray = np.interp(t, u, cum)
    lo = t < u[0]
    hi = t > u[-1]
    out = np.where(lo, cum[0] - (u[0] - t) * slope, out)
    out = np.where(hi, 1.0 + (t - u[-1]) * slope, out)
    return out


def auc_from_scores(is_member: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted 1/2); ``nan`` if a class is empty."""
    pos = is_member.astype(bool)
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tpr_at_fpr_fast(is_member: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Largest TPR with FPR <= ``fpr`` (threshold rule ``score > t``), a tuning objective."""
    pos = is_member.astype(bool)
    neg_scores = np.sort(scores[~pos])[::-1]
    k = int(np.floor(fpr * neg_scores.size))  # allowed false positives
    if neg_scores.size == 0 or pos.sum() == 0:
        return float("nan")
    thr = neg_scores[k] if k < neg_scores.size else -np.inf
    return float((scores[pos] > thr).mean())


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (as ``scipy.stats.rankdata``)."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    avg = (starts + ends + 1) / 2.0  # mean of positions start+1 .. end
    ranks = np.empty(x.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def log_mean_prob(
    phis: Iterable[np.ndarray], masks: list[np.ndarray], *, fallback: Callable[[np.ndarray], np.ndarray]
) -> list[np.ndarray]:
    """``log`` of the mean of ``p_y = expit(phi)`` over models and queries, one result per mask.

    ``phis`` yields the ``K`` models' ``(n, A)`` scaled logits; ``masks`` are ``(K, n)`` bool (which
    models enter each mean). Sums run in the linear domain in a fixed model order (fast, chunking-
    invariant); examples whose sum underflows (``< 1e-290``, all ``p_y`` below ~1e-290) are recomputed
    in the log domain by ``fallback(rows) -> (K, r, A) phi``. Empty masks give ``-inf``.
    """
    sums = None
    n_q = 1
    for k, phi in enumerate(phis):
        n_q = phi.shape[-1]
        p = special.expit(phi).sum(axis=-1)
        if sums is None:
            sums = [np.zeros_like(p) for _ in masks]
        for s, m in zip(sums, masks):
            s += np.where(m[k], p, 0.0)
    assert sums is not None
    out = []
    for s, m in zip(sums, masks):
        cnt = m.sum(axis=0) * n_q
        with np.errstate(divide="ignore"):
            res = np.where(cnt > 0, np.log(s) - np.log(np.maximum(cnt, 1)), -np.inf)
        bad = np.flatnonzero((s < 1e-290) & (cnt > 0))
        if bad.size:
            phi_bad = fallback(bad)
            w = np.broadcast_to(m[:, bad, None], phi_bad.shape)
            res[bad] = logmeanexp(log_py_from_phi(phi_bad), axis=(0, 2), where=w)
        out.append(res)
    return out
