"""Per-slice metrics (per true class, per user-supplied group)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .._errors import InputError
from ._checks import check_confidence, check_fprs, check_scores, fpr_key
from ._roc import _auc, _auc_interval, confusion_from_sorted, sort_desc, tpr_at_fpr_from
from ._summary import evaluate_scores

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["slice_metrics"]


def slice_metrics(
    is_member: Any,
    scores: Any,
    groups: Any,
    *,
    fprs: Sequence[float] = (1e-3, 1e-2, 1e-1),
    confidence: float = 0.95,
    min_size: int = 1,
    strata: Any = None,
) -> pd.DataFrame:
    """One row per distinct value of ``groups`` (sorted when the values are comparable).

    Columns: ``group``, ``n_members``, ``n_nonmembers``, ``auc``, ``auc_ci_low``, ``auc_ci_high``,
    then per target FPR ``f`` (key ``format(f, "g")``): ``tpr@f``, ``tpr@f_ci_low``,
    ``tpr@f_ci_high`` (the population interval, as in the headline figures), and finally ``note``. Metric columns hold python floats or None (so
    ``df.to_dict("records")`` is JSON-safe): None for a group with only members or only
    non-members, with fewer than ``min_size`` examples, or (TPR@FPR) whose non-members cannot
    resolve the FPR; ``note`` says why ("" when nothing is missing).

    ``strata`` (one id per row, as in :func:`~miaudit.metrics.evaluate_scores`): rows of several targets
    or fold models; each slice's figures are then combined over strata the same conservative way.
    """
    import pandas as pd

    m, s = check_scores(is_member, scores)
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != m.shape[0]:
        raise InputError(
            f"groups: expected one group value per example, shape ({m.shape[0]},), got shape {g.shape}; "
            "pass a 1-D column aligned with scores"
        )
    fs = check_fprs(fprs)
    conf = check_confidence(confidence)
    st = None if strata is None else np.asarray(strata)
    if st is not None and st.shape != m.shape:
        raise InputError(f"strata: expected one stratum id per example, shape {m.shape}, got shape {st.shape}")
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise InputError(f"min_size: expected a positive integer number of examples, got {min_size!r}")

    try:
        codes, uniques = pd.factorize(g, sort=True, use_na_sentinel=False)
    except TypeError:  # values of mixed, incomparable types
        codes, uniques = pd.factorize(g, sort=False, use_na_sentinel=False)

    keys = [fpr_key(f) for f in fs]
    cols: dict[str, list[Any]] = {"group": [], "n_members": [], "n_nonmembers": [], "auc": [],
                                  "auc_ci_low": [], "auc_ci_high": []}
    for k in keys:
        cols[f"tpr@{k}"], cols[f"tpr@{k}_ci_low"], cols[f"tpr@{k}_ci_high"] = [], [], []
    cols["note"] = []

    for j, value in enumerate(uniques):
        sel = codes == j
        mj, sj = m[sel], s[sel]
        n_pos = int(mj.sum())
        n_neg = int(mj.size - n_pos)
        cols["group"].append(value.item() if isinstance(value, np.generic) else value)
        cols["n_members"].append(n_pos)
        cols["n_nonmembers"].append(n_neg)
        notes: list[str] = []
        if mj.size < min_size:
            notes.append(f"fewer than min_size={min_size} examples ({mj.size})")
        elif n_pos == 0 or n_neg == 0:
            notes.append("only non-members" if n_pos == 0 else "only members")
        if notes:
            for name in cols:
                if name not in ("group", "n_members", "n_nonmembers", "note"):
                    cols[name].append(None)
        else:
            if st is not None and np.unique(st[sel]).size > 1:
                stj = st[sel]
                if any(mj[stj == v].all() or not mj[stj == v].any() for v in np.unique(stj)):
                    notes.append("some target or fold has only members or only non-members in this slice")
                    for name in cols:
                        if name not in ("group", "n_members", "n_nonmembers", "note"):
                            cols[name].append(None)
                    cols["note"].append("; ".join(notes))
                    continue
                r = evaluate_scores(mj, sj, fprs=fs, confidence=conf, strata=stj)
                auc, (lo, hi), tprs = r.auc, r.auc_ci, r.tpr_at_fpr
            else:
                c = confusion_from_sorted(*sort_desc(mj, sj))
                auc = _auc(c)
                lo, hi = _auc_interval(c, auc, conf)
                tprs = tuple(tpr_at_fpr_from(c, f, conf) for f in fs)
            cols["auc"].append(auc)
            cols["auc_ci_low"].append(float(lo))
            cols["auc_ci_high"].append(float(hi))
            for t, k in zip(tprs, keys):
                ok = t.tpr is not None
                cols[f"tpr@{k}"].append(t.tpr)
                cols[f"tpr@{k}_ci_low"].append(t.target_ci_low if ok else None)
                cols[f"tpr@{k}_ci_high"].append(t.target_ci_high if ok else None)
                if t.reason is not None:
                    notes.append(f"tpr@{k}: {t.reason}")
        cols["note"].append("; ".join(notes))

    data = {
        name: pd.Series(vals, dtype=(np.int64 if name.startswith("n_") else object))
        for name, vals in cols.items()
    }
    return pd.DataFrame(data)
