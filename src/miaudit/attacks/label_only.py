"""Label-only attacks: the target answers with its predicted class only (``outputs_kind == "labels"``).

They read arrays, never a model: ``bundle.target_pred`` (N, A) (query 0 the example itself, then A - 1
seeded augmentations), ``bundle.ref_pred`` (K, N, A), and the boundary distances ``target_distance`` (N,) /
``ref_distance`` (K, N). The queries are made where model outputs are computed
(:mod:`miaudit.models._label_query`); the number made per example is in ``bundle.meta["label_queries"]``
and each attack reports what it used as ``queries_``.

* ``gap`` (Yeom et al. 2018, "Privacy Risk in Machine Learning", CSF): predicted correctly = member. The
  score takes two values, so its ROC has a single inner point: every figure at an FPR below the
  misclassified non-members' share is read off a tie, and reported as such (no tie is broken).
* ``augment_count`` / ``label_augment`` (Choquette-Choo et al. 2021, "Label-Only Membership Inference
  Attacks", ICML): the number of augmented queries answered correctly; ``label_augment`` compares it with
  the same count of IN and OUT reference models by a per-example likelihood ratio (LiRA-style, Carlini et
  al. 2022) of two beta-binomial distributions.
* ``boundary_distance`` / ``label_boundary`` (Choquette-Choo et al. 2021; Li & Zhang 2021, "Membership
  Leakage in Label-Only Exposures", CCS): the distance to the decision boundary, signed (negative when the
  example is misclassified); ``label_boundary`` is a per-example Gaussian likelihood ratio of the target's
  signed distance under the IN and OUT references' distances.

Fallbacks (finite scores with few references): a group (IN or OUT) an example has no reference in borrows
the other group's per-example estimate shifted by the mean IN-OUT difference over the examples that have
both; per-example rates and variances are shrunk toward the pooled ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from scipy import special

from .._errors import InputError
from ._base import Attack

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["GapAttack", "AugmentCount", "BoundaryDistance", "LabelAugment", "LabelBoundary", "LABEL_ONLY"]

_LABELS = frozenset({"labels"})
#: Pseudo-models of prior weight on the pooled rate (label_augment) and prior degrees of freedom on the
#: pooled variance (label_boundary).
_PRIOR_MODELS = 1.0
_PRIOR_DF = 4.0
_VAR_FLOOR = 1e-12


def _pred(bundle: SignalBundle, name: str) -> np.ndarray:
    if bundle.target_pred is None or bundle.labels is None:
        raise InputError(f"{name}: needs the target's predicted classes (target_pred) and the true labels")
    return np.asarray(bundle.target_pred)


def _refs(bundle: SignalBundle, name: str) -> tuple[np.ndarray, np.ndarray]:
    if bundle.ref_pred is None or bundle.ref_is_member is None:
        raise InputError(f"{name}: needs reference models' predicted classes (ref_pred, ref_is_member); run "
                         "`miaudit audit` with [attacks] access = \"label\" to train and query them")
    return np.asarray(bundle.ref_pred), np.asarray(bundle.ref_is_member, dtype=bool)


def _distance(bundle: SignalBundle, name: str, refs: bool) -> tuple[np.ndarray, np.ndarray | None]:
    if bundle.target_distance is None or (refs and bundle.ref_distance is None):
        raise InputError(f"{name}: needs boundary distances (target_distance{', ref_distance' if refs else ''}); "
                         "query the models with a boundary budget ([attacks] boundary_queries)")
    return np.asarray(bundle.target_distance), None if bundle.ref_distance is None else np.asarray(bundle.ref_distance)


def _per_example(bundle: SignalBundle, key: str) -> int | None:
    lq = bundle.meta.get("label_queries")
    if isinstance(lq, dict) and isinstance(lq.get(key), (int, np.integer)):
        return int(lq[key])
    return None


class _LabelAttack(Attack):
    output_kinds: ClassVar[frozenset[str]] = _LABELS
    #: "pred" (the A augmented answers), "first" (query 0 only) or "boundary" (the boundary search).
    uses: ClassVar[str] = "pred"

    def _record(self, bundle: SignalBundle, refs: bool) -> None:
        n, k = bundle.n_examples, bundle.n_references if refs else 0
        if self.uses == "first":
            per: int | None = 1
        elif self.uses == "pred":
            per = bundle.n_queries
        else:
            per = _per_example(bundle, "boundary")
        self.queries_ = {"per_example": per, "target": None if per is None else per * n,
                         "references": None if per is None else per * n * k}


class GapAttack(_LabelAttack):
    """Yeom et al. (2018): 1 if the target predicts the example's class (query 0), else 0."""

    name = "gap"
    description = "gap (Yeom et al. 2018): predicted correctly = member; label-only, two values (ties)"
    uses = "first"

    def score(self, bundle: SignalBundle) -> np.ndarray:
        pred = _pred(bundle, self.name)
        self._record(bundle, refs=False)
        out: np.ndarray = (pred[:, 0] == np.asarray(bundle.labels)).astype(np.float64)
        return out


class AugmentCount(_LabelAttack):
    """Choquette-Choo et al. (2021), threshold version: the share of the A queries (the example and its
    augmentations) the target answers correctly. No reference models."""

    name = "augment_count"
    description = "augmentation count (Choquette-Choo et al. 2021): correct answers on seeded augmentations"

    def score(self, bundle: SignalBundle) -> np.ndarray:
        pred = _pred(bundle, self.name)
        self._record(bundle, refs=False)
        out: np.ndarray = (pred == np.asarray(bundle.labels)[:, None]).mean(axis=1)
        return out


class BoundaryDistance(_LabelAttack):
    """Choquette-Choo et al. (2021); Li & Zhang (2021), threshold version: the signed distance to the decision
    boundary (negative when the target misclassifies the example). No reference models."""

    name = "boundary_distance"
    description = "boundary distance (Choquette-Choo 2021, Li & Zhang 2021): signed distance to the boundary"
    uses = "boundary"

    def score(self, bundle: SignalBundle) -> np.ndarray:
        pred = _pred(bundle, self.name)
        d, _ = _distance(bundle, self.name, refs=False)
        self._record(bundle, refs=False)
        out: np.ndarray = np.where(pred[:, 0] == np.asarray(bundle.labels), d, -d)
        return out


def _group_stats(values: np.ndarray, is_member: np.ndarray) -> dict[str, np.ndarray]:
    """Per-example IN/OUT count, mean and sum of squares of ``values`` (K, N)."""
    out: dict[str, np.ndarray] = {}
    for g, mask in (("in", is_member), ("out", ~is_member)):
        n = mask.sum(axis=0)
        s = np.where(mask, values, 0.0).sum(axis=0)
        mean = np.where(n > 0, s / np.maximum(n, 1), np.nan)
        ss = np.where(mask, (values - np.nan_to_num(mean)[None]) ** 2, 0.0).sum(axis=0)
        out[f"n_{g}"], out[f"mean_{g}"], out[f"ss_{g}"] = n, mean, ss
    return out


def _fill_missing(mean_in: np.ndarray, mean_out: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Missing IN (OUT) means borrow the OUT (IN) mean shifted by the mean IN-OUT difference; returns the
    shift and its variance over examples."""
    has_in, has_out = np.isfinite(mean_in), np.isfinite(mean_out)
    both = has_in & has_out
    if both.sum() > 1:
        diff = mean_in[both] - mean_out[both]
        delta, delta_var = float(diff.mean()), float(diff.var())
    elif has_in.any() and has_out.any():
        delta, delta_var = float(np.nanmean(mean_in) - np.nanmean(mean_out)), 0.0
    else:
        delta, delta_var = 0.0, 0.0
    fallback_in = np.nanmean(mean_in) if has_in.any() else (np.nanmean(mean_out) + delta if has_out.any() else 0.0)
    fallback_out = np.nanmean(mean_out) if has_out.any() else fallback_in - delta
    mi = np.where(has_in, mean_in, np.where(has_out, mean_out + delta, fallback_in))
    mo = np.where(has_out, mean_out, np.where(has_in, mean_in - delta, fallback_out))
    return mi, mo, delta, delta_var


def _shrink_means(mean: np.ndarray, ss: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Per-example means shrunk toward their average by the empirical-Bayes factor ``tau^2 / (tau^2 + s^2 / n)``
    (``tau^2``: the spread of the true per-example means, estimated as the spread of the observed means less
    their average sampling variance ``s^2 / n``, ``s^2`` pooled). Where models disagree about an example as
    much as examples differ, the means shrink to the average and the test reads the distance itself."""
    have = n > 0
    if have.sum() < 2:
        return mean
    df = np.maximum(n - 1, 0)
    s2 = float(ss[have].sum() / df[have].sum()) if df[have].sum() > 0 else float(np.nanvar(mean[have]))
    grand = float(mean[have].mean())
    samp = s2 / np.maximum(n, 1)
    tau2 = max(0.0, float(mean[have].var()) - float(samp[have].mean()))
    b = tau2 / (tau2 + samp) if tau2 > 0 else np.zeros_like(samp)
    out: np.ndarray = np.where(have, grand + b * (mean - grand), mean)
    return out


class LabelAugment(_LabelAttack):
    """Choquette-Choo et al. (2021) with reference models, as a LiRA-style test on counts.

    The target's count ``c`` of correct answers among the A queries of example ``i`` is scored by
    ``log BB(c; A, p_in,i, rho_in) - log BB(c; A, p_out,i, rho_out)``, beta-binomial distributions whose
    per-example success rates ``p`` come from the IN (resp. OUT) references' counts, smoothed toward the pooled
    rate with the weight of one reference model (``(S + A p_pool) / (n A + A)``), and whose overdispersion
    ``rho`` (augmented answers of one model are correlated) is estimated from all references by the method of
    moments. An example without IN (OUT) references borrows the OUT (IN) rate shifted on the logit scale by the
    mean IN-OUT difference. Rates are kept within ``[1/(2 (nA + A)), 1 - 1/(2 (nA + A))]``.
    Exposure: ``rate_in``, ``rate_out``, ``n_in``, ``n_out``.
    """

    name = "label_augment"
    requires = frozenset({"reference"})
    description = "augmentation LiRA (Choquette-Choo et al. 2021): target's correct-count vs IN/OUT references"

    def fit(self, bundle: SignalBundle) -> LabelAugment:
        pred = _pred(bundle, self.name)
        ref_pred, ref_in = _refs(bundle, self.name)
        y = np.asarray(bundle.labels)
        a = pred.shape[1]
        counts = (ref_pred == y[None, :, None]).sum(axis=2).astype(np.float64)  # (K, N)
        st = _group_stats(counts, ref_in)
        rates = {}
        for g in ("in", "out"):
            n = st[f"n_{g}"]
            tot = float(n.sum()) * a
            pool = float(np.where(n > 0, st[f"mean_{g}"] * n, 0.0).sum() / tot) if tot > 0 else np.nan
            s = np.where(n > 0, st[f"mean_{g}"] * n, 0.0)
            w = _PRIOR_MODELS * a
            rate = np.where(n > 0, (s + w * (pool if np.isfinite(pool) else 0.5)) / (n * a + w), np.nan)
            lo = 0.5 / (n * a + w)
            rates[g] = np.clip(rate, lo, 1 - lo)
        li, lo_ = special.logit(rates["in"]), special.logit(rates["out"])
        li, lo_, _, _ = _fill_missing(li, lo_)
        p_in, p_out = special.expit(li), special.expit(lo_)
        # overdispersion per group: E[(c - A p)^2] = A p (1 - p) (1 + (A - 1) rho)
        rho = {}
        for g, mask, p in (("in", ref_in, p_in), ("out", ~ref_in, p_out)):
            if a < 2 or not mask.any():
                rho[g] = 1e-3
                continue
            var_b = a * p * (1 - p)
            ratio = ((counts - a * p[None]) ** 2 / np.maximum(var_b[None], 1e-9))[mask].mean()
            rho[g] = float(np.clip((ratio - 1) / (a - 1), 1e-3, 0.99))
        self.p_in_, self.p_out_, self.rho_ = p_in, p_out, rho
        self.n_fitted_ = bundle.n_examples
        self.exposure_ = {"rate_in": p_in, "rate_out": p_out, "n_in": st["n_in"].astype(np.float64),
                          "n_out": st["n_out"].astype(np.float64)}
        return self

    @staticmethod
    def _logpmf(c: np.ndarray, a: int, p: np.ndarray, rho: float) -> np.ndarray:
        if a == 1 or rho <= 1e-3:  # binomial
            out: np.ndarray = (special.gammaln(a + 1) - special.gammaln(c + 1) - special.gammaln(a - c + 1)
                               + c * np.log(p) + (a - c) * np.log1p(-p))
            return out
        k = (1 - rho) / rho
        al, be = p * k, (1 - p) * k
        res: np.ndarray = (special.gammaln(a + 1) - special.gammaln(c + 1) - special.gammaln(a - c + 1)
                           + special.betaln(c + al, a - c + be) - special.betaln(al, be))
        return res

    def score(self, bundle: SignalBundle) -> np.ndarray:
        if getattr(self, "n_fitted_", None) != bundle.n_examples:
            raise InputError(f"{self.name}: score() needs fit() on the same bundle first; call fit_score(bundle)")
        pred = _pred(bundle, self.name)
        self._record(bundle, refs=True)
        a = pred.shape[1]
        c = (pred == np.asarray(bundle.labels)[:, None]).sum(axis=1).astype(np.float64)
        out: np.ndarray = (self._logpmf(c, a, self.p_in_, self.rho_["in"])
                           - self._logpmf(c, a, self.p_out_, self.rho_["out"]))
        return out


class LabelBoundary(_LabelAttack):
    """Boundary distance with reference models: a per-example Gaussian likelihood ratio (LiRA-style).

    The signed distance (negative when misclassified), on the scale ``t = asinh(signed / m)`` (``m`` the
    references' median distance: distances are heavy-tailed, and the Gaussian model is fitted where it holds
    better), of the target is scored by
    ``log N(t; mu_in,i, s_in,i^2) - log N(t; mu_out,i, s_out,i^2)``, with per-example means of the IN / OUT
    references' signed distances, shrunk toward their average by the empirical-Bayes factor
    ``tau^2 / (tau^2 + s^2/n)`` (:func:`_shrink_means`: a boundary search answers differently for each model, and
    with few references a per-example mean can be mostly noise), and variances ``(d0 v + ss_i) / (d0 + df_i)``
    shrunk toward the pooled within-group variance ``v`` (``d0 = 4``), inflated by ``1 + 1/n`` (predictive). An example without IN
    (OUT) references borrows the other mean shifted by the mean IN-OUT difference, with that shift's spread
    added to the variance. Exposure: ``mean_in``, ``mean_out``, ``std_in``, ``std_out``, ``n_in``, ``n_out``.
    """

    name = "label_boundary"
    requires = frozenset({"reference"})
    description = "boundary-distance LiRA (Choquette-Choo 2021; Li & Zhang 2021): IN/OUT reference distances"
    uses = "boundary"

    def fit(self, bundle: SignalBundle) -> LabelBoundary:
        _pred(bundle, self.name)
        ref_pred, ref_in = _refs(bundle, self.name)
        _, rd = _distance(bundle, self.name, refs=True)
        assert rd is not None
        y = np.asarray(bundle.labels)
        scale = float(np.median(rd[rd > 0])) if (rd > 0).any() else 1.0
        self.scale_ = scale
        signed = np.arcsinh(np.where(ref_pred[:, :, 0] == y[None], rd, -rd) / scale)
        st = _group_stats(signed, ref_in)
        for g in ("in", "out"):
            st[f"mean_{g}"] = _shrink_means(st[f"mean_{g}"], st[f"ss_{g}"], st[f"n_{g}"])
        mu_in, mu_out, _, delta_var = _fill_missing(st["mean_in"], st["mean_out"])
        var = {}
        for g in ("in", "out"):
            n = st[f"n_{g}"]
            df = np.maximum(n - 1, 0)
            tot = df.sum()
            pooled = float(st[f"ss_{g}"].sum() / tot) if tot > 0 else np.nan
            var[g] = (n, df, pooled)
        pooled_any = [v[2] for v in var.values() if np.isfinite(v[2])]
        fallback = float(np.mean(pooled_any)) if pooled_any else float(np.nanvar(signed)) or 1.0
        out_var = {}
        for g in ("in", "out"):
            n, df, pooled = var[g]
            v0 = pooled if np.isfinite(pooled) else fallback
            v0 = max(v0, _VAR_FLOOR)
            v = (_PRIOR_DF * v0 + st[f"ss_{g}"]) / (_PRIOR_DF + df)
            v = v * (1 + 1 / np.maximum(n, 1))
            out_var[g] = np.where(n > 0, v, v0 * 2 + delta_var)
        self.mu_in_, self.mu_out_ = mu_in, mu_out
        self.var_in_ = np.maximum(out_var["in"], _VAR_FLOOR)
        self.var_out_ = np.maximum(out_var["out"], _VAR_FLOOR)
        self.n_fitted_ = bundle.n_examples
        self.exposure_ = {"mean_in": mu_in, "mean_out": mu_out, "std_in": np.sqrt(self.var_in_),
                          "std_out": np.sqrt(self.var_out_), "n_in": st["n_in"].astype(np.float64),
                          "n_out": st["n_out"].astype(np.float64)}
        return self

    def score(self, bundle: SignalBundle) -> np.ndarray:
        if getattr(self, "n_fitted_", None) != bundle.n_examples:
            raise InputError(f"{self.name}: score() needs fit() on the same bundle first; call fit_score(bundle)")
        pred = _pred(bundle, self.name)
        d, _ = _distance(bundle, self.name, refs=False)
        self._record(bundle, refs=True)
        t = np.arcsinh(np.where(pred[:, 0] == np.asarray(bundle.labels), d, -d) / self.scale_)
        out: np.ndarray = 0.5 * ((t - self.mu_out_) ** 2 / self.var_out_ - (t - self.mu_in_) ** 2 / self.var_in_
                                 + np.log(self.var_out_) - np.log(self.var_in_))
        return out


#: The label-only attacks, in registry order.
LABEL_ONLY: dict[str, Any] = {
    "gap": GapAttack,
    "augment_count": AugmentCount,
    "boundary_distance": BoundaryDistance,
    "label_augment": LabelAugment,
    "label_boundary": LabelBoundary,
}
