"""Render :class:`AuditResult` to one self-contained, offline, script-free HTML file.

Security: Jinja2 autoescaping is on for every value (dataset names, paths, feature names, group values,
attack names, model reprs are all user-controlled); the page carries a Content-Security-Policy that forbids
every fetch except inline ``data:`` images and inline styles, and contains no ``<script>`` and no URL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np
import pandas as pd

from ..metrics import gdp_mu_from_epsilon
from ._plots import DpCurves, plot_roc, plot_roc_grid, plot_score_histogram, roc_points
from ._verdict import _num, describe_tpr, dp_violations, fpr_label, make_verdict, pct, tpr_figure

if TYPE_CHECKING:
    from ._result import AuditResult

__all__ = ["render_report", "CSP"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

#: Most rows shown in the exposure table and in each slice table.
MAX_ROWS = 25

_GAME_LABELS = [
    ("source", "Source"),
    ("dataset", "Dataset"),
    ("model", "Model"),
    ("seed", "Seed"),
    ("n_examples", "Examples audited"),
    ("n_members", "Members"),
    ("n_nonmembers", "Non-members"),
    ("n_classes", "Classes"),
    ("n_queries", "Queries per example"),
    ("n_references", "Reference models"),
    ("n_targets", "Target models"),
    ("train_accuracy", "Train accuracy"),
    ("test_accuracy", "Test accuracy"),
    ("generalisation_gap", "Generalisation gap"),
]
_PCT_KEYS = {"train_accuracy", "test_accuracy", "generalisation_gap"}

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("miaudit.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _cell(v: Any) -> str:
    """Plain-text rendering of one table value (escaped later by Jinja)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return "n/a"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "n/a"
        if f.is_integer() and abs(f) < 1e15:
            return str(int(f))
        return f"{f:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_cell(x) for x in v) + "]"
    return str(v)


def _game_value(key: str, v: Any) -> str:
    if key in _PCT_KEYS and _num(v) is not None:
        return f"{100 * float(v):.1f}%" if key != "generalisation_gap" else f"{100 * float(v):.1f} points"
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={_cell(x)}" for k, x in v.items())
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and key.startswith("n_"):
        return f"{int(v):,}"
    return _cell(v)


def _header(col: str) -> str:
    """'tpr@0.001' -> 'TPR @ 0.1% FPR', 'auc' -> 'AUC'; other names unchanged."""
    if col.startswith("tpr@") and _num(col[4:]) is not None:
        return f"TPR @ {fpr_label(float(col[4:]))} FPR"
    return {"auc": "AUC", "n_members": "members", "n_nonmembers": "non-members"}.get(col, col)


def _metric_cell(col: str, v: Any) -> str:
    x = _num(v) if not isinstance(v, str) else None
    if col.startswith(("tpr@", "ppv@")) and x is not None:
        return pct(x)
    if col == "auc" and x is not None:
        return f"{x:.3f}"
    return _cell(v)


def _frame_table(df: pd.DataFrame, *, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """Rows of ``df`` as (value, interval) string pairs; ``X``, ``X_ci_low``, ``X_ci_high`` merge into one cell."""
    shown = df.head(max_rows)
    cols = [str(c) for c in shown.columns]
    merged = {c for c in cols if f"{c}_ci_low" in cols and f"{c}_ci_high" in cols}
    hidden = {f"{c}_ci_low" for c in merged} | {f"{c}_ci_high" for c in merged}
    keep = [c for c in cols if c not in hidden]
    rows = []
    for rec in shown.to_dict(orient="records"):
        rec = {str(k): v for k, v in rec.items()}
        row = []
        for c in keep:
            ci = ""
            if c in merged and _num(rec[c]) is not None:
                lo, hi = _metric_cell(c, rec[f"{c}_ci_low"]), _metric_cell(c, rec[f"{c}_ci_high"])
                ci = f"[{lo}, {hi}]"
            row.append((_metric_cell(c, rec[c]), ci))
        rows.append(row)
    return {"columns": [_header(c) for c in keep], "rows": rows, "n_total": int(len(df))}


def _attack_description(name: str) -> str:
    try:
        from ..attacks import attack_class  # type: ignore[attr-defined]

        return str(getattr(attack_class(name), "description", "") or "")
    except Exception:  # unknown / not yet registered attacks simply get no description
        return ""


def _dp_context(result: "AuditResult") -> tuple[DpCurves | None, dict[str, Any] | None]:
    dp = result.game.get("dp")
    if not isinstance(dp, Mapping):
        return None, None
    eps, delta, mu = _num(dp.get("epsilon")), _num(dp.get("delta")), _num(dp.get("mu"))
    try:
        non_private = float(dp.get("epsilon")) == math.inf  # type: ignore[arg-type]
    except (TypeError, ValueError):
        non_private = False
    if non_private:
        return None, {"invalid": False, "non_private": True}
    if eps is None or delta is None or eps < 0 or not (0 <= delta < 1):
        return None, {"invalid": True, "non_private": False, "epsilon": _cell(dp.get("epsilon")), "delta": _cell(dp.get("delta"))}
    if mu is None and delta > 0:
        mu = gdp_mu_from_epsilon(eps, delta=delta)
    best_name, best_eps = None, 0.0
    for name, m in result.metrics.items():
        e = _num(m.get("epsilon_lower_bound"))
        if e is not None and (best_name is None or e > best_eps):
            best_name, best_eps = name, e
    ctx = {
        "invalid": False,
        "non_private": False,
        "epsilon": f"{eps:.3g}",
        "delta": f"{delta:.1e}",
        "mu": None if mu is None else f"{mu:.3g}",
        "empirical": f"{best_eps:.3g}",
        "empirical_attack": best_name,
        "violated": best_eps > eps,
        "roc_violations": dp_violations(
            result.metrics, result.fprs, epsilon=eps, delta=delta,
            confidence=_num(result.settings.get("confidence")) or 0.95,
        ),
        "extra": [(str(k), _cell(v)) for k, v in dp.items() if k not in ("epsilon", "delta", "mu")],
        "fraction": None if eps == 0 else f"{100 * best_eps / eps:.0f}%",
    }
    return DpCurves(epsilon=eps, delta=delta, mu=mu), ctx


def build_context(result: "AuditResult") -> dict[str, Any]:
    """Everything the template shows, as plain strings / lists (no markup)."""
    from .. import __version__

    game, metrics, settings = result.game, result.metrics, result.settings
    fprs = result.fprs
    verdict = make_verdict(metrics, settings, game)
    strongest = verdict.strongest
    dp_curves, dp_ctx = _dp_context(result)

    # --- summary table
    summary = []
    for name, m in metrics.items():
        auc = _num(m.get("auc"))
        ci = m.get("auc_ci") if isinstance(m.get("auc_ci"), (list, tuple)) else None
        lo, hi = (_num(ci[0]), _num(ci[1])) if ci and len(ci) == 2 else (None, None)
        tprs = []
        for f in fprs:
            t = tpr_figure(m, f, confidence=_num(settings.get("confidence")) or 0.95)
            tprs.append(
                {
                    "available": t.available,
                    "value": pct(t.tpr) if t.available else describe_tpr(t),
                    "ci": f"[{pct(t.ci_low)}, {pct(t.ci_high)}]" if t.ci_low is not None else "",
                    "pop_ci": (
                        f"pop. [{pct(t.target_ci_low)}, {pct(t.target_ci_high)}]"
                        if t.target_ci_low is not None and t.target_ci_high is not None
                        else ""
                    ),
                    "n": f"n={t.n_nonmembers:,}" if t.n_nonmembers is not None else "",
                    "above_chance": t.above_chance,
                    "reason": t.reason or "",
                }
            )
        eps = _num(m.get("epsilon_lower_bound"))
        sp = m.get("spread") if isinstance(m.get("spread"), Mapping) else None
        spread = None
        if sp:
            auc_sp = sp.get("auc") if isinstance(sp.get("auc"), Mapping) else {}
            tsp = sp.get("tpr_at_fpr") if isinstance(sp.get("tpr_at_fpr"), Mapping) else {}
            cells = [f"{_cell(auc_sp.get('mean'))} ± {_cell(auc_sp.get('std'))}"]
            for f in fprs:
                e = next((v for k, v in tsp.items() if _num(k) is not None and math.isclose(float(k), f)), None)
                e = e if isinstance(e, Mapping) else {}
                mean, std = _num(e.get("mean")), _num(e.get("std"))
                cells.append(f"{pct(mean)} ± {pct(std)}" if mean is not None else "n/a")
            spread = {"n_targets": _cell(sp.get("n_targets")), "cells": cells}
        summary.append(
            {
                "name": name,
                "description": _attack_description(name),
                "strongest": name == strongest,
                "auc": "n/a" if auc is None else f"{auc:.3f}",
                "auc_ci": f"[{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "",
                "tprs": tprs,
                "eps": "n/a" if eps is None else f"{eps:.3g}",
                "spread": spread,
            }
        )
    has_spread = any(r["spread"] for r in summary)

    # --- plots (need per-example scores with membership)
    sc = result.scores
    plots: dict[str, Any] = {"roc": None, "grid": None, "hist": None, "hist_name": None, "n_members": 0, "n_nonmembers": 0}
    if "is_member" in sc.columns and len(sc):
        is_member = sc["is_member"].to_numpy().astype(bool)
        n_mem, n_non = int(is_member.sum()), int((~is_member).sum())
        curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        points: dict[str, list[tuple[float, float, float, float]]] = {}
        for name in metrics:
            if name not in sc.columns or n_mem == 0 or n_non == 0:
                continue
            s = pd.to_numeric(sc[name], errors="coerce").to_numpy(dtype=np.float64)
            ok = np.isfinite(s)
            curves[name] = roc_points(is_member[ok], s[ok])
            pts = []
            for f in fprs:
                t = tpr_figure(metrics[name], f)
                if t.available:
                    pts.append((f, t.tpr, t.ci_low if t.ci_low is not None else t.tpr, t.ci_high if t.ci_high is not None else t.tpr))
            points[name] = pts  # type: ignore[assignment]
        if curves:
            plots["roc"] = plot_roc(curves, n_members=n_mem, n_nonmembers=n_non, highlight=strongest, dp=dp_curves)
            plots["grid"] = plot_roc_grid(curves, n_members=n_mem, n_nonmembers=n_non, points=points, dp=dp_curves)
        if strongest is not None and strongest in sc.columns:
            plots["hist"] = plot_score_histogram(
                pd.to_numeric(sc[strongest], errors="coerce").to_numpy(dtype=np.float64), is_member, name=strongest
            )
            plots["hist_name"] = strongest
        plots["n_members"], plots["n_nonmembers"] = n_mem, n_non
    plots["pooled"] = "target" in sc.columns

    # --- game
    game_rows = [(label, _game_value(k, game[k])) for k, label in _GAME_LABELS if k in game and game[k] is not None]
    known = {k for k, _ in _GAME_LABELS} | {"dp"}
    game_rows += [(str(k), _game_value(str(k), v)) for k, v in game.items() if k not in known and v is not None]
    settings_rows = [(str(k), _cell(v)) for k, v in settings.items()]

    exposures = None
    if result.exposures is not None and len(result.exposures):
        ex = result.exposures
        if "score" in ex.columns:
            ex = ex.sort_values("score", ascending=False, kind="mergesort")
        exposures = _frame_table(ex)

    dataset = game.get("dataset")
    return {
        "title": "Membership-inference audit" + (f": {dataset}" if dataset not in (None, "") else ""),
        "model": None if game.get("model") in (None, "") else str(game.get("model")),
        "created": result.created or "",
        "version": __version__,
        "csp": CSP,
        "verdict": verdict,
        "fpr_labels": [fpr_label(f) for f in fprs],
        "summary": summary,
        "has_spread": has_spread,
        "skipped": [(str(k), str(v)) for k, v in result.skipped.items()],
        "game_rows": game_rows,
        "settings_rows": settings_rows,
        "dp": dp_ctx,
        "plots": plots,
        "slices": [(str(k), _frame_table(v)) for k, v in result.slices.items()],
        "exposures": exposures,
        "max_rows": MAX_ROWS,
    }


def render_report(result: "AuditResult") -> str:
    """The full ``report.html`` text for ``result``."""
    return _ENV.get_template("report.html").render(**build_context(result))
