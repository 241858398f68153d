"""`AuditResult`: everything an audit produced, and its three outputs (results.json, scores.csv, report.html).

The per-attack metric dicts follow the results.json schema of ``docs/DESIGN.md`` / ``docs/results-schema.md``
(they come from ``miaudit.metrics.evaluate_scores(...).to_dict()``). Output files are written atomically
(temporary name in the same folder, then ``os.replace``) so a crash never leaves a half-written file and
files already in the output folder are never deleted.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._atomic import atomic_write
from .._errors import InputError
from ..metrics import fpr_key as _fkey
from ._verdict import fpr_keys, tpr_figure

__all__ = ["AuditResult", "SCHEMA_VERSION", "json_safe", "atomic_write"]

SCHEMA_VERSION = 1


def json_safe(obj: Any, *, sort_keys: bool = True) -> Any:
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts and that serialises identically.

    NaN/inf -> None; numpy scalars/arrays -> Python numbers/lists; tuples/sets -> lists; Path, datetime and
    other objects -> ``str``; dict keys -> ``str``; DataFrames -> list of row records. With ``sort_keys`` every
    dict is rebuilt in sorted key order, so the same content always gives the same bytes.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, Mapping):
        items = [(_key(k), json_safe(v, sort_keys=sort_keys)) for k, v in obj.items()]
        if sort_keys:
            items.sort(key=lambda kv: kv[0])
        return dict(items)
    if isinstance(obj, pd.DataFrame):
        return [json_safe(r, sort_keys=sort_keys) for r in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series):
        return json_safe(obj.tolist(), sort_keys=sort_keys)
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist(), sort_keys=sort_keys)
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, sort_keys=sort_keys) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((json_safe(v, sort_keys=sort_keys) for v in obj), key=repr)
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, (float, np.floating)):
        return repr(float(k))
    return str(k)




def _check_frame(name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, pd.DataFrame):
        raise InputError(
            f"{name}: expected a pandas DataFrame{' or None' if allow_none else ''}, got {type(value).__name__}; "
            "build it with pandas.DataFrame(...)"
        )


@dataclass
class AuditResult:
    """The outcome of one audit (a demo, a scored bundle or a full game).

    Attributes
    ----------
    game : dict
        Description of the game (results.json ``"game"``): source, dataset, model, seed, sizes, accuracies,
        optional ``"dp": {"epsilon", "delta", ...}`` for DP-trained models.
    settings : dict
        ``delta``, ``confidence``, ``member_prior``, ``fprs``.
    metrics : dict[str, dict]
        Attack name -> ``AttackMetrics.to_dict()`` (results.json schema), possibly with ``"spread"``.
    scores : pandas.DataFrame
        One row per example (per target when several targets are pooled): ``index``, ``label``,
        ``is_member`` (if known), optional ``target``, ``group``, then one column per attack.
    skipped : dict[str, str]
        Attack name -> why it did not run.
    slices : dict[str, pandas.DataFrame]
        Slice kind (``"class"``, ``"group"``) -> one row per slice value (``slice_metrics`` output).
    exposures : pandas.DataFrame or None
        Most exposed records: ``index``, ``label``, ``score`` and IN/OUT statistics (feature columns only if
        the caller added them).
    created : str or None
        ISO timestamp; None means "now" at serialisation time. Set it to make outputs byte-reproducible.
    """

    game: dict[str, Any]
    settings: dict[str, Any]
    metrics: dict[str, dict[str, Any]]
    scores: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    slices: dict[str, pd.DataFrame] = field(default_factory=dict)
    exposures: pd.DataFrame | None = None
    created: str | None = None

    def __post_init__(self) -> None:
        for name in ("game", "settings", "metrics", "skipped", "slices"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise InputError(
                    f"AuditResult.{name}: expected a dict, got {type(value).__name__}; pass {{}} when there is nothing"
                )
        for attack, m in self.metrics.items():
            if not isinstance(m, Mapping):
                raise InputError(
                    f"AuditResult.metrics[{attack!r}]: expected the attack's metrics dict "
                    f"(evaluate_scores(...).to_dict()), got {type(m).__name__}"
                )
        _check_frame("AuditResult.scores", self.scores)
        for kind, frame in self.slices.items():
            _check_frame(f"AuditResult.slices[{kind!r}]", frame)
        _check_frame("AuditResult.exposures", self.exposures, allow_none=True)
        if "is_member" in self.scores.columns and self.scores["is_member"].isna().any():
            raise InputError(
                "AuditResult.scores['is_member']: expected True/False for every row, got missing values; "
                "drop the column when membership is unknown"
            )

    # ------------------------------------------------------------------ tables
    @property
    def fprs(self) -> list[float]:
        """FPR levels of the run, ascending."""
        return fpr_keys(self.metrics, self.settings)

    def metrics_table(self) -> pd.DataFrame:
        """One row per attack (index ``attack``), numbers as floats (NaN where a figure is null).

        Columns: ``auc``, ``auc_ci_low``, ``auc_ci_high``, ``balanced_accuracy``, ``advantage``; for every
        FPR level f (e.g. ``0.001``): ``tpr@f``, ``tpr@f_ci_low``, ``tpr@f_ci_high``, ``n_nonmembers@f``;
        ``n_members``, ``n_nonmembers``, ``epsilon_lower_bound``; when any attack has a spread across
        targets: ``n_targets``, ``auc_mean``, ``auc_std``, ``tpr@f_mean``, ``tpr@f_std``.
        """
        fprs = self.fprs
        has_spread = any(isinstance(m.get("spread"), Mapping) for m in self.metrics.values())
        rows = []
        for name, m in self.metrics.items():
            auc_ci = m.get("auc_ci") if isinstance(m.get("auc_ci"), (list, tuple)) else (None, None)
            row: dict[str, Any] = {
                "attack": name,
                "auc": _f(m.get("auc")),
                "auc_ci_low": _f(auc_ci[0] if len(auc_ci) == 2 else None),
                "auc_ci_high": _f(auc_ci[1] if len(auc_ci) == 2 else None),
                "balanced_accuracy": _f(m.get("balanced_accuracy")),
                "advantage": _f(m.get("advantage")),
            }
            for f in fprs:
                t = tpr_figure(m, f)
                k = _fkey(f)
                row[f"tpr@{k}"] = _f(t.tpr)
                row[f"tpr@{k}_ci_low"] = _f(t.ci_low)
                row[f"tpr@{k}_ci_high"] = _f(t.ci_high)
                row[f"n_nonmembers@{k}"] = _f(t.n_nonmembers)
            row["n_members"] = _f(m.get("n_members"))
            row["n_nonmembers"] = _f(m.get("n_nonmembers"))
            row["epsilon_lower_bound"] = _f(m.get("epsilon_lower_bound"))
            if has_spread:
                sp = m.get("spread") if isinstance(m.get("spread"), Mapping) else {}
                row["n_targets"] = _f(sp.get("n_targets"))
                auc_sp = sp.get("auc") if isinstance(sp.get("auc"), Mapping) else {}
                row["auc_mean"] = _f(auc_sp.get("mean"))
                row["auc_std"] = _f(auc_sp.get("std"))
                tsp = sp.get("tpr_at_fpr") if isinstance(sp.get("tpr_at_fpr"), Mapping) else {}
                for f in fprs:
                    k = _fkey(f)
                    entry = next((v for kk, v in tsp.items() if _same(kk, f)), None)
                    entry = entry if isinstance(entry, Mapping) else {}
                    row[f"tpr@{k}_mean"] = _f(entry.get("mean"))
                    row[f"tpr@{k}_std"] = _f(entry.get("std"))
            rows.append(row)
        cols = ["attack", "auc", "auc_ci_low", "auc_ci_high", "balanced_accuracy", "advantage"]
        for f in fprs:
            k = _fkey(f)
            cols += [f"tpr@{k}", f"tpr@{k}_ci_low", f"tpr@{k}_ci_high", f"n_nonmembers@{k}"]
        cols += ["n_members", "n_nonmembers", "epsilon_lower_bound"]
        if has_spread:
            cols += ["n_targets", "auc_mean", "auc_std"]
            for f in fprs:
                cols += [f"tpr@{_fkey(f)}_mean", f"tpr@{_fkey(f)}_std"]
        table = pd.DataFrame(rows, columns=cols).set_index("attack")
        return table.astype("float64")

    # ------------------------------------------------------------------ outputs
    def to_json(self) -> dict[str, Any]:
        """The results.json object (schema version 1), JSON-safe, keys in a deterministic order.

        Top-level keys in schema order; below them every dict is sorted by key, so the same run gives
        byte-identical ``results.json`` apart from ``"created"``.
        """
        from .. import __version__

        created = self.created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return {
            "schema_version": SCHEMA_VERSION,
            "miaudit_version": __version__,
            "created": created,
            "game": json_safe(self.game),
            "settings": json_safe(self.settings),
            "attacks": json_safe(self.metrics),
            "skipped": json_safe(self.skipped),
            "slices": {str(k): json_safe(v) for k, v in sorted(self.slices.items(), key=lambda kv: str(kv[0]))},
        }

    def to_json_bytes(self) -> bytes:
        """``results.json`` content: indented, strict JSON (no NaN), UTF-8, trailing newline."""
        return (json.dumps(self.to_json(), indent=2, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")

    def to_html(self) -> str:
        """The self-contained ``report.html`` (inline PNG plots, no scripts, no network requests)."""
        from ._html import render_report

        return render_report(self)

    def save(self, out_dir: str | os.PathLike[str], *, scores_format: str = "csv") -> dict[str, Path]:
        """Write ``results.json``, ``scores.csv`` (or ``scores.parquet``) and ``report.html`` into ``out_dir``.

        Everything is rendered in memory first, then each file is written atomically; other files in
        ``out_dir`` are left alone. Returns ``{"results": path, "scores": path, "report": path}``.
        """
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise InputError(f"out_dir: expected a folder, got the existing file {str(out)!r}; choose another --out")
        if scores_format not in ("csv", "parquet"):
            raise InputError(f"scores_format: expected 'csv' or 'parquet', got {scores_format!r}")
        results = self.to_json_bytes()
        html = self.to_html().encode("utf-8")
        if scores_format == "csv":
            scores_bytes = self.scores.to_csv(index=False, lineterminator="\n").encode("utf-8")
        else:
            from .._errors import import_optional

            import_optional("pyarrow", "parquet")
            import io

            buf = io.BytesIO()
            self.scores.to_parquet(buf, index=False)
            scores_bytes = buf.getvalue()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"out_dir: cannot create folder {str(out)!r} ({exc}); choose a writable --out") from exc
        return {
            "results": atomic_write(out / "results.json", results),
            "scores": atomic_write(out / f"scores.{scores_format}", scores_bytes),
            "report": atomic_write(out / "report.html", html),
        }


def _f(x: Any) -> float:
    if x is None or isinstance(x, bool):
        return math.nan
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _same(k: Any, f: float) -> bool:
    try:
        return math.isclose(float(k), f, rel_tol=1e-9)
    except (TypeError, ValueError):
        return False
