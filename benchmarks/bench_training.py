"""Training benchmark: K reference models on digits (MLP) with --jobs 1 vs --jobs 2.

Reports wall time per setting, the speed-up, the fraction of wall time spent outside model training and
querying (target: < 5%), the time of a fully cached re-run, and checks that the logits are identical
across job counts.

    nice python benchmarks/bench_training.py                 # K = 16, every digit, MLP(64), 100 epochs
    python benchmarks/bench_training.py --k 4 --max-iter 20  # a quick look

"Outside" = 1 - (sum over models of train + predict seconds) / (workers * wall), where workers =
min(jobs, K): process start-up, data fingerprinting, cache keys, file writes and reads, scheduling.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=16, help="number of models (even)")
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--max-iter", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mp-context", nargs="+", default=["forkserver"],
                    help="start methods for jobs > 1 (forkserver = default of train_models; fork = opt-in)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args()

    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    from miaudit.audit import balanced_membership
    from miaudit.training import SklearnRecipe, model_seeds, train_models

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    membership = balanced_membership(len(y), args.k, seed=args.seed)
    seeds = model_seeds(args.seed, args.k)
    recipe = SklearnRecipe("sklearn.neural_network.MLPClassifier",
                           {"hidden_layer_sizes": [args.hidden], "max_iter": args.max_iter}, n_classes=10)
    rows, reference = [], None
    settings = [(j, None) for j in args.jobs if j == 1] + [(j, c) for j in args.jobs if j > 1 for c in args.mp_context]
    for jobs, ctx in settings:
        with tempfile.TemporaryDirectory() as tmp:
            t0, t0_wall = time.perf_counter(), time.time()
            out = train_models(recipe, X, y, membership, seeds=seeds, run_dir=tmp, jobs=jobs, mp_context=ctx)
            wall = time.perf_counter() - t0
            timeline = _timeline(Path(tmp), t0_wall, out.keys)
            t1 = time.perf_counter()
            cached = train_models(recipe, X, y, membership, seeds=seeds, run_dir=tmp, jobs=jobs, mp_context=ctx)
            cached_wall = time.perf_counter() - t1
            assert cached.n_trained == 0
        if reference is None:
            reference = out.logits
        rows.append({
            "jobs": jobs,
            "mp_context": ctx or "-",
            "workers": out.jobs,
            "n_models": args.k,
            "wall_s": wall,
            "model_s": out.model_seconds,
            "fit_s": float(out.fit_seconds.sum()),
            "predict_s": float(out.predict_seconds.sum()),
            "outside_fraction": out.overhead_fraction,
            "cached_rerun_s": cached_wall,
            "identical_to_first": bool(np.array_equal(reference, out.logits)),
            "first_model_start_s": timeline["first_start"],
            "model_cpu_s": timeline["model_cpu_s"],
            "trainers": timeline["trainers"],
            "idle_before_first_model_s": timeline["idle_before"],
            "idle_after_last_model_s": timeline["idle_after"],
            "mean_train_acc": float(out.train_accuracy.mean()),
            "mean_test_acc": float(out.test_accuracy.mean()),
        })
        print(f"jobs={jobs} ({ctx or 'in process'}): wall {wall:.1f} s, outside training {out.overhead_fraction:.1%}", flush=True)
    base = rows[0]["wall_s"]
    print()
    print(f"K = {args.k} MLP({args.hidden}) models on digits (N = {len(y)}, {int(membership[0].sum())} "
          f"training examples each, max_iter = {args.max_iter}); {os.cpu_count()} cores")
    print()
    print("| jobs | start method | wall (s) | speed-up vs first | sum train+predict wall (s) | ... CPU (s) | outside training | "
          "cached re-run (s) | logits identical |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|:---:|")
    for r in rows:
        print(f"| {r['jobs']} | {r['mp_context']} | {r['wall_s']:.1f} | {base / r['wall_s']:.2f}x | {r['model_s']:.1f} | {r['model_cpu_s']:.1f} | "
              f"{r['outside_fraction']:.1%} | {r['cached_rerun_s']:.2f} | {'yes' if r['identical_to_first'] else 'NO'} |")
    if hasattr(os, "getloadavg"):
        print(f"\nload average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())} (1, 5, 15 min)")
    print()
    for r in rows:
        print(f"jobs={r['jobs']} ({r['mp_context']}): {r['trainers']} trainers; idle before their first model (start-up) "
              f"{', '.join(f'{v:.1f}' for v in r['idle_before_first_model_s'])} s; idle after their last model "
              f"(tail) {', '.join(f'{v:.1f}' for v in r['idle_after_last_model_s'])} s")
    print(f"\nmean train accuracy {rows[0]['mean_train_acc']:.3f}, test accuracy {rows[0]['mean_test_acc']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def _timeline(run_dir: Path, t0: float, keys: tuple[str, ...]) -> dict:
    """Per trainer (pid, thread): idle time before its first model and after its last, from file metadata."""
    spans: dict[tuple[int, int], list[tuple[float, float]]] = {}
    end = time.time()
    cpu = 0.0
    for key in set(keys):
        with np.load(run_dir / "models" / f"{key}.npz", allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        spans.setdefault((meta["pid"], meta["thread"]), []).append((meta["started"], meta["finished"]))
        cpu += meta["cpu_seconds"]
    before = [min(s for s, _ in v) - t0 for v in spans.values()]
    after = [end - max(f for _, f in v) for v in spans.values()]
    return {"trainers": len(spans), "first_start": min(before), "idle_before": before, "idle_after": after,
            "model_cpu_s": cpu}


if __name__ == "__main__":
    main()
