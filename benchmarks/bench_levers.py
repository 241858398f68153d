"""Benchmark: levers sweeps (issue 6), how training-set size, weight decay, DP-SGD and epochs move the risk.

Runs :func:`miaudit.levers.run_levers` (the engine of ``miaudit levers``) on a levers config from
``benchmarks/configs/`` and writes, under ``--results`` (default ``benchmarks/results/``):

* ``levers_<name>.md``: the per-setting table (utility, the strongest attack's AUC / TPR with intervals,
  empirical epsilon lower bound, accountant epsilon, Pareto flag), the settings meeting ``--budget``, and a
  check of the known directions (more data and DP lower the risk; capacity and epochs raise it);
* ``levers_<name>.csv``: the raw table (one row per setting and repetition);
* ``levers_<name>_<lever>.png`` (risk and test accuracy against each lever) and ``levers_<name>_pareto.png``
  (risk vs test accuracy, Pareto front marked), decoded from the report's PNG data URIs.

Configs::

    nice python benchmarks/bench_levers.py --config benchmarks/configs/levers_adult.toml
    nice python benchmarks/bench_levers.py --config benchmarks/configs/levers_mnist.toml

``--data PATH`` overrides ``[data] path`` (adult.csv or the MNIST folder). Models and finished points are
cached under the config's ``[output]`` folders (``/work/bench-runs/levers``), so a rerun only re-renders.
"""

from __future__ import annotations

import argparse
import base64
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: Expected sign of d(risk)/d(lever): -1 = the risk should fall as the lever grows.
EXPECTED = {"train_size": -1, "weight_decay": -1, "dp_epsilon": +1, "epochs": +1, "hidden": +1,
            "n_references": 0}


def _num(v):
    if isinstance(v, str) and v.lower() in ("inf", "infinity"):
        return math.inf
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan


def _f(v, pct=False):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{100 * v:.2f}" if pct else f"{v:.3f}"


def _ci(row, col):
    lo, hi = row.get(f"{col}_ci_low"), row.get(f"{col}_ci_high")
    if lo is None or hi is None or not np.isfinite(lo) or not np.isfinite(hi):
        return ""
    return f" [{100 * lo:.2f}, {100 * hi:.2f}]"


def markdown_table(summ: pd.DataFrame, levers: list[str]) -> str:
    head = [*levers, "train acc", "test acc", "gap", "strongest", "AUC", "TPR@0.1% (%)", "TPR@1% (%) [CI]",
            "TPR@10% (%)", "eps LB", "accountant eps", "Pareto"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in summ.iterrows():
        acc_eps = r.get("accountant_epsilon")
        cells = [("(base)" if pd.isna(r[f"lever:{lv}"]) else str(r[f"lever:{lv}"])) for lv in levers] + [
            _f(r.get("train_accuracy")), _f(r.get("test_accuracy")), _f(r.get("generalisation_gap")),
            str(r.get("strongest_attack", "")), _f(r.get("auc")), _f(r.get("tpr@0.001"), True),
            _f(r.get("tpr@0.01"), True) + _ci(r, "tpr@0.01"), _f(r.get("tpr@0.1"), True),
            _f(r.get("epsilon_lower_bound")),
            "" if acc_eps is None or not np.isfinite(_num(acc_eps)) else f"{_num(acc_eps):.2f}",
            "yes" if r.get("pareto") else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def directions(summ: pd.DataFrame, levers: list[str], risk_cols: list[str]) -> str:
    """For each lever, compare the risk at its smallest and largest value with the other levers held fixed."""
    out = []
    for lv in levers:
        sign = EXPECTED.get(lv)
        sub = summ[summ[f"lever:{lv}"].notna()]  # one-at-a-time sweeps: only the rows that set this lever
        others = [o for o in levers if o != lv and sub[f"lever:{o}"].notna().any()]
        groups = [(None, sub)] if not others else list(sub.groupby([sub[f"lever:{o}"].astype(str) for o in others],
                                                                   sort=False))
        for gkey, g in groups:
            x = g[f"lever:{lv}"].map(_num).to_numpy(float)
            if len(x) < 2:
                continue
            lo, hi = g.iloc[int(np.argmin(x))], g.iloc[int(np.argmax(x))]
            where = "" if gkey is None else " at " + ", ".join(
                f"{o}={v}" for o, v in zip(others, gkey if isinstance(gkey, tuple) else (gkey,)))
            parts = []
            for col in risk_cols:
                a, b = _num(lo.get(col)), _num(hi.get(col))
                if not (np.isfinite(a) and np.isfinite(b)):
                    parts.append(f"{col} n/a")
                    continue
                d = b - a
                if not sign:
                    ok = ""
                elif d == 0:
                    ok = " (flat)"
                else:
                    ok = " (expected)" if np.sign(d) == sign else " (OPPOSITE of expected)"
                scale = 100 if col.startswith("tpr") else 1
                parts.append(f"{col} {scale * a:.3g} -> {scale * b:.3g}{ok}")
            acc = f"test acc {_num(lo.get('test_accuracy')):.3f} -> {_num(hi.get('test_accuracy')):.3f}"
            out.append(f"- {lv} {lo[f'lever:{lv}']} -> {hi[f'lever:{lv}']}{where}: " + "; ".join(parts) + f"; {acc}")
    return "\n".join(out) + "\n"


def save_png(data_uri: str, path: Path) -> int:
    prefix = "data:image/png;base64,"
    if not data_uri.startswith(prefix):
        raise ValueError(f"expected a PNG data URI, got {data_uri[:40]!r}")
    raw = base64.b64decode(data_uri[len(prefix):])
    path.write_bytes(raw)
    return len(raw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="levers config (TOML/YAML), e.g. benchmarks/configs/levers_adult.toml")
    ap.add_argument("--data", default=None, help="override [data] path (adult.csv or the MNIST folder)")
    ap.add_argument("--budget", default="tpr@0.01=0.05")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--name", default=None, help="results name (default: the config's stem without 'levers_')")
    ap.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()

    from miaudit.report._levers import plot_lever, plot_pareto

    from miaudit.config import read_config_file
    from miaudit.levers import run_levers

    cfg_path = Path(args.config).resolve()
    raw = read_config_file(cfg_path)
    if args.data:
        raw.setdefault("data", {})["path"] = str(Path(args.data).resolve())
    # run_levers resolves relative paths of a dict against the cwd: make the config's own paths absolute
    for sec, key in (("data", "path"), ("output", "dir"), ("output", "run_dir")):
        v = (raw.get(sec) or {}).get(key)
        if v and not Path(v).is_absolute():
            raw[sec][key] = str((cfg_path.parent / v).resolve())
    name = args.name or cfg_path.stem.replace("levers_", "")
    res_dir = Path(args.results)
    res_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    times: list[str] = []
    last = [t0]

    def on_point(info):
        now = time.perf_counter()
        row = info["row"]
        lv = ", ".join(f"{k[6:]}={v}" for k, v in row.items() if k.startswith("lever:"))
        msg = (f"[{info['index']}/{info['total']}] {lv}: test acc {_f(row.get('test_accuracy'))}, "
               f"AUC {_f(row.get('auc'))}, TPR@1% {_f(row.get('tpr@0.01'), True)}%  ({now - last[0]:.0f} s)")
        times.append(msg)
        last[0] = now
        print(msg, flush=True)

    result = run_levers(raw, jobs=args.jobs, budget=args.budget, on_point=on_point)
    wall = time.perf_counter() - t0
    summ = result.summary()
    levers = list(result.sweep.values)
    # summary() averages numeric columns only: add the strongest attack (most frequent over repetitions)
    tab = result.table
    if "strongest_attack" in tab:
        lcols = [f"lever:{lv}" for lv in levers]
        key = tab[lcols].apply(lambda r: "|".join(map(str, r)), axis=1)
        mode = tab.groupby(key)["strongest_attack"].agg(lambda s: s.mode().iloc[0] if s.notna().any() else "")
        summ["strongest_attack"] = summ[lcols].apply(lambda r: "|".join(map(str, r)), axis=1).map(mode).to_numpy()
    risk = result.risk_column()

    result.table.to_csv(res_dir / f"levers_{name}.csv", index=False)
    plots = []
    for lv in levers:
        p = res_dir / f"levers_{name}_{lv}.png"
        size = save_png(plot_lever(summ, lv, risk, others=[o for o in levers if o != lv]), p)
        plots.append((p.name, size))
    p = res_dir / f"levers_{name}_pareto.png"
    plots.append((p.name, save_png(plot_pareto(summ, risk, levers), p)))

    base = result.base
    recs = result.recommendations()
    g = base.get("game", {})
    text = [f"# Levers sweep: {name}", "",
            f"Config: `{Path(args.config)}`; model `{base.get('model')}`; K = {g.get('n_references')} models, "
            f"{g.get('n_targets')} targets, seed {g.get('seed')}; mode {result.sweep.mode}, "
            f"{result.sweep.repetitions} repetition(s); risk = strongest attack (highest TPR at the lowest "
            "supported FPR); TPR in %, pooled over targets, 95% interval.", "",
            f"Wall time {wall:.0f} s (jobs {args.jobs}; cached points/models are reused on a rerun).", "",
            markdown_table(summ, levers), "",
            f"Settings meeting the budget `{args.budget}` (best test accuracy first): "
            + (", ".join("(" + ", ".join(f"{lv}={r[f'lever:{lv}']}" for lv in levers) + f"; test acc {r['test_accuracy']:.3f})"
                         for _, r in recs.iterrows()) or "none"), "",
            "## Directions (risk at the smallest -> largest value of each lever, others fixed)", "",
            directions(summ, levers, [risk, "auc", "epsilon_lower_bound"]), "",
            "## Plots", "", *[f"- `{n}` ({s / 1024:.0f} KB)" for n, s in plots], "",
            "## Per-point log", "", "```", *times, "```", ""]
    out_md = res_dir / f"levers_{name}.md"
    out_md.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
