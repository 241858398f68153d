"""Builders of realistic AuditResults for the report and browser tests (typed metrics from miaudit.metrics)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from miaudit.metrics import AuditSettings, decide_leakage, dp_check, evaluate_scores, summarize_spread
from miaudit.report import AuditResult

FPRS = (0.001, 0.01, 0.1)


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
    metrics, spreads, cols = {}, {}, {}
    strata = scores["target"].to_numpy() if targets else None
    for name, s in zip(attacks, strength):
        col = rng.normal(size=n) + s * is_member * rng.exponential(size=n)
        scores[name] = col
        cols[name] = col
        metrics[name] = evaluate_scores(is_member, col, fprs=FPRS, strata=strata)
        if spread:
            parts = metrics[name].strata or (metrics[name],) * 4
            spreads[name] = summarize_spread(list(parts))
    decision = decide_leakage(is_member, cols, groups=strata, fprs=FPRS)
    game: dict[str, Any] = {
        "source": "demo", "dataset": text, "model": f"MLPClassifier(hidden={text})", "seed": 7,
        "n_examples": n, "n_members": int(is_member.sum()), "n_nonmembers": int((~is_member).sum()),
        "n_classes": 3, "n_queries": 1, "n_references": 8, "n_targets": max(targets, 1),
        "train_accuracy": 1.0, "test_accuracy": 0.93, "generalisation_gap": 0.07, "path": f"/tmp/{text}/data.csv",
    }
    dp_chk = None
    if dp is not None:
        game["dp"] = dp
        try:
            dp_chk = dp_check(is_member, cols, epsilon=float(dp["epsilon"]), delta=float(dp["delta"]))
        except (KeyError, TypeError, ValueError):
            dp_chk = None
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
        settings=AuditSettings(fprs=FPRS),
        metrics=metrics,
        decision=decision,
        dp_check=dp_chk,
        spread=spreads,
        scores=scores,
        skipped={"rmia": f"needs reference models ({text})"},
        slices=slices,
        exposures=exposures,
        created=created,
    )


