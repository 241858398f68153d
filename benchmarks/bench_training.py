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
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = ap.parse_args()

    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    from miaudit.data import balanced_membership
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
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            out = train_models(recipe, X, y, membership, seeds=seeds, run_dir=tmp, jobs=jobs)
            wall = time.perf_counter() - t0
            t1 = time.perf_counter()
            cached = train_models(recipe, X, y, membership, seeds=seeds, run_dir=tmp, jobs=jobs)
            cached_wall = time.perf_counter() - t1
            assert cached.n_trained == 0
        if reference is None:
            reference = out.logits
        rows.append({
            "jobs": jobs,
            "workers": out.jobs,
            "n_models": args.k,
            "wall_s": wall,
            "model_s": out.model_seconds,
            "fit_s": float(out.fit_seconds.sum()),
            "predict_s": float(out.predict_seconds.sum()),
            "outside_fraction": out.overhead_fraction,
            "cached_rerun_s": cached_wall,
            "identical_to_first": bool(np.array_equal(reference, out.logits)),
            "mean_train_acc": float(out.train_accuracy.mean()),
            "mean_test_acc": float(out.test_accuracy.mean()),
        })
        print(f"jobs={jobs}: wall {wall:.1f} s, outside training {out.overhead_fraction:.1%}", flush=True)
    base = rows[0]["wall_s"]
    print()
    print(f"K = {args.k} MLP({args.hidden}) models on digits (N = {len(y)}, {int(membership[0].sum())} "
          f"training examples each, max_iter = {args.max_iter}); {os.cpu_count()} cores")
    print()
    print("| jobs | wall (s) | speed-up vs first | sum train+predict (s) | outside training | cached re-run (s) | logits identical |")
    print("|---:|---:|---:|---:|---:|---:|:---:|")
    for r in rows:
        print(f"| {r['jobs']} | {r['wall_s']:.1f} | {base / r['wall_s']:.2f}x | {r['model_s']:.1f} | "
              f"{r['outside_fraction']:.1%} | {r['cached_rerun_s']:.2f} | {'yes' if r['identical_to_first'] else 'NO'} |")
    print(f"\nmean train accuracy {rows[0]['mean_train_acc']:.3f}, test accuracy {rows[0]['mean_test_acc']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
