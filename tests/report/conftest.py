"""Builders of realistic AuditResults for the report tests (metric dicts follow docs/results-schema.md)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta
from sklearn.metrics import roc_auc_score, roc_curve

from miaudit.report import AuditResult

FPRS = (0.001, 0.01, 0.1)


def _cp(k: int, n: int, conf: float = 0.95) -> tuple[float, float]:
    a = 1 - conf
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def metrics_dict(is_member: np.ndarray, scores: np.ndarray, *, fprs=FPRS, spread: bool = False) -> dict[str, Any]:
    """A results.json per-attack object computed by brute force (stand-in for evaluate_scores().to_dict())."""
    is_member = np.asarray(is_member, bool)
    n_mem, n_non = int(is_member.sum()), int((~is_member).sum())
    fpr, tpr, thr = roc_curve(is_member, scores, drop_intermediate=False)
    auc = float(roc_auc_score(is_member, scores))
    out: dict[str, Any] = {
        "auc": auc,
        "auc_ci": [max(auc - 0.03, 0.0), min(auc + 0.03, 1.0)],
        "balanced_accuracy": float(np.max((tpr + 1 - fpr) / 2)),
        "advantage": float(np.max(tpr - fpr)),
        "tpr_at_fpr": {},
        "tpr_at_fpr_ci": {},
        "tpr_at_fpr_detail": {},
        "ppv_at_fpr": {},
        "epsilon_lower_bound": 0.0,
        "epsilon_detail": {"method": "split", "delta": 1e-5},
        "n_members": n_mem,
        "n_nonmembers": n_non,
    }
    for f in fprs:
        key = repr(f)
        if f * n_non < 1:
            out["tpr_at_fpr"][key] = None
            out["tpr_at_fpr_ci"][key] = None
            out["ppv_at_fpr"][key] = None
            out["tpr_at_fpr_detail"][key] = {
                "tpr": None, "ci_low": None, "ci_high": None, "achieved_fpr": None, "threshold": None,
                "n_members": n_mem, "n_nonmembers": n_non,
                "reason": f"FPR {f:g} needs at least {int(round(1 / f))} non-members, got {n_non}",
            }
            continue
        ok = fpr <= f
        i = int(np.flatnonzero(ok)[np.argmax(tpr[ok])])
        t = float(tpr[i])
        lo, hi = _cp(int(round(t * n_mem)), n_mem)
        out["tpr_at_fpr"][key] = t
        out["tpr_at_fpr_ci"][key] = [lo, hi]
        out["ppv_at_fpr"][key] = float(t / (t + fpr[i])) if t + fpr[i] > 0 else None
        out["tpr_at_fpr_detail"][key] = {
            "tpr": t, "ci_low": lo, "ci_high": hi, "achieved_fpr": float(fpr[i]), "threshold": float(thr[i]),
            "n_members": n_mem, "n_nonmembers": n_non, "reason": None,
        }
    if spread:
        out["spread"] = {
            "n_targets": 4,
            "auc": {"mean": auc, "std": 0.01},
            "tpr_at_fpr": {repr(f): {"mean": out["tpr_at_fpr"][repr(f)], "std": 0.002} for f in fprs},
        }
    return out


def make_result(
    *,
    n: int = 3000,
    seed: int = 0,
    attacks: tuple[str, ...] = ("loss", "lira_online"),
    strength: tuple[float, ...] = (0.2, 1.5),
    text: str = "digits",
    spread: bool = False,
    targets: int = 0,
    dp: dict[str, Any] | None = None,
    created: str | None = "2026-01-01T00:00:00+00:00",
) -> AuditResult:
    """A two-attack audit where ``lira_online`` leaks strongly and ``loss`` weakly; ``text`` goes everywhere."""
    rng = np.random.default_rng(seed)
    is_member = np.zeros(n, bool)
    is_member[rng.permutation(n)[: n // 2]] = True
    labels = rng.integers(0, 3, n)
    scores = pd.DataFrame({"index": np.arange(n), "label": labels, "is_member": is_member})
    if targets:
        scores["target"] = np.arange(n) % targets
    scores["group"] = np.where(labels == 0, text, "other")
    metrics = {}
    for name, s in zip(attacks, strength):
        col = rng.normal(size=n) + s * is_member * rng.exponential(size=n)
        scores[name] = col
        metrics[name] = metrics_dict(is_member, col, spread=spread)
    metrics[attacks[-1]]["epsilon_lower_bound"] = 1.234
    game: dict[str, Any] = {
        "source": "demo", "dataset": text, "model": f"MLPClassifier(hidden={text})", "seed": 7,
        "n_examples": n, "n_members": int(is_member.sum()), "n_nonmembers": int((~is_member).sum()),
        "n_classes": 3, "n_queries": 1, "n_references": 8, "n_targets": max(targets, 1),
        "train_accuracy": 1.0, "test_accuracy": 0.93, "generalisation_gap": 0.07, "path": f"/tmp/{text}/data.csv",
    }
    if dp is not None:
        game["dp"] = dp
    slices = {
        "class": pd.DataFrame({"class": [0, 1, 2], "n": [n // 3] * 3, "auc": [0.6, 0.55, np.nan]}),
        "group": pd.DataFrame({text: [text, "other"], "auc": [0.7, 0.5], "tpr@0.01": [0.05, None]}),
    }
    best = attacks[-1]
    order = np.argsort(-scores[best].to_numpy())[:10]
    exposures = pd.DataFrame(
        {
            "index": order, "label": labels[order], "score": scores[best].to_numpy()[order],
            "mean_in": rng.normal(size=10), "mean_out": rng.normal(size=10), text: [text] * 10,
        }
    )
    return AuditResult(
        game=game,
        settings={"delta": 1e-5, "confidence": 0.95, "member_prior": 0.5, "fprs": list(FPRS)},
        metrics=metrics,
        scores=scores,
        skipped={"rmia": f"needs reference models ({text})"},
        slices=slices,
        exposures=exposures,
        created=created,
    )


@pytest.fixture
def result() -> AuditResult:
    return make_result()


_PNG_1PX = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@pytest.fixture
def fast_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stub the matplotlib figures (tests that only read the report's text need not draw them)."""
    from miaudit.report import _html

    for name in ("plot_roc", "plot_roc_grid", "plot_score_histogram"):
        monkeypatch.setattr(_html, name, lambda *a, **k: _PNG_1PX)
