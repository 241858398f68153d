"""Slow, obviously-correct reference implementations (loops over thresholds and pairs)."""

from __future__ import annotations

import numpy as np


def roc(m: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = np.asarray(m, bool)
    s = np.asarray(s, float)
    thresholds = [np.inf] + sorted(set(s.tolist()), reverse=True)
    fpr, tpr = [], []
    for t in thresholds:
        flagged = s >= t
        tpr.append(flagged[m].sum() / m.sum())
        fpr.append(flagged[~m].sum() / (~m).sum())
    return np.array(fpr), np.array(tpr), np.array(thresholds)


def auc(m: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[m], s[~m]
    total = 0.0
    for a in pos:
        for b in neg:
            total += 1.0 if a > b else 0.5 if a == b else 0.0
    return total / (len(pos) * len(neg))


def tpr_at_fpr(m: np.ndarray, s: np.ndarray, f: float) -> tuple[float, float, int]:
    """(tpr, threshold, k) of the largest TPR with FPR <= f."""
    fpr, tpr, thr = roc(m, s)
    best = max((tpr[i], -i) for i in range(len(fpr)) if fpr[i] <= f)
    i = -best[1]
    return float(tpr[i]), float(thr[i]), int(round(tpr[i] * m.sum()))


def advantage(m: np.ndarray, s: np.ndarray) -> float:
    fpr, tpr, _ = roc(m, s)
    return float(max(tpr - fpr))


def delong_var(m: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[m], s[~m]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10 = psi.mean(axis=1)
    v01 = psi.mean(axis=0)
    return v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
