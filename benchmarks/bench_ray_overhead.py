"""Ray's overhead over the process executor on the same K = 16 training run (issue 12; goal < 10% more wall).

The reference models of one audit (scikit-learn MLPs on digits) are trained by ``train_models`` with
``--jobs`` concurrent trainers, each setting in its own cache folder (every model retrained), the settings
interleaved over ``--reps`` rounds so that load from other processes hits them alike:

* ``process``: the process pool (this process trains too, ``jobs - 1`` worker processes);
* ``ray local``: ``executor="ray"`` without an address: a local Ray started and stopped by the call
  (its start-up, about 5-10 s on a loaded machine, is part of the wall time);
* ``ray cluster``: a Ray already running on this machine (``ray.init`` once before the timings, started
  with ``jobs`` CPUs): the steady-state cost of the tasks, the object store and the driver's file writes.

    nice python benchmarks/bench_ray_overhead.py              # K = 16, 2 trainers, 2 rounds
    python benchmarks/bench_ray_overhead.py --k 4 --reps 1    # a quick look

Prints the median wall per setting and its ratio to ``process``, and checks that the logits are identical.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--max-iter", type=int, default=100)
    args = ap.parse_args()

    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning

    from miaudit.audit import balanced_membership
    from miaudit.training import Execution, SklearnRecipe, model_seeds, train_models

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    X, y = load_digits(return_X_y=True)
    X, y = X[: args.n] / 16.0, y[: args.n].astype(np.int64)
    m = balanced_membership(len(y), args.k, seed=0)
    seeds = model_seeds(0, args.k)
    recipe = SklearnRecipe("sklearn.neural_network.MLPClassifier",
                           {"hidden_layer_sizes": [args.hidden], "max_iter": args.max_iter}, n_classes=10)
    root = Path(tempfile.mkdtemp(prefix="bench_ray_overhead_"))
    times: dict[str, list[float]] = {"process": [], "ray local": [], "ray cluster": []}
    logits: dict[str, np.ndarray] = {}

    def run(name: str, rep: int, executor: object) -> None:
        t0 = time.perf_counter()
        out = train_models(recipe, X, y, m, seeds=seeds, run_dir=root / f"{name.replace(' ', '_')}{rep}",
                           jobs=args.jobs, executor=executor)  # type: ignore[arg-type]
        times[name].append(time.perf_counter() - t0)
        assert out.n_trained == args.k
        logits.setdefault(name, out.logits)
        print(f"  round {rep}: {name:<12} {times[name][-1]:6.1f} s", flush=True)

    import ray

    for rep in range(args.reps):
        run("process", rep, "process")
        run("ray local", rep, Execution(executor="ray"))
        ray.init(num_cpus=args.jobs, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1",
                 logging_level="ERROR")
        try:
            run("ray cluster", rep, Execution(executor="ray"))  # uses the running session
        finally:
            ray.shutdown()
    base = statistics.median(times["process"])
    print(f"\nK = {args.k}, {args.jobs} trainers, {args.n} digits, MLP({args.hidden}) x {args.max_iter} iterations, "
          f"median of {args.reps}\n")
    print("| executor | wall (s), each round | median (s) | ratio to process |\n|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {', '.join(f'{t:.1f}' for t in ts)} | {med:.1f} | {med / base:.2f} |")
    same = all(np.array_equal(v, logits["process"]) for v in logits.values())
    print(f"\nlogits identical across executors: {same}")


if __name__ == "__main__":
    main()
