"""Helpers shared by the harness and the peer scripts.

This module must import with numpy only (plus scipy for the interval fallback, imported lazily):
the peer scripts run it inside the peers' own virtual environments.

Bundle hand-over (one game = one target model):
  bundle.npz    miaudit signal bundle: labels (N,), target_logits (N, C) log-probabilities,
                is_member (N,) bool. Exactly what `miaudit score` reads.
  features.npz  the same N examples' features X (N, D) float32 and labels y (N,), plus the target
                recipe as JSON (key `recipe`) so that a peer that trains shadow models can train
                them with the target's own recipe. Only ART's shadow-model attack uses it.
Peer output (out.json): {"peer", "version", "env", "attacks": {name: {"scores": [N floats] | null,
  "reported": {"auc", "tpr_at_fpr": {"0.001", "0.01"}, "epsilon_lower_bound"}, "wall_s", "error",
  "note"}}, "error": str | null}
Scores are per example in bundle order, higher = more likely member. An attack that scores only a subset of
the pool sets "subset": true and leaves the other rows null; the harness computes its figures on the scored
rows only (their own members and non-members).
"""

from __future__ import annotations

import json
import math
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

FPRS = (0.001, 0.01)


def load_bundle_arrays(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    logits = np.asarray(out["target_logits"], dtype=np.float64)
    if logits.ndim == 3:
        logits = logits[:, 0, :]
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    out["target_logits"] = logits
    out["logp"] = logp
    out["probs"] = np.exp(logp)
    out["labels"] = np.asarray(out["labels"], dtype=np.int64)
    out["is_member"] = np.asarray(out["is_member"], dtype=bool)
    return out


def load_features(path: str) -> tuple[np.ndarray, np.ndarray, dict]:
    with np.load(path, allow_pickle=False) as z:
        X = np.asarray(z["X"], dtype=np.float32)
        y = np.asarray(z["y"], dtype=np.int64)
        recipe = json.loads(str(z["recipe"]))
    return X, y, recipe


def roc_tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    """The largest TPR over ROC points with FPR <= target (how we read a peer's own ROC arrays)."""
    fpr = np.asarray(fpr, dtype=float)
    tpr = np.asarray(tpr, dtype=float)
    ok = fpr <= target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def run_attack(name: str, fn: Callable[[], dict], results: dict) -> None:
    """Run one peer attack, timing it and keeping the error text instead of crashing."""
    t0 = time.perf_counter()
    try:
        res = fn()
        res.setdefault("error", None)
    except BaseException as exc:  # noqa: BLE001 - the error text is the result
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.format_exc().strip().splitlines()
        res = {"scores": None, "reported": {}, "error": f"{type(exc).__name__}: {exc}".strip(),
               "traceback_tail": tb[-6:]}
    res["wall_s"] = round(time.perf_counter() - t0, 3)
    if res.get("scores") is not None:
        s = np.asarray(res["scores"], dtype=np.float64).ravel()
        if res.get("subset"):
            # an attack that scores a subset of the pool: unscored rows are NaN -> null, and the harness scores
            # only the rows with a score (their own members and non-members)
            res["scores"] = [None if math.isnan(v) else (float(v) if math.isfinite(v) else (1e300 if v > 0 else -1e300))
                             for v in s]
        else:
            res["scores"] = [float(v) if math.isfinite(v) else (1e300 if v > 0 else -1e300) for v in s]
    results[name] = res


def write_json(path: str, obj: Any) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# ---------------------------------------------------------------------------------------------
# Fallback metrics: used only when miaudit.metrics.evaluate_scores cannot be imported. Same
# definitions as DESIGN.md (TPR@FPR = largest TPR over thresholds with FPR <= target, every
# threshold kept; Clopper-Pearson 95%; null when fpr * n_nonmembers < 1).
# ---------------------------------------------------------------------------------------------
def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    a = 1 - confidence
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def fallback_metrics(is_member: np.ndarray, scores: np.ndarray) -> dict:
    is_member = np.asarray(is_member, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(is_member.sum()), int((~is_member).sum())
    order = np.argsort(-s, kind="mergesort")
    s_sorted, m_sorted = s[order], is_member[order]
    tp = np.cumsum(m_sorted)
    fp = np.cumsum(~m_sorted)
    last = np.r_[np.diff(s_sorted) != 0, True]  # keep the last index of each tie block
    tp = np.r_[0, tp[last]]
    fp = np.r_[0, fp[last]]
    tpr, fpr = tp / n_pos, fp / n_neg
    auc = float(np.trapz(tpr, fpr)) if hasattr(np, "trapz") else float(np.trapezoid(tpr, fpr))
    out: dict[str, Any] = {"auc": auc, "tpr_at_fpr": {}, "tpr_at_fpr_ci": {}, "epsilon_lower_bound": None,
                           "n_members": n_pos, "n_nonmembers": n_neg, "source": "fallback"}
    for f in FPRS:
        key = str(f)
        if f * n_neg < 1:
            out["tpr_at_fpr"][key] = None
            out["tpr_at_fpr_ci"][key] = None
            continue
        ok = fp <= math.floor(f * n_neg + 1e-9)
        k = int(tp[ok].max())
        out["tpr_at_fpr"][key] = k / n_pos
        out["tpr_at_fpr_ci"][key] = list(clopper_pearson(k, n_pos))
    return out
