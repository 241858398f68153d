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
from ..report._verdict import fpr_label

__all__ = ["render_levers_html", "pareto_labels", "place_labels", "plot_lever", "plot_pareto", "risk_label"]


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
        ax.plot(x[order], y, "o-", color=colour, label=(label + " " if label else "") + risk_label(risk))
        lo, hi = f"{risk}_ci_low", f"{risk}_ci_high"
        if lo in g and hi in g:
            ylo = pd.to_numeric(g[lo], errors="coerce").to_numpy(float)[order]
            yhi = pd.to_numeric(g[hi], errors="coerce").to_numpy(float)[order]
            ax.fill_between(x[order], ylo, yhi, color=colour, alpha=0.12, linewidth=0)
        acc = pd.to_numeric(g["test_accuracy"], errors="coerce").to_numpy(float)[order]
        ax2.plot(x[order], acc, "s--", color=colour, alpha=0.6, label=(label + " " if label else "") + "test accuracy")
        if log:
            ax.set_xscale("log")
    ax.set_xlabel(lever + ("  (inf = no DP)" if lever == "dp_epsilon" else ""))
    ax.set_ylabel(risk_label(risk) + " (strongest attack)", fontsize=9)
    ax2.set_ylabel("test accuracy", fontsize=9)
    ax.grid(alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, [risk_label(x) if x == risk else x for x in l1] + l2, fontsize=7, frameon=False,
              loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=min(4, len(l1) + len(l2)))  # below: never on the data
    ax.set_title(f"{risk_label(risk)} and test accuracy vs {lever}", fontsize=10)
    fig.tight_layout()
    return figure_to_data_uri(fig)


def risk_label(risk: str) -> str:
    """'tpr@0.01' -> 'TPR @ 1% FPR'; other risk columns by name ('auc' -> 'AUC')."""
    if risk.startswith("tpr@"):
        try:
            return f"TPR @ {fpr_label(float(risk[4:]))} FPR"
        except ValueError:
            return risk
    return {"auc": "AUC", "epsilon_lower_bound": "ε lower bound", "advantage": "advantage"}.get(risk, risk)


def place_labels(points: np.ndarray, sizes: list[tuple[float, float]], *, pad: float = 2.0) -> list[tuple[float, float]]:
    """Offsets (points, from each marker) so that no label box overlaps another label or a marker.

    ``points`` (n, 2) are marker positions and ``sizes`` the label boxes (width, height), both in display
    points. Greedy: each label takes the first of a ring of candidate offsets that collides with nothing
    placed so far (falling back to the least crowded one).
    """
    rings = [(4, 3), (4, -3 - 1), (-4, 3), (-4, -4), (0, 9), (0, -12), (10, 10), (10, -14), (-12, 10), (-12, -14),
             (0, 18), (0, -20)]
    marker = 4.0
    boxes: list[tuple[float, float, float, float]] = [(x - marker, y - marker, x + marker, y + marker) for x, y in points]
    out = []
    for (x, y), (w, h) in zip(points, sizes):
        best, best_hits = (4.0, 3.0), math.inf
        for dx, dy in rings:
            x0 = x + dx if dx >= 0 else x + dx - w
            y0 = y + dy if dy >= 0 else y + dy - h
            box = (x0 - pad, y0 - pad, x0 + w + pad, y0 + h + pad)
            hits = sum(1 for b in boxes if box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3])
            if hits < best_hits:
                best, best_hits = (float(dx), float(dy)), hits
                best_box = box
            if hits == 0:
                break
        boxes.append(best_box)
        out.append(best)
    return out


def pareto_labels(summary: pd.DataFrame, risk: str) -> dict[tuple[float, float], str]:
    """The label of each distinct (test accuracy, risk) point: the numbers (``#``) of the settings there."""
    u = pd.to_numeric(summary["test_accuracy"], errors="coerce").to_numpy(float)
    r = pd.to_numeric(summary[risk], errors="coerce").to_numpy(float)
    at: dict[tuple[float, float], list[str]] = {}
    for i in range(len(summary)):
        if np.isfinite(u[i]) and np.isfinite(r[i]):
            at.setdefault((float(u[i]), float(r[i])), []).append(str(summary.index[i] + 1))
    return {k: ", ".join(v) for k, v in at.items()}


def plot_pareto(summary: pd.DataFrame, risk: str, levers: list[str]) -> str:
    """Risk against test accuracy for every setting; the Pareto front (least risk for its accuracy) marked.

    Each point is labelled with its setting's number (``#`` in the page's tables); settings at the same
    point share one label ("4, 9"), and labels are placed so that they never overlap.
    """
    fig = Figure(figsize=(6.2, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    u = pd.to_numeric(summary["test_accuracy"], errors="coerce").to_numpy(float)
    r = pd.to_numeric(summary[risk], errors="coerce").to_numpy(float)
    front = summary["pareto"].to_numpy(bool)
    ax.scatter(u[~front], r[~front], color="#95a5a6", s=28, label="setting (# in the tables)")
    ax.scatter(u[front], r[front], color="#c0392b", s=40, label="Pareto front", zorder=3)
    order = np.argsort(u[front])
    ax.plot(u[front][order], r[front][order], color="#c0392b", lw=1.2)
    ax.set_xlabel("test accuracy (utility)")
    ax.set_ylabel(risk_label(risk) + " (risk)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    ax.set_title("Risk vs utility", fontsize=10)
    fig.tight_layout()
    at = pareto_labels(summary, risk)
    if at:
        fontsize = 7.5
        keys = list(at)
        to_pts = 72.0 / fig.dpi
        disp = ax.transData.transform(np.array(keys)) * to_pts  # display pixels -> points
        texts = [at[k] for k in keys]
        sizes = [(0.62 * fontsize * len(t), fontsize) for t in texts]
        for (xy, text, (dx, dy)) in zip(keys, texts, place_labels(disp, sizes)):
            ax.annotate(text, xy, fontsize=fontsize, xytext=(dx, dy), textcoords="offset points",
                        ha="left" if dx >= 0 else "right", va="bottom" if dy >= 0 else "top", color="#333333")
    return figure_to_data_uri(fig)


_HEADERS = {
    "train_accuracy": "train acc", "test_accuracy": "test acc", "generalisation_gap": "gap", "n_nonmembers":
    "non-members", "n_members": "members", "auc": "AUC", "advantage": "advantage", "epsilon_lower_bound": "ε LB",
    "accountant_epsilon": "accountant ε", "leakage_detected": "leakage detected", "pareto": "Pareto",
    "repetitions": "reps", "seed": "seed",
}


def _header(col: str) -> str:
    if col.startswith("lever:"):
        return col.removeprefix("lever:")
    if col.startswith("tpr@"):
        return risk_label(col).replace(" FPR", "")
    return _HEADERS.get(col, col.replace("_", " "))


def _value(col: str, v: Any) -> str:
    if isinstance(v, (bool, np.bool_)) or col in ("pareto", "leakage_detected"):
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else ("yes" if bool(v) else "no")
    x = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0] if not isinstance(v, str) else math.nan
    if col.startswith("tpr@") and np.isfinite(x):
        return f"{100 * x:.2g}%" if 0 < abs(x) < 0.01 else f"{100 * x:.1f}%"
    if col.startswith("lever:"):
        return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else _cell(v)
    if col.startswith("n_") or col in ("repetitions", "seed"):
        return _cell(v)
    if isinstance(x, float) and np.isfinite(x):
        return f"{x:.3g}" if abs(x) < 0.01 else f"{x:.3f}"
    return _cell(v)


#: The figures the page's tables show (levers.csv and levers.json hold every column, intervals included).
_SHOWN = ("train_accuracy", "test_accuracy", "generalisation_gap", "n_nonmembers", "auc", "tpr@",
          "epsilon_lower_bound", "accountant_epsilon", "leakage_detected", "pareto", "repetitions")


def _shown(df: pd.DataFrame) -> list[str]:
    cols = [c for c in df.columns if c.startswith("lever:")]
    for key in _SHOWN:
        for c in df.columns:
            if (c == key or (key == "tpr@" and c.startswith("tpr@"))) and not c.endswith(("_ci_low", "_ci_high")):
                if key == "repetitions" and not (pd.to_numeric(df[c], errors="coerce") > 1).any():
                    continue  # one repetition each: nothing to say
                if key == "accountant_epsilon" and df[c].isna().all():
                    continue
                cols.append(c)
    return cols


def _table(df: pd.DataFrame) -> dict[str, Any]:
    """Rows with the setting's number (``#``, as on the Pareto plot), short headers and readable figures."""
    cols = _shown(df)
    rows = [[str(i + 1), *(_value(c, v) for c, v in zip(cols, row))]
            for i, row in zip(df.index, df[cols].itertuples(index=False))]
    return {"columns": ["#", *(_header(c) for c in cols)], "rows": rows}


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
