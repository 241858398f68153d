"""Levers: how training-set size, capacity, regularisation and DP-SGD move the membership risk.

A levers config is an audit config (see ``docs/config.md``) plus a ``[levers]`` section::

    [levers]
    mode = "one_at_a_time"        # or "grid" (every combination)
    repetitions = 1               # full games per point (seeds game.seed, game.seed + 1, ...)
    [levers.values]
    train_size = [250, 500, 800]  # examples each model trains on (pool = 2 x train_size)
    weight_decay = [0.0, 1e-3, 1e-1]

Every point runs the full game of :func:`miaudit.audit.run_audit` with the lever values
applied to the base config, and records utility (train/test accuracy, gap) and risk (the
strongest attack's AUC, TPR at the configured FPRs with intervals, the empirical epsilon lower
bound, and the accountant's epsilon for DP points). All points share one model cache, so adding
a value to a sweep trains only the new point's models, and a sweep killed half-way resumes: every
finished point is stored under ``<output.dir>/levers/points/`` the moment it finishes.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import ConfigError
from .._imports import config_folder_on_path
from ..audit import parse_budget, run_audit
from ..config import AuditConfig, read_config_file
from ..report import AuditResult, atomic_write, json_safe
from ..training import Execution

__all__ = ["LEVERS", "LeverSweep", "LeverResult", "parse_levers", "run_levers", "levers_table", "pareto_front"]

#: Named levers: name -> {model kind: dotted config path} ("*" = any kind). The value is
#: transformed by ``_TRANSFORMS`` where the config wants another form.
LEVERS: dict[str, dict[str, str]] = {
    "train_size": {"*": "game.pool_size"},
    "weight_decay": {"sklearn": "model.params.alpha", "torch": "model.weight_decay"},
    "hidden": {"sklearn": "model.params.hidden_layer_sizes", "torch": "model.model_kwargs.hidden"},
    "epochs": {"sklearn": "model.params.max_iter", "torch": "model.epochs"},
    "dropout": {"torch": "model.model_kwargs.dropout"},
    "label_smoothing": {"torch": "model.label_smoothing"},
    "early_stopping": {"sklearn": "model.params.early_stopping"},
    "max_depth": {"sklearn": "model.params.max_depth"},
    "dp_epsilon": {"torch": "model.dp"},
    "n_references": {"*": "game.n_references"},
}

_VALID_LEVER_KEYS = ("mode", "repetitions", "values", "risk")
_MODES = ("one_at_a_time", "grid")


@dataclass(frozen=True)
class LeverSweep:
    """A parsed ``[levers]`` section."""

    values: Mapping[str, tuple[Any, ...]]
    mode: str = "one_at_a_time"
    repetitions: int = 1
    #: risk figure used for the Pareto front and the default budget: "tpr@0.01" etc.
    risk: str = "tpr@0.01"

    def points(self) -> list[dict[str, Any]]:
        """The lever settings to run: every combination (grid) or one lever at a time around the
        base config (the other levers at the base config's own value)."""
        names = list(self.values)
        if self.mode == "grid":
            return [dict(zip(names, combo)) for combo in itertools.product(*(self.values[n] for n in names))]
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for name in names:
            for v in self.values[name]:
                pt = {name: v}
                key = json.dumps(pt, sort_keys=True, default=str)
                if key not in seen:
                    seen.add(key)
                    out.append(pt)
        return out


def parse_levers(section: Any, *, model_kind: str) -> LeverSweep:
    """Validate a ``[levers]`` table; raises one :class:`ConfigError` listing every problem."""
    problems: list[str] = []
    if not isinstance(section, Mapping):
        raise ConfigError("[levers]: missing; add a [levers] section with a [levers.values] table, e.g. "
                          "weight_decay = [0.0, 0.001]")
    for key in section:
        if key not in _VALID_LEVER_KEYS:
            problems.append(f"unknown key {key!r} in [levers]; valid keys: {', '.join(_VALID_LEVER_KEYS)}")
    mode = section.get("mode", "one_at_a_time")
    if mode not in _MODES:
        problems.append(f"[levers] mode: expected one of {', '.join(_MODES)}, got {mode!r}")
    reps = section.get("repetitions", 1)
    if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
        problems.append(f"[levers] repetitions: expected an integer >= 1, got {reps!r}")
    risk = section.get("risk", "tpr@0.01")
    if not isinstance(risk, str) or not (risk in ("auc", "epsilon_lower_bound", "advantage") or risk.startswith("tpr@")):
        problems.append(f"[levers] risk: expected auc, advantage, epsilon_lower_bound or tpr@FPR, got {risk!r}")
    values = section.get("values")
    parsed: dict[str, tuple[Any, ...]] = {}
    if not isinstance(values, Mapping) or not values:
        problems.append("[levers.values]: expected a table of lever = [values], e.g. weight_decay = [0.0, 0.001]")
    else:
        for name, vals in values.items():
            if name not in LEVERS and "." not in name:
                problems.append(
                    f"[levers.values] unknown lever {name!r}; valid levers: {', '.join(LEVERS)} "
                    "(or a dotted config path such as model.params.max_depth)"
                )
                continue
            if name in LEVERS and model_kind not in LEVERS[name] and "*" not in LEVERS[name]:
                kinds = ", ".join(LEVERS[name])
                problems.append(f"[levers.values] lever {name!r} applies to model kind(s) {kinds}, not {model_kind!r}")
                continue
            if not isinstance(vals, list) or not vals:
                problems.append(f"[levers.values] {name}: expected a non-empty list of values, got {vals!r}")
                continue
            parsed[name] = tuple(_normalise_value(name, v) for v in vals)
    if problems:
        raise ConfigError("levers config: " + "; ".join(problems))
    return LeverSweep(values=parsed, mode=mode, repetitions=reps, risk=risk)


def _normalise_value(name: str, v: Any) -> Any:
    if name == "dp_epsilon" and isinstance(v, str) and v.lower() in ("inf", "infinity", "none"):
        return math.inf
    return v


def _set_path(d: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    if value is _DELETE:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value


_DELETE = object()


def apply_levers(base: Mapping[str, Any], point: Mapping[str, Any], *, model_kind: str) -> dict[str, Any]:
    """A copy of the raw config dict ``base`` with the lever values of ``point`` applied."""
    d = copy.deepcopy(dict(base))
    for name, value in point.items():
        if name not in LEVERS:
            _set_path(d, name, value)
            continue
        path = LEVERS[name].get(model_kind) or LEVERS[name]["*"]
        if name == "train_size":
            value = 2 * int(value)
        elif name == "hidden":
            value = [int(h) for h in value] if isinstance(value, list) else [int(value)]
        elif name == "dp_epsilon":
            if value is None or (isinstance(value, float) and math.isinf(value)):
                value = _DELETE
            else:
                dp = dict(d.get("model", {}).get("dp") or {})
                dp.pop("noise_multiplier", None)
                dp["epsilon"] = float(value)
                dp.setdefault("delta", 1e-5)
                dp.setdefault("max_grad_norm", 1.0)
                value = dp
        _set_path(d, path, value)
    return d


#: Bumped whenever what a point measures changes for the same config (v2: models in complementary
#: pairs with the target's partner left out of its references), so stale stored points are not reused.
POINT_FORMAT = 3  # 3: n_references counts references per target; typed metrics, population intervals


def _point_key(config: Mapping[str, Any]) -> str:
    from .. import __version__

    blob = json.dumps({"config": config, "format": POINT_FORMAT, "miaudit": __version__},
                      sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"))


def _risk_row(result: AuditResult, fprs: Sequence[float]) -> dict[str, Any]:
    """Utility and the strongest attack's risk figures from one audit result (typed metrics)."""
    g = result.game
    dp = g.get("dp") if isinstance(g.get("dp"), Mapping) else None
    row: dict[str, Any] = {
        "train_accuracy": g.get("train_accuracy"),
        "test_accuracy": g.get("test_accuracy"),
        "generalisation_gap": g.get("generalisation_gap"),
        "n_nonmembers": g.get("n_nonmembers"),
        "accountant_epsilon": None if dp is None else dp.get("epsilon"),
    }
    metrics = result.metrics
    best = result.strongest
    if best is None:
        return row
    m = metrics[best]
    row["strongest_attack"] = best
    row["auc"] = max(v.auc for v in metrics.values())
    row["advantage"] = max(v.advantage for v in metrics.values())
    row["epsilon_lower_bound"] = max(v.epsilon.value for v in metrics.values())
    row["leakage_detected"] = None if result.decision is None else result.decision.leakage_detected
    for f in fprs:
        key = format(f, "g")
        t = m.at(f)
        row[f"tpr@{key}"] = t.tpr
        row[f"tpr@{key}_ci_low"] = t.target_ci_low if t.tpr is not None else None
        row[f"tpr@{key}_ci_high"] = t.target_ci_high if t.tpr is not None else None
    return row


@dataclass
class LeverResult:
    """The sweep's table (one row per point and repetition) and what it takes to report it."""

    table: pd.DataFrame
    sweep: LeverSweep
    base: dict[str, Any]
    fprs: tuple[float, ...]
    budget: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean over repetitions, one row per lever setting."""
        levers = [c for c in self.table.columns if c.startswith("lever:")]
        numeric = [c for c in self.table.columns if c not in levers and pd.api.types.is_numeric_dtype(self.table[c])
                   and c not in ("repetition", "seed")]
        keys = [json.dumps([None if _missing(v) else v for v in row], default=str)
                for row in self.table[levers].itertuples(index=False)]
        keyed = self.table.assign(_key=keys)
        agg = keyed.groupby("_key", sort=False)[numeric].mean(numeric_only=True)
        first = keyed.groupby("_key", sort=False)[levers].first()
        out = first.join(agg).reset_index(drop=True)
        out["repetitions"] = keyed.groupby("_key", sort=False).size().to_numpy()
        out["pareto"] = pareto_front(out, risk=self.risk_column())
        return out

    def risk_column(self) -> str:
        risk = self.sweep.risk
        if risk.startswith("tpr@"):
            return "tpr@" + format(float(risk[4:]), "g")
        return risk

    def recommendations(self, budget: str | None = None) -> pd.DataFrame:
        """Settings that meet ``budget`` (``METRIC=VALUE``), best test accuracy first."""

        budget = budget or self.budget
        summ = self.summary()
        if not budget:
            return summ.iloc[0:0]
        b = parse_budget(budget)
        col = "tpr@" + format(b.fpr, "g") if b.metric == "tpr" else (
            "epsilon_lower_bound" if b.metric == "epsilon" else b.metric)
        if col not in summ.columns:
            return summ.iloc[0:0]
        ok = summ[summ[col].notna() & (summ[col] <= b.limit)]
        return ok.sort_values("test_accuracy", ascending=False, kind="stable")

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``levers.csv``, ``levers.json`` and ``levers.html`` (each atomically)."""
        from ._html import render_levers_html

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"levers.csv": out / "levers.csv", "levers.json": out / "levers.json",
                 "levers.html": out / "levers.html"}
        _atomic_write_text(paths["levers.csv"], self.table.to_csv(index=False))
        _atomic_write_text(paths["levers.json"], json.dumps(self.to_json(), indent=2, sort_keys=False))
        _atomic_write_text(paths["levers.html"], render_levers_html(self))
        return paths

    def to_json(self) -> dict[str, Any]:
        """The ``levers.json`` object (JSON-safe: NaN/inf -> null, numpy -> Python; column order kept)."""
        out: dict[str, Any] = json_safe({
            "schema_version": 1,
            "levers": dict(self.sweep.values),
            "mode": self.sweep.mode,
            "repetitions": self.sweep.repetitions,
            "risk": self.sweep.risk,
            "budget": self.budget,
            "fprs": list(self.fprs),
            "points": self.table,
            "summary": self.summary(),
            "recommended": self.recommendations(),
        }, sort_keys=False)
        return out


def pareto_front(df: pd.DataFrame, *, risk: str, utility: str = "test_accuracy") -> np.ndarray:
    """Boolean mask of the rows no other row beats on both lower ``risk`` and higher ``utility``."""
    r = pd.to_numeric(df.get(risk), errors="coerce").to_numpy(dtype=float) if risk in df else np.full(len(df), np.nan)
    u = pd.to_numeric(df.get(utility), errors="coerce").to_numpy(dtype=float) if utility in df else np.full(len(df), np.nan)
    mask = np.zeros(len(df), dtype=bool)
    for i in range(len(df)):
        if not (np.isfinite(r[i]) and np.isfinite(u[i])):
            continue
        dominated = np.any((r <= r[i]) & (u >= u[i]) & ((r < r[i]) | (u > u[i])) & np.isfinite(r) & np.isfinite(u))
        mask[i] = not dominated
    return mask


def run_levers(
    config: str | Path | Mapping[str, Any],
    *,
    jobs: int | None = None,
    progress: Callable[..., Any] | None = None,
    budget: str | None = None,
    out_dir: str | Path | None = None,
    on_point: Callable[[dict[str, Any]], None] | None = None,
    executor: str | Execution | None = None,
) -> LeverResult:
    """Run every point of a levers sweep and return the table (see module docstring).

    ``executor`` (default: the config's ``[execution]``) trains every point's models; it never changes a
    figure.

    ``config`` is the path of a TOML/YAML levers config or its parsed dict (relative paths then
    resolve against the current folder). Finished points are stored under
    ``<out_dir or output.dir>/levers/points`` and reused on a re-run.
    """
    if isinstance(config, (str, Path)):
        folder = Path(config).expanduser().resolve().parent
        with config_folder_on_path(folder):  # an estimator module next to the config imports (workers too)
            return _run_levers(read_config_file(config), folder, jobs=jobs, progress=progress, budget=budget,
                               out_dir=out_dir, on_point=on_point, executor=executor)
    return _run_levers(copy.deepcopy(dict(config)), Path.cwd(), jobs=jobs, progress=progress, budget=budget,
                       out_dir=out_dir, on_point=on_point, executor=executor)


def _run_levers(raw: Any, base_dir: Path, *, jobs: int | None, progress: Callable[..., Any] | None,
                budget: str | None, out_dir: str | Path | None,
                on_point: Callable[[dict[str, Any]], None] | None,
                executor: str | Execution | None = None) -> LeverResult:
    if budget is not None:
        parse_budget(budget)
    lever_section = raw.pop("levers", None)
    model_kind = str((raw.get("model") or {}).get("kind", "sklearn"))
    sweep = parse_levers(lever_section, model_kind=model_kind)
    base_cfg = AuditConfig.from_dict(raw, base_dir=base_dir)  # validates the base before any training
    out = Path(out_dir) if out_dir is not None else Path(base_cfg.output.dir)
    points_dir = out / "levers" / "points"
    fprs = tuple(base_cfg.metrics.fprs)
    base_seed = base_cfg.game.seed

    # Validate every point's config before training anything.
    plans = []
    for point in sweep.points():
        for rep in range(sweep.repetitions):
            d = apply_levers(raw, point, model_kind=model_kind)
            d.setdefault("game", {})["seed"] = base_seed + rep
            d.setdefault("output", {})["run_dir"] = str(Path(base_cfg.output.run_dir))
            cfg = AuditConfig.from_dict(d, base_dir=base_dir)
            plans.append((point, rep, d, cfg))

    rows = []
    for i, (point, rep, _, cfg) in enumerate(plans):
        key = _point_key(cfg.to_dict())
        cached = points_dir / f"{key}.json"
        if cached.exists():
            measured = json.loads(cached.read_text(encoding="utf-8"))
        else:
            result = run_audit(cfg, jobs=jobs, progress=progress, executor=executor)
            measured = _risk_row(result, fprs)
            _atomic_write_text(cached, json.dumps(measured, default=_jsonable))
        # The stored figures belong to the config, not to a label: two settings that give the same
        # config (a lever at its base value) share them, each under its own label.
        row = {f"lever:{k}": _jsonable(v) for k, v in point.items()}
        row.update({"repetition": rep, "seed": base_seed + rep, "point": key})
        row.update(measured)
        rows.append(row)
        if on_point is not None:
            on_point({"index": i + 1, "total": len(plans), "row": row})
    table = pd.DataFrame(rows)
    return LeverResult(table=table, sweep=sweep, base=raw, fprs=fprs, budget=budget,
                       meta={"n_points": len(plans), "out_dir": str(out)})


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return v


def levers_table(config: str | Path | Mapping[str, Any], **kwargs: Any) -> pd.DataFrame:
    """Run a sweep and return its table as a pandas DataFrame (one row per point and repetition)."""
    return run_levers(config, **kwargs).table
