"""Plots of the report, rendered with matplotlib's Agg canvas to inline base64 PNG.

No pyplot (no global state, safe in worker threads), small figures (dpi ~90) so the whole report stays
well under 2 MB. ROC curves are drawn on log-log axes (Carlini et al. 2022, "Membership inference attacks
from first principles", §IV: low-FPR behaviour is what matters) as the step function
``TPR(f) = max{TPR_i : FPR_i <= f}`` of the full ROC (every threshold kept), sampled on a log grid.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from ..metrics import dp_tpr_bound, gdp_tradeoff_tpr
from ..metrics import roc_curve as _metrics_roc_curve

__all__ = [
    "DpCurves",
    "figure_to_data_uri",
    "roc_points",
    "roc_on_grid",
    "plot_roc",
    "plot_roc_grid",
    "plot_score_histogram",
]

DPI = 90
_PALETTE = [
    "#1f4e79", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d",
    "#2c3e50", "#e67e22", "#2980b9", "#9b59b6", "#f1c40f", "#34495e", "#e84393",
]  # fmt: skip


def _percent_label(x: float, _pos: object = None) -> str:
    return f"{100 * x:.4g}%"


_PERCENT = FuncFormatter(_percent_label)


@dataclass(frozen=True)
class DpCurves:
    """Theory's ceiling for a DP-trained model: (epsilon, delta) region and, when known, the GDP curve."""

    epsilon: float
    delta: float
    mu: float | None = None


def roc_points(is_member: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full ROC (every threshold kept, starting at (0, 0)) from ``miaudit.metrics.roc_curve``."""
    curve = _metrics_roc_curve(np.asarray(is_member, dtype=bool), np.asarray(scores, dtype=np.float64))
    return np.asarray(curve.fpr, dtype=np.float64), np.asarray(curve.tpr, dtype=np.float64)


def roc_on_grid(fpr: np.ndarray, tpr: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``max{tpr_i : fpr_i <= g}`` for every ``g`` in ``grid`` (0 where no point qualifies); vectorised."""
    fpr = np.asarray(fpr, dtype=np.float64)
    best = np.maximum.accumulate(np.asarray(tpr, dtype=np.float64)[np.argsort(fpr, kind="mergesort")])
    idx = np.searchsorted(np.sort(fpr), grid, side="right") - 1
    return np.where(idx >= 0, best[np.clip(idx, 0, None)], 0.0)


def figure_to_data_uri(fig: Figure) -> str:
    """Render ``fig`` as PNG and return a ``data:image/png;base64,...`` URI (no metadata, deterministic)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fpr_grid(n_nonmembers: int) -> np.ndarray:
    lo = 1.0 / max(n_nonmembers, 1)
    return np.logspace(math.log10(lo), 0.0, 400)


def _style_loglog(ax: Any, n_members: int, n_nonmembers: int, *, small: bool = False) -> None:
    x_lo = 1.0 / max(n_nonmembers, 1)
    y_lo = 1.0 / max(n_members, 1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_lo, 1.0)
    ax.set_ylim(min(y_lo, x_lo), 1.05)
    chance = np.logspace(math.log10(min(x_lo, y_lo)), 0, 50)
    ax.plot(chance, chance, ls="--", lw=1, color="#888888", label="chance (TPR = FPR)", zorder=1)
    # Minor log ticks dominate drawing time on many-decade axes; majors (one per decade) are enough.
    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=8))
    ax.yaxis.set_major_locator(LogLocator(base=10, numticks=8))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())
    # Percent labels ("0.1%") read better than 10^-3 for reviewers, and skip mathtext layout (slow).
    ax.xaxis.set_major_formatter(_PERCENT)
    ax.yaxis.set_major_formatter(_PERCENT)
    ax.grid(True, which="major", color="#e5e5e5", lw=0.6)
    fs = 7 if small else 9
    ax.tick_params(labelsize=fs)
    ax.set_xlabel("false positive rate", fontsize=fs)
    ax.set_ylabel("true positive rate", fontsize=fs)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _draw_dp(ax: Any, dp: DpCurves, grid: np.ndarray) -> None:
    ax.plot(
        grid, dp_tpr_bound(grid, epsilon=dp.epsilon, delta=dp.delta), color="#b03a2e", lw=1.2, ls=":",
        label=f"(ε={dp.epsilon:.3g}, δ={dp.delta:.1e})-DP bound", zorder=2,
    )  # fmt: skip
    if dp.mu is not None:
        ax.plot(
            grid, gdp_tradeoff_tpr(grid, mu=dp.mu), color="#b03a2e", lw=1.4, ls="-.",
            label=f"Gaussian DP, μ={dp.mu:.3g}", zorder=2,
        )  # fmt: skip


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    n_members: int,
    n_nonmembers: int,
    highlight: str | None = None,
    dp: DpCurves | None = None,
) -> str:
    """All attacks' ROC curves on one log-log plot (FPR from 1/n_nonmembers to 1); returns a data URI."""
    fig = Figure(figsize=(8.4, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    grid = _fpr_grid(n_nonmembers)
    _style_loglog(ax, n_members, n_nonmembers)
    if dp is not None:
        _draw_dp(ax, dp, grid)
    for i, (name, (fpr, tpr)) in enumerate(curves.items()):
        strong = name == highlight
        ax.plot(
            grid, roc_on_grid(fpr, tpr, grid), drawstyle="steps-post", color=_PALETTE[i % len(_PALETTE)],
            lw=2.2 if strong else 1.2, alpha=1.0 if strong or highlight is None else 0.8,
            label=name + (" (strongest)" if strong else ""), zorder=4 if strong else 3,
        )  # fmt: skip
    ax.legend(fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, borderaxespad=0.0)
    ax.set_title("ROC, log-log (pooled over all evaluated examples)", fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.7, bottom=0.11, top=0.93)
    return figure_to_data_uri(fig)


def plot_roc_grid(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    n_members: int,
    n_nonmembers: int,
    points: Mapping[str, Sequence[tuple[float, float, float, float]]] | None = None,
    dp: DpCurves | None = None,
    ncols: int | None = None,
) -> str:
    """Small multiples: one log-log ROC per attack, with its TPR@FPR points and Clopper-Pearson bars.

    ``points[name]`` lists ``(fpr, tpr, ci_low, ci_high)`` for the figures that could be reported.
    """
    n = max(len(curves), 1)
    ncols = min(ncols or (4 if n > 6 else 3), n)
    nrows = math.ceil(n / ncols)
    height = 2.0 * nrows + 0.5
    fig = Figure(figsize=(2.3 * ncols + 0.6, height))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    grid = _fpr_grid(n_nonmembers)
    for i, (name, (fpr, tpr)) in enumerate(curves.items()):
        ax = axes[i // ncols][i % ncols]
        _style_loglog(ax, n_members, n_nonmembers, small=True)
        ax.set_xlabel("")
        ax.set_ylabel("")
        if dp is not None:
            _draw_dp(ax, dp, grid)
        color = _PALETTE[i % len(_PALETTE)]
        ax.plot(grid, roc_on_grid(fpr, tpr, grid), drawstyle="steps-post", color=color, lw=1.4)
        y_floor = ax.get_ylim()[0]
        for f, t, lo, hi in (points or {}).get(name, ()):
            if t is None or not np.isfinite(t):
                continue
            y = max(t, y_floor)
            ax.errorbar(
                [f], [y], yerr=[[max(y - max(lo, y_floor), 0)], [max(hi - y, 0)]], fmt="o", ms=3,
                color="black", lw=0.9, capsize=2, zorder=5,
            )  # fmt: skip
        ax.set_title(name, fontsize=8)
    for j in range(len(curves), nrows * ncols):  # empty cells of the last row
        axes[j // ncols][j % ncols].set_visible(False)
    for j in range(nrows * ncols):  # tick labels on the outer cells only (shared axes)
        ax = axes[j // ncols][j % ncols]
        ax.tick_params(labelleft=j % ncols == 0, labelbottom=j + ncols >= len(curves) or j // ncols == nrows - 1)
    fig.supxlabel("false positive rate", fontsize=8)
    fig.supylabel("true positive rate", fontsize=8)
    fig.subplots_adjust(
        left=0.5 / (2.3 * ncols + 0.6) + 0.04, right=1 - 0.25 / (2.3 * ncols + 0.6), bottom=0.5 / height + 0.02, top=1 - 0.25 / height,
        wspace=0.12, hspace=0.3,
    )  # fmt: skip
    return figure_to_data_uri(fig)


def plot_score_histogram(scores: np.ndarray, is_member: np.ndarray, *, name: str, bins: int = 50) -> str:
    """Member vs non-member score histograms (densities on shared bins) for one attack; returns a data URI."""
    scores = np.asarray(scores, dtype=np.float64)
    is_member = np.asarray(is_member, dtype=bool)
    ok = np.isfinite(scores)
    s, m = scores[ok], is_member[ok]
    fig = Figure(figsize=(6.6, 3.0))
    ax = fig.add_subplot(1, 1, 1)
    if s.size:
        # Heavy tails (LiRA log-likelihood ratios reach -300) would squash the bulk into one bin:
        # show the central 99% and pile the rest into the edge bins.
        lo, hi = np.quantile(s, [0.005, 0.995])
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1).tolist()
        clipped = np.clip(s, lo, hi)
        ax.hist(clipped[~m], bins=edges, density=True, histtype="stepfilled", alpha=0.55, color="#7f8c8d", label=f"non-members (n={int((~m).sum()):,})")
        ax.hist(clipped[m], bins=edges, density=True, histtype="stepfilled", alpha=0.55, color="#c0392b", label=f"members (n={int(m.sum()):,})")
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel(f"{name} score (higher = more likely member; outer 1% piled into the edge bins)", fontsize=9)
    ax.set_ylabel("density", fontsize=9)
    ax.tick_params(labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.16, top=0.95)
    return figure_to_data_uri(fig)
