"""Render a levers sweep (:class:`miaudit.levers.LeverResult`) as one self-contained HTML page.

Plots: the risk figure against each lever's value (with test accuracy beside it), and risk against
utility with the Pareto front marked. Same security rules as the audit report: autoescaping, no
script, no URL, a strict Content-Security-Policy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..report._html import _ENV, CSP, _cell
from ..report._plots import _PALETTE, figure_to_data_uri

__all__ = ["render_levers_html", "plot_lever", "plot_pareto"]


def _numeric(values: pd.Series) -> tuple[np.ndarray, bool]:
    """Lever values as floats for the x axis (inf -> shown last), and whether a log axis fits."""
    def conv(v: Any) -> float:
        if isinstance(v, str) and v.lower() in ("inf", "infinity"):
            return math.inf
        if isinstance(v, (list, tuple)):
            return float(np.prod(v))
        try:
            return float(v)
        except (TypeError, ValueError):
            return math.nan

    x = np.array([conv(v) for v in values], dtype=float)
    finite = x[np.isfinite(x)]
    log = bool(finite.size and np.all(finite > 0) and finite.max() / finite.min() >= 20)
    return x, log


def plot_lever(summary: pd.DataFrame, lever: str, risk: str, *, others: list[str]) -> str:
    """Risk (left axis) and test accuracy (right axis) against one lever's values."""
    col = f"lever:{lever}"
    df = summary[summary[col].notna()].copy()
    fig = Figure(figsize=(6.2, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    ax2 = ax.twinx()
    other_cols = [f"lever:{o}" for o in others if f"lever:{o}" in df.columns and df[f"lever:{o}"].notna().any()]
    groups = [(None, df)] if not other_cols else list(df.groupby([df[c].astype(str) for c in other_cols], sort=False))
    for i, (gkey, g) in enumerate(groups):
        x, log = _numeric(g[col])
        finite_max = np.nanmax(x[np.isfinite(x)]) if np.isfinite(x).any() else 1.0
        x = np.where(np.isinf(x), finite_max * (10 if log else 1.5) if finite_max > 0 else 1.0, x)
        order = np.argsort(x)
        label = "" if gkey is None else ", ".join(f"{o}={v}" for o, v in zip(others, gkey if isinstance(gkey, tuple) else (gkey,)))
        colour = _PALETTE[i % len(_PALETTE)]
        y = pd.to_numeric(g[risk], errors="coerce").to_numpy(float)[order]
        ax.plot(x[order], y, "o-", color=colour, label=(label + " " if label else "") + risk)
        lo, hi = f"{risk}_ci_low", f"{risk}_ci_high"
        if lo in g and hi in g:
            ylo = pd.to_numeric(g[lo], errors="coerce").to_numpy(float)[order]
            yhi = pd.to_numeric(g[hi], errors="coerce").to_numpy(float)[order]
            ax.fill_between(x[order], ylo, yhi, color=colour, alpha=0.12, linewidth=0)
        acc = pd.to_numeric(g["test_accuracy"], errors="coerce").to_numpy(float)[order]
        ax2.plot(x[order], acc, "s--", color=colour, alpha=0.6, label=(label + " " if label else "") + "test acc")
        if log:
            ax.set_xscale("log")
    ax.set_xlabel(lever + ("  (inf = no DP)" if lever == "dp_epsilon" else ""))
    ax.set_ylabel(risk + " (strongest attack)")
    ax2.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="best", frameon=False)
    ax.set_title(f"{risk} and test accuracy vs {lever}", fontsize=10)
    fig.tight_layout()
    return figure_to_data_uri(fig)


def plot_pareto(summary: pd.DataFrame, risk: str, levers: list[str]) -> str:
    """Risk against test accuracy for every setting; the Pareto front (least risk for its accuracy) marked."""
    fig = Figure(figsize=(6.2, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    u = pd.to_numeric(summary["test_accuracy"], errors="coerce").to_numpy(float)
    r = pd.to_numeric(summary[risk], errors="coerce").to_numpy(float)
    front = summary["pareto"].to_numpy(bool)
    ax.scatter(u[~front], r[~front], color="#95a5a6", s=28, label="setting")
    ax.scatter(u[front], r[front], color="#c0392b", s=40, label="Pareto front", zorder=3)
    order = np.argsort(u[front])
    ax.plot(u[front][order], r[front][order], color="#c0392b", lw=1.2)
    for i in range(len(summary)):
        if np.isfinite(u[i]) and np.isfinite(r[i]):
            text = ", ".join(f"{lv}={summary.iloc[i][f'lever:{lv}']}" for lv in levers
                             if pd.notna(summary.iloc[i].get(f"lever:{lv}")))
            ax.annotate(text, (u[i], r[i]), fontsize=6.5, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("test accuracy (utility)")
    ax.set_ylabel(risk + " (risk)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("Risk vs utility", fontsize=10)
    fig.tight_layout()
    return figure_to_data_uri(fig)


def _table(df: pd.DataFrame) -> dict[str, Any]:
    cols = [c for c in df.columns if not c.endswith("_ci_low") and not c.endswith("_ci_high")]
    return {"columns": [c.removeprefix("lever:") for c in cols],
            "rows": [[_cell(v) for v in row] for row in df[cols].itertuples(index=False)]}


def render_levers_html(result: Any) -> str:
    """The full ``levers.html`` text."""
    summary = result.summary()
    risk = result.risk_column()
    levers = list(result.sweep.values)
    plots = []
    if risk in summary.columns and summary[risk].notna().any():
        for lever in levers:
            others = [o for o in levers if o != lever] if result.sweep.mode == "grid" else []
            plots.append((lever, plot_lever(summary, lever, risk, others=others)))
        pareto = plot_pareto(summary, risk, levers)
    else:
        pareto = None
    recs = result.recommendations()
    context = {
        "csp": CSP,
        "title": "miaudit levers: how the settings move the membership risk",
        "risk": risk,
        "mode": result.sweep.mode,
        "repetitions": result.sweep.repetitions,
        "levers": {k: [str(v) for v in vs] for k, vs in result.sweep.values.items()},
        "budget": result.budget,
        "summary": _table(summary),
        "recommended": _table(recs) if len(recs) else None,
        "plots": plots,
        "pareto": pareto,
        "n_points": len(result.table),
    }
    return _ENV.get_template("levers.html").render(**context)
