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
    "attack_family",
    "figure_to_data_uri",
    "merge_identical",
    "score_percentiles",
    "roc_points",
    "roc_on_grid",
    "plot_roc",
    "plot_roc_grid",
    "plot_score_histogram",
    "roc_legend",
    "score_densities",
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


#: Attack families of the ROC plots: (family, names or name prefixes, its colours). One hue per family, so
#: 16 attacks read as 6 groups; within a family the line style tells the attacks apart.
_FAMILIES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("LiRA", ("lira_",), ("#1f4e79", "#2e86c1", "#5dade2")),
    ("RMIA", ("rmia",), ("#6c3483", "#a569bd", "#c39bd3")),
    ("BASE", ("base",), ("#ad1457", "#e91e63", "#f48fb1")),
    ("calibrated by references", ("attack_r", "calibrated_"), ("#117a65", "#45b39d", "#76d7c4")),
    ("trained attack model", ("trained_", "shokri"), ("#a04000", "#dc7633", "#f0b27a")),
    ("threshold on the output", ("loss", "confidence", "entropy", "modified_entropy", "scaled_logit",
                                 "max_score", "score_spread", "score_extremity"), ("#7d6608", "#b7950b", "#d4ac0d")),
)
_OTHER_FAMILY = ("other attacks", (), ("#b03a2e", "#d98880", "#922b21"))
_STYLES = ("-", "--", ":", "-.")


def attack_family(name: str) -> str:
    """The family an attack is drawn with (its colour hue in the ROC plots)."""
    for family, keys, _ in _FAMILIES:
        if any(name == k or name.startswith(k if k.endswith("_") else k + "_") for k in keys):
            return family
    return _OTHER_FAMILY[0]


def merge_identical(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> list[tuple[list[str], np.ndarray, np.ndarray]]:
    """Curves grouped by identical ROC (e.g. loss, confidence and scaled logit rank examples alike), in order."""
    groups: dict[tuple[bytes, bytes], list[str]] = {}
    arrays: dict[tuple[bytes, bytes], tuple[np.ndarray, np.ndarray]] = {}
    for name, (fpr, tpr) in curves.items():
        f, t = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
        key = (f.tobytes(), t.tobytes())
        groups.setdefault(key, []).append(name)
        arrays.setdefault(key, (f, t))
    return [(names, *arrays[key]) for key, names in groups.items()]


def _curve_styles(groups: Sequence[Sequence[str]]) -> list[tuple[str, str, str]]:
    """(family, colour, line style) of each group of identical curves, from its first name."""
    table = {family: colours for family, _, colours in (*_FAMILIES, _OTHER_FAMILY)}
    seen: dict[str, int] = {}
    out = []
    for names in groups:
        family = attack_family(names[0])
        k = seen.get(family, 0)
        seen[family] = k + 1
        colours = table[family]
        out.append((family, colours[k % len(colours)], _STYLES[k % len(_STYLES)]))
    return out


def _by_family(entries: Mapping[str, list[Any]]) -> list[tuple[str, list[Any]]]:
    return [(f, entries[f]) for f, _, _ in (*_FAMILIES, _OTHER_FAMILY) if f in entries]


def roc_legend(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], highlight: str | None = None) -> list[str]:
    """The legend of :func:`plot_roc` (without chance and DP lines): family headers, each followed by its
    curves, one entry per distinct curve naming every attack that has it; the strongest starts with a star."""
    groups = merge_identical(curves)
    entries: dict[str, list[str]] = {}
    for (names, _, _), (family, _, _) in zip(groups, _curve_styles([g[0] for g in groups])):
        label = " = ".join(names)
        entries.setdefault(family, []).append(f"\u2605 {label} (strongest)" if highlight in names else label)
    return [x for family, members in _by_family(entries) for x in (family, *members)]


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    n_members: int,
    n_nonmembers: int,
    highlight: str | None = None,
    dp: DpCurves | None = None,
) -> str:
    """All attacks' ROC curves on one log-log plot (FPR from 1/n_nonmembers to 1); returns a data URI.

    Attacks of one family share a hue (legend grouped by family), the strongest (``highlight``) is drawn
    thick in black on top, and attacks with identical ROC curves are drawn once under all their names.
    """
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(8.4, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    grid = _fpr_grid(n_nonmembers)
    _style_loglog(ax, n_members, n_nonmembers)
    if dp is not None:
        _draw_dp(ax, dp, grid)
    groups = merge_identical(curves)
    styles = _curve_styles([names for names, _, _ in groups])
    entries: dict[str, list[tuple[Any, str]]] = {}
    for (names, fpr, tpr), (family, colour, ls) in zip(groups, styles):
        strong = highlight in names
        label = " = ".join(names)
        (line,) = ax.plot(
            grid, roc_on_grid(fpr, tpr, grid), drawstyle="steps-post", color="black" if strong else colour,
            ls="-" if strong else ls, lw=2.6 if strong else 1.3, zorder=5 if strong else 3,
        )  # fmt: skip
        entries.setdefault(family, []).append((line, f"\u2605 {label} (strongest)" if strong else label))
    handles: list[Any] = []
    labels: list[str] = []
    headers: set[int] = set()
    for family, members in _by_family(entries):
        headers.add(len(labels))
        handles.append(Line2D([], [], color="none"))
        labels.append(family)
        for line, label in members:
            handles.append(line)
            labels.append(label)
    for line in ax.get_lines():  # the chance line and the DP curves carry their labels
        lab = str(line.get_label())
        if not lab.startswith("_"):
            handles.append(line)
            labels.append(lab)
    legend = ax.legend(handles, labels, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
                       borderaxespad=0.0, handlelength=2.4)
    for i, text in enumerate(legend.get_texts()):
        if i in headers:
            text.set_fontweight("bold")
    ax.set_title("ROC, log-log (pooled over all evaluated examples)", fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.64, bottom=0.11, top=0.93)
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
    """Small multiples: one log-log ROC per attack (attacks with identical curves share one panel), with its
    TPR@FPR points and their intervals, in the attack's family colour.

    ``points[name]`` lists ``(fpr, tpr, ci_low, ci_high)`` for the figures that could be reported.
    """
    import textwrap

    groups = merge_identical(curves)
    styles = _curve_styles([names for names, _, _ in groups])
    n = max(len(groups), 1)
    ncols = min(ncols or (4 if n > 6 else 3), n)
    nrows = math.ceil(n / ncols)
    height = 2.0 * nrows + 0.5
    fig = Figure(figsize=(2.3 * ncols + 0.6, height))
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False)
    grid = _fpr_grid(n_nonmembers)
    for i, ((names, fpr, tpr), (_family, color, _ls)) in enumerate(zip(groups, styles)):
        ax = axes[i // ncols][i % ncols]
        _style_loglog(ax, n_members, n_nonmembers, small=True)
        ax.set_xlabel("")
        ax.set_ylabel("")
        if dp is not None:
            _draw_dp(ax, dp, grid)
        ax.plot(grid, roc_on_grid(fpr, tpr, grid), drawstyle="steps-post", color=color, lw=1.4)
        y_floor = ax.get_ylim()[0]
        for f, t, lo, hi in (points or {}).get(names[0], ()):
            if t is None or not np.isfinite(t):
                continue
            y = max(t, y_floor)
            ax.errorbar(
                [f], [y], yerr=[[max(y - max(lo, y_floor), 0)], [max(hi - y, 0)]], fmt="o", ms=3,
                color="black", lw=0.9, capsize=2, zorder=5,
            )  # fmt: skip
        ax.set_title("\n".join(textwrap.wrap(" = ".join(names), 30)[:2]), fontsize=8 if len(names) == 1 else 7)
    for j in range(len(groups), nrows * ncols):  # empty cells of the last row
        axes[j // ncols][j % ncols].set_visible(False)
    for j in range(nrows * ncols):  # tick labels on the outer cells only (shared axes)
        ax = axes[j // ncols][j % ncols]
        ax.tick_params(labelleft=j % ncols == 0, labelbottom=j + ncols >= len(groups) or j // ncols == nrows - 1)
    fig.supxlabel("false positive rate", fontsize=8)
    fig.supylabel("true positive rate", fontsize=8)
    fig.subplots_adjust(
        left=0.5 / (2.3 * ncols + 0.6) + 0.04, right=1 - 0.25 / (2.3 * ncols + 0.6), bottom=0.5 / height + 0.02, top=1 - 0.3 / height,
        wspace=0.12, hspace=0.38,
    )  # fmt: skip
    return figure_to_data_uri(fig)


def score_percentiles(scores: np.ndarray) -> np.ndarray:
    """Each score's percentile among all scores, in (0, 100]: ties share their mean rank (all NaN if one is)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    out: np.ndarray = 100.0 * _average_ranks(s) / max(s.size, 1)
    return out


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given their mean rank: ``scipy.stats.rankdata(x, method="average")`` (whose import
    costs half a second), NaN everywhere when ``x`` holds a NaN as there."""
    if np.isnan(x).any():
        return np.full(x.size, np.nan)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]
    ranks = np.empty(x.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)  # the mean of positions start+1 .. end
    return ranks


def score_densities(scores: np.ndarray, is_member: np.ndarray, *, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The histogram of :func:`plot_score_histogram`: (bin edges on the percentile scale, densities (2, bins) of
    non-members and members); a density of 1 is what an even spread over the percentiles gives."""
    pct_rank = score_percentiles(scores)
    edges = np.linspace(0.0, 100.0, bins + 1)
    out = np.zeros((2, bins))
    for row, mask in enumerate((~is_member, is_member)):
        if mask.any():
            counts, _ = np.histogram(pct_rank[mask], bins=edges)
            out[row] = counts / mask.sum() * bins
    return edges, out


def plot_score_histogram(scores: np.ndarray, is_member: np.ndarray, *, name: str, bins: int = 20) -> str:
    """Where members' and non-members' scores fall among all scores: densities over the pooled percentile.

    Scores are plotted on the percentile scale of all examples' scores, so heavy tails (LiRA's
    log-likelihood ratios reach -300) cannot squash the bulk into a bin or two: every bin holds the same
    number of examples, and without leakage both densities are flat at 1. The top axis gives the score
    at some percentiles.
    """
    scores = np.asarray(scores, dtype=np.float64)
    is_member = np.asarray(is_member, dtype=bool)
    ok = np.isfinite(scores)
    s, m = scores[ok], is_member[ok]
    fig = Figure(figsize=(6.6, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    if s.size:
        edges, densities = score_densities(s, m, bins=bins)
        for density, mask, colour, label in ((densities[0], ~m, "#7f8c8d", "non-members"),
                                             (densities[1], m, "#c0392b", "members")):
            if mask.any():
                ax.stairs(density, edges, fill=True, alpha=0.35, color=colour)
                ax.stairs(density, edges, color=colour, lw=1.4, label=f"{label} (n={int(mask.sum()):,})")
        ax.axhline(1.0, color="#555555", lw=0.8, ls=":", label="no difference")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, None)
        ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
        top = ax.secondary_xaxis("top")
        qs = [0, 25, 50, 75, 100]
        values = np.quantile(s, [q / 100 for q in qs])
        top.set_xticks(qs, [f"{v:.3g}" for v in values])
        top.tick_params(labelsize=7, colors="#555555")
        top.set_xlabel(f"{name} score at that percentile", fontsize=8, color="#555555", labelpad=6)
    ax.set_xlabel(f"percentile of the {name} score among all examples (right = more likely member)", fontsize=9)
    ax.set_ylabel("density (1 = even)", fontsize=9)
    ax.tick_params(labelsize=8)
    for side in ("right",):
        ax.spines[side].set_visible(False)
    fig.subplots_adjust(left=0.09, right=0.97, bottom=0.26, top=0.8)
    return figure_to_data_uri(fig)
