"""Render :class:`AuditResult` to one self-contained, offline, script-free HTML file.

Security: Jinja2 autoescaping is on for every value (dataset names, paths, feature names, group values,
attack names, model reprs are all user-controlled); the page carries a Content-Security-Policy that forbids
every fetch except inline ``data:`` images and inline styles, and contains no ``<script>`` and no URL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from ..metrics import gdp_mu_from_epsilon
from ._plots import DpCurves, plot_roc, plot_roc_grid, plot_score_histogram
from ._verdict import describe_tpr, fpr_label, make_verdict, pct

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
    ("n_models", "Models trained"),
    ("n_references", "Reference models per target"),
    ("n_targets", "Target models"),
    ("targets", "Target models evaluated (indices)"),
    ("pool_size", "Pool size (examples drawn for the game)"),
    ("train_accuracy", "Train accuracy"),
    ("test_accuracy", "Test accuracy"),
    ("generalisation_gap", "Generalisation gap"),
    ("reference_train_accuracy", "Reference models' train accuracy"),
    ("reference_test_accuracy", "Reference models' test accuracy"),
    ("strongest_attack", "Strongest attack"),
    ("bundle_path", "Signal bundle"),
    ("target_path", "Target model file"),
    ("target_model", "Target model"),
    ("reference_design", "Reference design"),
    ("path", "Data path"),
]
_PCT_KEYS = {"train_accuracy", "test_accuracy", "generalisation_gap", "reference_train_accuracy",
             "reference_test_accuracy"}
#: The settings rows of the game table: key -> label.
_SETTING_LABELS = {
    "fprs": "False-positive rates reported",
    "confidence": "Confidence of the intervals",
    "delta": "δ of the ε lower bound",
    "member_prior": "Member prior of the precision figures",
    "seed": "Seed (threshold selection, cross-fitting)",
}
_NEEDS_NON_MEMBERS = re.compile(
    r"(?:;\s*)?tpr@(?P<fpr>[0-9.e+-]+): needs at least (?P<need>\d+) non-members (?P<strata>in every one of the "
    r"\d+ strata \(targets x folds\) )?to resolve FPR <= [0-9.e+-]+; (?:have|the smallest has) \d+"
)


def _humanize(key: str) -> str:
    """A label for a key the report does not know: 'n_ref_models' -> 'Number of ref models'."""
    words = key.replace("_", " ").strip()
    if words.startswith("n "):
        words = "number of " + words[2:]
    return words[:1].upper() + words[1:]


def _setting_value(key: str, v: Any) -> str:
    if key == "fprs" and isinstance(v, (list, tuple)):
        return ", ".join(fpr_label(float(f)) for f in v)
    return _cell(v)

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
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and (key.startswith("n_") or key == "pool_size"):
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


def _slice_table(name: str, df: pd.DataFrame) -> tuple[dict[str, Any], str | None, str]:
    """A slice table without its repeated parts: (table, the attack whose scores it slices, one note).

    The ``attack`` column (one value) goes into the heading; the "needs at least N non-members" part of every
    row's ``note`` becomes one sentence under the table, and only what else a row's note says stays in it.
    """
    attack = None
    if "attack" in df.columns and df["attack"].nunique(dropna=False) == 1 and len(df):
        attack = str(df["attack"].iloc[0])
        df = df.drop(columns="attack")
    if "group" in df.columns and name not in df.columns:
        df = df.rename(columns={"group": name})
    needs: dict[float, tuple[int, bool]] = {}
    if "note" in df.columns:
        rest = []
        for note in df["note"].fillna("").astype(str):
            for m in _NEEDS_NON_MEMBERS.finditer(note):
                needs[float(m["fpr"])] = (int(m["need"]), bool(m["strata"]))
            rest.append(_NEEDS_NON_MEMBERS.sub("", note).strip().strip(";").strip())
        df = df.assign(note=rest)
        if not any(rest):
            df = df.drop(columns="note")
    parts = [f"at {fpr_label(f)} FPR at least {need:,} non-members{' in every target and fold' if strata else ''}"
             for f, (need, strata) in sorted(needs.items())]
    note = ""
    if parts:
        note = ("n/a: too few non-members in the slice to measure that FPR (a TPR needs " + "; ".join(parts)
                + "); the figure is not reported rather than guessed.")
    return _frame_table(df), attack, note


def _is_lm(game: Mapping[str, Any]) -> bool:
    model = game.get("model")
    return isinstance(model, Mapping) and model.get("kind") == "causal_lm"


def _attack_description(name: str, *, lm: bool = False) -> str:
    from ..attacks import attack_class, available_attacks

    if lm:  # language models: their own attacks (the reference game's keep the registry's descriptions)
        from ..attacks.lm import LM_ATTACKS

        if name in LM_ATTACKS:
            return str(LM_ATTACKS[name].description)
    if name not in available_attacks():
        return ""
    return str(getattr(attack_class(name), "description", "") or "")


def _dp_context(result: Any) -> tuple[DpCurves | None, dict[str, Any] | None]:
    dp = result.game.get("dp")
    if not isinstance(dp, Mapping):
        return None, None
    eps, delta, mu = _num(dp.get("epsilon")), _num(dp.get("delta")), _num(dp.get("mu"))
    try:
        non_private = float(dp.get("epsilon", "nan")) == math.inf
    except (TypeError, ValueError):
        non_private = False
    if non_private:
        return None, {"invalid": False, "non_private": True}
    if eps is None or delta is None or eps < 0 or not (0 <= delta < 1):
        return None, {"invalid": True, "non_private": False, "epsilon": _cell(dp.get("epsilon")), "delta": _cell(dp.get("delta"))}
    if mu is None and delta > 0:
        mu = gdp_mu_from_epsilon(eps, delta=delta)
    chk = result.dp_check
    ctx = {
        "invalid": False,
        "non_private": False,
        "epsilon": f"{eps:.3g}",
        "delta": f"{delta:.1e}",
        "mu": None if mu is None else f"{mu:.3g}",
        "relation": "add/remove one example" if chk is None or chk.neighbouring == "add_remove" else "replace one example",
        "game_epsilon": None if chk is None else f"{chk.game_epsilon:.3g}",
        "game_delta": None if chk is None else f"{chk.game_delta:.2g}",
        "empirical": "n/a" if chk is None or chk.bound is None else f"{chk.bound.value:.3g}",
        "empirical_attack": None if chk is None else chk.attack,
        "confidence": None if chk is None else f"{chk.confidence:.4g}",
        "violated": bool(chk is not None and chk.contradicted),
        "extra": [(str(k), _cell(v)) for k, v in dp.items() if k not in ("epsilon", "delta", "mu")],
    }
    return DpCurves(epsilon=eps, delta=delta, mu=mu), ctx


def _num(x: Any) -> float | None:
    """A finite float, or None for null / NaN / inf / non-numbers."""
    if isinstance(x, bool) or x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def build_context(result: Any) -> dict[str, Any]:
    """Everything the template shows, as plain strings / lists (no markup), from the typed result."""
    from .. import __version__

    game, metrics, settings = result.game, result.metrics, result.settings
    fprs = result.fprs
    verdict = make_verdict(result)
    strongest = verdict.strongest
    dp_curves, dp_ctx = _dp_context(result)

    # --- summary table (strongest first: the one ranking rule)
    summary = []
    for name in result.ranking:
        m = metrics[name]
        tprs = []
        for f in fprs:
            t = m.at(f)
            ok = t.tpr is not None
            tprs.append(
                {
                    "available": ok,
                    "value": pct(t.tpr) if ok else describe_tpr(t),
                    "ci": f"[{pct(t.ci_low)}, {pct(t.ci_high)}]" if ok and t.ci_low is not None else "",
                    "pop_ci": f"[{pct(t.target_ci_low)}, {pct(t.target_ci_high)}]" if ok else "",
                    "n": f"n={t.n_nonmembers:,}",
                    "above_chance": ok and t.target_ci_low is not None and t.target_ci_low > f,
                    "reason": t.reason or "",
                }
            )
        sp = result.spread.get(name)
        spread = None
        if sp:
            cells = [f"{_cell(sp['auc'].get('mean'))} ± {_cell(sp['auc'].get('std'))}"]
            for f in fprs:
                e = sp["tpr_at_fpr"].get(format(f, "g"), {})
                mean, std = _num(e.get("mean")), _num(e.get("std"))
                cells.append(f"{pct(mean)} ± {pct(std)}" if mean is not None else "n/a")
            spread = {"n_targets": _cell(sp.get("n_targets")), "cells": cells}
        summary.append(
            {
                "name": name,
                "description": _attack_description(name, lm=_is_lm(game)),
                "strongest": name == strongest,
                "auc": f"{m.auc:.3f}",
                "auc_ci": f"[{m.auc_ci[0]:.3f}, {m.auc_ci[1]:.3f}]",
                "tprs": tprs,
                "eps": f"{m.epsilon.value:.3g}",
                "spread": spread,
            }
        )
    has_spread = any(r["spread"] for r in summary)

    # --- plots: the ROC curves the metrics layer computed (never recomputed here)
    sc = result.scores
    plots: dict[str, Any] = {"roc": None, "grid": None, "hist": None, "hist_name": None, "n_members": 0, "n_nonmembers": 0}
    if metrics:
        first = next(iter(metrics.values()))
        n_mem, n_non = first.n_members, first.n_nonmembers
        curves = {name: (np.asarray(metrics[name].roc.fpr), np.asarray(metrics[name].roc.tpr)) for name in result.ranking}
        points = {
            name: [(f, t.tpr, t.target_ci_low, t.target_ci_high) for f in fprs
                   if (t := metrics[name].at(f)).tpr is not None]
            for name in result.ranking
        }
        plots["roc"] = plot_roc(curves, n_members=n_mem, n_nonmembers=n_non, highlight=strongest, dp=dp_curves)
        plots["grid"] = plot_roc_grid(curves, n_members=n_mem, n_nonmembers=n_non, points=points, dp=dp_curves)
        column = None if strongest is None else result.scores_column(strongest)
        if column is not None and "is_member" in sc.columns:
            plots["hist"] = plot_score_histogram(
                pd.to_numeric(sc[column], errors="coerce").to_numpy(dtype=np.float64),
                sc["is_member"].to_numpy().astype(bool), name=str(strongest),
            )
            plots["hist_name"] = strongest
        plots["n_members"], plots["n_nonmembers"] = n_mem, n_non
    plots["pooled"] = "target" in sc.columns

    # --- game
    game_rows = [(label, _game_value(k, game[k])) for k, label in _GAME_LABELS if k in game and game[k] is not None]
    known = {k for k, _ in _GAME_LABELS} | {"dp"}
    game_rows += [(_humanize(str(k)), _game_value(str(k), v)) for k, v in game.items() if k not in known and v is not None]
    settings_rows = [(_SETTING_LABELS.get(str(k), _humanize(str(k))), _setting_value(str(k), v))
                     for k, v in settings.to_dict().items()]

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
        "warnings": list(result.warnings),
        "fpr_labels": [fpr_label(f) for f in fprs],
        "summary": summary,
        "has_spread": has_spread,
        "skipped": [(str(k), str(v)) for k, v in result.skipped.items()],
        "game_rows": game_rows,
        "settings_rows": settings_rows,
        "dp": dp_ctx,
        "plots": plots,
        "slices": [(str(k), *_slice_table(str(k), v)) for k, v in result.slices.items()],
        "exposures": exposures,
        "max_rows": MAX_ROWS,
        "strongest": strongest,
        "blind": _blind_context(getattr(result, "baselines", None) or {}),
        "canaries": _canary_context(getattr(result, "canaries", None)),
    }


def _blind_context(baselines: Mapping[str, Any]) -> dict[str, str] | None:
    """Language-model audits: the blind baseline's line of the report (plain strings)."""
    b = baselines.get("blind")
    if not isinstance(b, Mapping):
        return None
    lo, hi = (b.get("auc_interval") or [None, None])[:2]
    auc = _num(b.get("auc"))
    return {"method": str(b.get("method", "")),
            "auc": "n/a" if auc is None else f"{auc:.3f}",
            "ci": "" if _num(lo) is None or _num(hi) is None else f"[{float(lo):.3f}, {float(hi):.3f}]",
            "p": _cell(b.get("p_value")), "significant": "yes: the sets differ without the model" if b.get("significant")
            else "no"}


def _canary_context(c: Any) -> dict[str, Any] | None:
    """Language-model audits: exposure and TPR of the inserted canaries per repetition count."""
    if not isinstance(c, Mapping):
        return None
    rows = []
    for rep, d in sorted(c.get("by_repetitions", {}).items(), key=lambda kv: int(kv[0])):
        t = (d.get("tpr_at_fpr") or {}).get("1%") or {}
        tpr = t.get("tpr")
        rows.append((str(rep), str(d.get("n_canaries")), f"{float(d.get('mean_exposure', math.nan)):.2f}",
                     _cell(d.get("auc")), "n/a" if tpr is None else pct(float(tpr))))
    return {"rows": rows, "candidates": str(c.get("candidates")), "max": f"{float(c.get('max_exposure', 0)):.2f}"}


def render_report(result: Any) -> str:
    """The full ``report.html`` text for ``result``."""
    return _ENV.get_template("report.html").render(**build_context(result))
