"""Issue 12's "done" check: ``miaudit audit CONFIG --executor ray --address ADDR`` on a two-node Ray cluster
whose worker node dies 15 s into the run finishes with ``scores.csv`` identical to ``--executor process``
and all K models' outputs in the driver's cache.

The cluster runs on this machine, all on 127.0.0.1 (``ray.cluster_utils.Cluster``): a head without CPUs
(the driver's node, where the data and the results live) and two worker nodes of one CPU each; at
``--kill-after`` seconds one worker node is removed without warning (its raylet and workers killed, as a
machine that dies). The audit: scikit-learn MLPs on digits, K = n_references + 2 models.

    nice python benchmarks/bench_ray_fault.py                    # K = 16, kill at 15 s
    python benchmarks/bench_ray_fault.py --refs 6 --kill-after 5  # a quick look

Prints a table (wall times, models in the cache when the node died, identical or not) and exits 1 unless
scores.csv and results.json (minus its ``created`` line) are identical and all K models are cached.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every node on loopback (before ray)

CONFIG = """\
attacks = ["loss", "lira_online", "lira_offline", "rmia"]

[data]
kind = "digits"
max_examples = {n}

[model]
estimator = "sklearn.neural_network.MLPClassifier"
params = {{ hidden_layer_sizes = [{hidden}], max_iter = {iters} }}

[game]
n_references = {refs}
n_targets = 4
seed = 12

[output]
dir = "{out}"
"""

_CREATED = re.compile(rb'^  "created": "[^"]*",\n', re.MULTILINE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--refs", type=int, default=14, help="references per target (K = refs + 2 models)")
    ap.add_argument("--n", type=int, default=1000, help="digits examples in the pool")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--iters", type=int, default=150)
    ap.add_argument("--kill-after", type=float, default=15.0, help="seconds into the ray run")
    args = ap.parse_args()
    k = args.refs + 2

    import ray
    from ray.cluster_utils import Cluster

    root = Path(tempfile.mkdtemp(prefix="bench_ray_fault_"))
    for name in ("ray", "proc"):
        (root / f"{name}.toml").write_text(CONFIG.format(n=args.n, hidden=args.hidden, iters=args.iters,
                                                         refs=args.refs, out=name))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "node_ip_address": "127.0.0.1",
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                           "health_check_failure_threshold": 3}})
    try:
        victim = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        cluster.wait_for_nodes()
        cmd = [sys.executable, "-m", "miaudit", "audit", str(root / "ray.toml"), "--executor", "ray",
               "--address", cluster.address]
        print("$", " ".join(cmd[2:]), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        models = root / "ray" / "cache" / "models"
        while time.perf_counter() - t0 < args.kill_after and proc.poll() is None:
            time.sleep(0.05)
        at_kill = len(list(models.glob("*.npz")))
        alive = proc.poll() is None
        cluster.remove_node(victim, allow_graceful=False)
        killed_at = time.perf_counter() - t0
        out, _ = proc.communicate()
        ray_wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(out.decode()[-3000:])
            return 1
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    cmd = [sys.executable, "-m", "miaudit", "audit", str(root / "proc.toml"), "--executor", "process", "--jobs", "2"]
    print("$", " ".join(cmd[2:]), flush=True)
    t1 = time.perf_counter()
    ref = subprocess.run(cmd, cwd=root, env=env, capture_output=True)
    proc_wall = time.perf_counter() - t1
    if ref.returncode != 0:
        print(ref.stdout.decode()[-3000:], ref.stderr.decode()[-3000:])
        return 1
    same_scores = (root / "ray" / "scores.csv").read_bytes() == (root / "proc" / "scores.csv").read_bytes()
    same_results = (_CREATED.sub(b"", (root / "ray" / "results.json").read_bytes())
                    == _CREATED.sub(b"", (root / "proc" / "results.json").read_bytes()))
    n_cached = len(list(models.glob("*.npz")))
    rows = [
        ("models K", str(k)),
        ("worker node removed at (s)", f"{killed_at:.1f}" + ("" if alive else " (run had already ended)")),
        ("models in the driver's cache when it died", f"{at_kill}/{k}"),
        ("ray run wall (s), 2 worker nodes -> 1", f"{ray_wall:.1f}"),
        ("process run wall (s), --jobs 2", f"{proc_wall:.1f}"),
        ("ratio ray / process", f"{ray_wall / proc_wall:.2f}"),
        ("models in the driver's cache at the end", f"{n_cached}/{k}"),
        ("scores.csv identical", str(same_scores)),
        ("results.json identical (minus 'created')", str(same_results)),
    ]
    width = max(len(r[0]) for r in rows)
    print("\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")
    ok = same_scores and same_results and n_cached == k and alive
    print("\nOK" if ok else "\nFAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
