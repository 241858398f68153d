"""`AuditResult`: everything an audit produced, and its three outputs (results.json, scores.csv, report.html).

Results stay typed (:class:`~miaudit.metrics.AttackMetrics`, :class:`~miaudit.metrics.LeakageDecision`) until
:meth:`AuditResult.to_json` turns them into the results.json schema (``docs/results-schema.md``); the report
reads the typed objects, never the dicts. Output files are written atomically
(temporary name in the same folder, then ``os.replace``) so a crash never leaves a half-written file and
files already in the output folder are never deleted.
"""

from __future__ import annotations

import contextlib
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
from .._timing import RunClock
from ..metrics import AttackMetrics, AuditSettings, DpCheck, LeakageDecision, rank_attacks
from ._verdict import Verdict, make_verdict

__all__ = ["AuditResult", "SCHEMA_VERSION", "json_safe", "atomic_write"]

SCHEMA_VERSION = 2


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
    """The outcome of one audit (a demo, a scored bundle or a full game), typed until it is written.

    Attributes
    ----------
    game : dict
        Description of the game (results.json ``"game"``): source, dataset, model, seed, sizes, accuracies,
        the design's validity check, optional ``"dp": {"epsilon", "delta", ...}`` for DP-trained models.
    settings : AuditSettings
        ``delta``, ``confidence``, ``member_prior``, ``fprs``, ``seed``.
    metrics : dict[str, AttackMetrics]
        Attack name -> its figures (pooled over targets and folds as strata where there are several).
    scores : pandas.DataFrame
        One row per example (per target when several targets are pooled): ``index``, ``label``,
        ``is_member`` (if known), optional ``target``, ``group``, then one column per attack.
    decision : LeakageDecision or None
        The verdict's pre-declared test (None without membership ground truth).
    spread : dict[str, dict]
        Attack name -> mean and std of the per-target figures (pooled games only).
    skipped : dict[str, str]
        Attack name -> why it did not run.
    slices : dict[str, pandas.DataFrame]
        Slice kind (``"class"``, ``"group"``) -> one row per slice value (``slice_metrics`` output).
    exposures : pandas.DataFrame or None
        Most exposed records: ``index``, ``label``, ``score`` and IN/OUT statistics.
    warnings : list[str]
        Problems of the game that weaken the figures (e.g. references whose IN counts depend on membership).
    dp_check : DpCheck or None
        The empirical bound against the accountant's guarantee, at its delta and neighbouring relation.
    created : str or None
        ISO timestamp; None means "now" at serialisation time. Set it to make outputs byte-reproducible.
    baselines : dict
        Model-free baselines (language-model audits: ``{"blind": {...}}``, a text-only classifier's AUC and test;
        when ``significant`` the verdict refuses to call the model leaky). Written only when present.
    canaries : dict or None
        Inserted canaries' exposures and TPR at low FPR (language-model audits). Written only when present.
    run_clock : RunClock or None
        Wall seconds per phase of the run that produced the result (the CLI sets it; :meth:`save` adds the
        ``report`` phase): results.json ``"run"``. Written only when set.
    """

    game: dict[str, Any]
    settings: AuditSettings
    metrics: dict[str, AttackMetrics]
    scores: pd.DataFrame
    decision: LeakageDecision | None = None
    spread: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    slices: dict[str, pd.DataFrame] = field(default_factory=dict)
    exposures: pd.DataFrame | None = None
    warnings: list[str] = field(default_factory=list)
    dp_check: DpCheck | None = None
    created: str | None = None
    baselines: dict[str, Any] = field(default_factory=dict)
    canaries: dict[str, Any] | None = None
    run_clock: RunClock | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.settings, AuditSettings):
            self.settings = AuditSettings.coerce(self.settings)
        for name in ("game", "metrics", "skipped", "slices", "spread"):
            value = getattr(self, name)
            if not isinstance(value, Mapping):
                raise InputError(
                    f"AuditResult.{name}: expected a dict, got {type(value).__name__}; pass {{}} when there is nothing"
                )
        for attack, m in self.metrics.items():
            if not isinstance(m, AttackMetrics):
                raise InputError(
                    f"AuditResult.metrics[{attack!r}]: expected the attack's AttackMetrics (from "
                    f"miaudit.metrics.evaluate_scores), got {type(m).__name__}"
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

    # ------------------------------------------------------------------ derived
    @property
    def fprs(self) -> list[float]:
        """FPR levels of the run, ascending."""
        return sorted(self.settings.fprs)

    @property
    def ranking(self) -> list[str]:
        """Attack names, strongest first (:func:`miaudit.metrics.rank_attacks`, the one rule)."""
        return rank_attacks(self.metrics)

    @property
    def strongest(self) -> str | None:
        r = self.ranking
        return r[0] if r else None

    def verdict(self) -> Verdict:
        """The plain-language verdict of the report (and of results.json ``"verdict"``)."""
        return make_verdict(self)

    # ------------------------------------------------------------------ tables
    def metrics_table(self) -> pd.DataFrame:
        """One row per attack (index ``attack``, strongest first), numbers as floats (NaN where a figure is null).

        Columns: ``auc``, ``auc_low``, ``auc_high``, ``epsilon_lower_bound``; for every FPR level f in percent
        (e.g. ``tpr@0.1%``): the TPR and its population interval ``tpr@0.1%_low``, ``tpr@0.1%_high``;
        ``n_members``, ``n_nonmembers``, ``n_strata``. Every value is a fraction (TPR 0.05 = 5%).
        """
        rows = []
        for name in self.ranking:
            m = self.metrics[name]
            row: dict[str, Any] = {"attack": name, "auc": m.auc, "auc_low": m.auc_ci[0], "auc_high": m.auc_ci[1]}
            for f in self.fprs:
                t = m.at(f)
                k = f"tpr@{100 * f:g}%"
                row[k] = _f(t.tpr)
                row[f"{k}_low"] = _f(t.target_ci_low if t.tpr is not None else None)
                row[f"{k}_high"] = _f(t.target_ci_high if t.tpr is not None else None)
            row["epsilon_lower_bound"] = m.epsilon.value
            row["n_members"] = m.n_members
            row["n_nonmembers"] = m.n_nonmembers
            row["n_strata"] = m.n_strata
            rows.append(row)
        cols = ["attack", "auc", "auc_low", "auc_high"]
        for f in self.fprs:
            k = f"tpr@{100 * f:g}%"
            cols += [k, f"{k}_low", f"{k}_high"]
        cols += ["epsilon_lower_bound", "n_members", "n_nonmembers", "n_strata"]
        return pd.DataFrame(rows, columns=cols).set_index("attack").astype("float64")

    # ------------------------------------------------------------------ outputs
    def scores_column(self, name: str) -> str | None:
        """The column of :attr:`scores` (and scores.csv) holding attack ``name``'s scores, or None.

        The attack's name, except where that would misname the values: ``neg_loss`` holds the loss attack's
        score, minus the loss (also ``neg_entropy``, ``neg_modified_entropy``, ``neg_calibrated_loss``)."""
        from ..attacks.registry import score_column

        for col in (score_column(name), name):
            if col in self.scores.columns:
                return col
        return None

    def to_json(self) -> dict[str, Any]:
        """The results.json object (schema version 2, ``docs/results-schema.md``), JSON-safe, keys in a
        deterministic order: the same run gives byte-identical ``results.json`` apart from ``"created"`` and
        ``"run"`` (its timings, when :attr:`run_clock` is set)."""
        from .. import __version__

        created = self.created or _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        attacks = {}
        for name, m in self.metrics.items():
            d = m.to_dict()
            if name in self.spread:
                d["spread"] = self.spread[name]
            d["scores_column"] = self.scores_column(name)
            attacks[name] = d
        verdict = self.verdict()
        extra: dict[str, Any] = {}
        if self.baselines:
            extra["baselines"] = json_safe(self.baselines)
        if self.canaries:
            extra["canaries"] = json_safe(self.canaries)
        run = {} if self.run_clock is None else {"run": json_safe(self.run_clock.to_dict())}
        return {
            "schema_version": SCHEMA_VERSION,
            "miaudit_version": __version__,
            "created": created,
            **run,
            "verdict": json_safe(verdict.to_dict()),
            "warnings": list(self.warnings),
            "game": json_safe({**self.game, "strongest_attack": self.strongest}),
            "settings": json_safe(self.settings.to_dict()),
            "attacks": json_safe(attacks),
            "ranking": self.ranking,
            "dp_check": None if self.dp_check is None else json_safe(self.dp_check.to_dict()),
            "skipped": json_safe(self.skipped),
            "slices": {str(k): json_safe(v) for k, v in sorted(self.slices.items(), key=lambda kv: str(kv[0]))},
            **extra,
        }

    def to_json_bytes(self) -> bytes:
        """``results.json`` content: indented, strict JSON (no NaN), UTF-8, trailing newline."""
        return (json.dumps(self.to_json(), indent=2, allow_nan=False, ensure_ascii=False) + "\n").encode("utf-8")

    def to_html(self) -> str:
        """The self-contained ``report.html`` (inline PNG plots, no scripts, no network requests)."""
        from ._fonts import wait_font_cache

        wait_font_cache()  # a font-cache build started before training (the CLI's), so fonts are scanned once
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
        with self.run_clock.phase("report") if self.run_clock is not None else contextlib.nullcontext():
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
        results = self.to_json_bytes()  # last, so that its "run" has the report's time
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
