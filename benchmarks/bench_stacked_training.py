"""Benchmark: K reference models trained one by one vs stacked vs 2 parallel processes (issue 5).

Workloads: K MLPs on UCI Adult (one-hot + standardised features) and K SmallCNNs on MNIST. For each mode the
table gives wall and CPU time, the speed-up over one-by-one, the achieved GFLOP/s (matmul/conv FLOPs of
forward + backward, counted as 3x the forward FLOPs of every example processed) and that rate as a fraction
of the machine's measured sgemm peak (``torch.mm`` on 2048 x 2048 float32, with the same thread count).

    nice python benchmarks/bench_stacked_training.py --adult ../shared/data/adult/adult.csv \
        --mnist ../shared/data/mnist

Modes: ``one-by-one`` (in-process, ``--threads`` torch threads, ``TorchRecipe.train`` per model);
``stacked`` (in-process, ``TorchRecipe.train_group``, ``stack=True``, ``--threads`` threads); ``2 procs``
(two spawned worker processes with 1 thread each, K/2 models one by one each; the workers import torch and
warm up before the clock starts). It also checks that stacked and one-by-one give the same logits.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np

_STATE: dict = {}


def _peak_gflops(threads: int, n: int = 2048, reps: int = 5) -> float:
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _forward_flops(model, x_one) -> float:
    """Matmul + conv FLOPs (2 per multiply-add) of one example's forward pass."""
    import torch

    total = [0.0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Linear):
            total[0] += 2.0 * mod.in_features * mod.out_features
        elif isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total[0] += 2.0 * k * out[0].numel()

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    with torch.no_grad():
        model.eval()(x_one)
    for h in hs:
        h.remove()
    return total[0]


def _init_worker(recipe, X, y):
    import torch

    torch.set_num_threads(1)
    _STATE.update(recipe=recipe, X=X, y=y)
    recipe.train(_rows(X, np.arange(min(64, len(y)))), y[: min(64, len(y))], seed=0)  # warm-up


def _rows(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _train_some(masks, seeds):
    r, X, y = _STATE["recipe"], _STATE["X"], _STATE["y"]
    for m, s in zip(masks, seeds):
        r.train(_rows(X, np.flatnonzero(m)), y[m], seed=s)
    return len(seeds)


def _noop(_):
    return os.getpid()


def run_workload(name, recipe_kwargs, X, y, membership, seeds, threads, modes, peaks):
    import torch

    from miaudit.training.torch_recipe import TorchRecipe

    rows = []
    one_rec = TorchRecipe(**recipe_kwargs, num_threads=threads, stack=False)
    st_rec = TorchRecipe(**recipe_kwargs, num_threads=threads, stack=True, group_size=len(seeds))
    # warm-up (lazy initialisation of torch kernels) outside the clock
    warm = np.zeros(len(y), bool)
    warm[:64] = True
    one_rec.train(_rows(X, np.flatnonzero(warm)), y[warm], seed=0)
    st_rec.train_group(X, y, np.stack([warm, warm]), [0, 1])
    probe = one_rec.train(_rows(X, np.flatnonzero(warm)), y[warm], seed=0)
    from miaudit.training.torch_recipe import TabularEncoding, _to_features

    enc = TabularEncoding.of(X) if hasattr(X, "iloc") else None
    x1 = torch.from_numpy(_to_features(_rows(X, np.arange(1)), enc))
    fwd = _forward_flops(probe, x1)
    n_examples = int(membership.sum()) * int(recipe_kwargs["epochs"])
    train_flops = 3.0 * fwd * n_examples

    results = {}
    if "one" in modes:
        t0, c0 = time.perf_counter(), time.process_time()
        results["one"] = [one_rec.train(_rows(X, np.flatnonzero(m)), y[m], seed=s) for m, s in zip(membership, seeds)]
        rows.append((name, "one-by-one", time.perf_counter() - t0, time.process_time() - c0, threads))
    if "stacked" in modes:
        t0, c0 = time.perf_counter(), time.process_time()
        results["stacked"] = st_rec.train_group(X, y, membership, seeds)
        rows.append((name, "stacked", time.perf_counter() - t0, time.process_time() - c0, threads))
    if "procs" in modes:
        ctx = get_context("spawn")
        proc_rec = TorchRecipe(**recipe_kwargs, num_threads=1, stack=False)
        with ProcessPoolExecutor(2, mp_context=ctx, initializer=_init_worker, initargs=(proc_rec, X, y)) as pool:
            list(pool.map(_noop, range(4)))  # workers started and warm
            half = len(seeds) // 2
            t0 = time.perf_counter()
            futs = [pool.submit(_train_some, membership[:half], seeds[:half]),
                    pool.submit(_train_some, membership[half:], seeds[half:])]
            assert sum(f.result() for f in futs) == len(seeds)
            rows.append((name, "2 procs x 1 thread", time.perf_counter() - t0, float("nan"), 2))
    diff = None
    if "one" in results and "stacked" in results:
        diff = max(float(np.abs(one_rec.predict_logits(a, X) - one_rec.predict_logits(b, X)).max())
                   for a, b in zip(results["one"], results["stacked"]))
    base = rows[0][2] if rows and rows[0][1] == "one-by-one" else None
    out = []
    for wl, mode, wall, cpu, th in rows:
        print(f"  {wl}: {mode} {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
        gf = train_flops / wall / 1e9
        out.append({"workload": wl, "mode": mode, "wall_s": wall, "cpu_s": cpu,
                    "speedup": (base / wall) if base else float("nan"), "gflops": gf,
                    "peak_fraction": gf / peaks[2 if th >= 2 else 1]})
    return out, diff, train_flops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adult", help="path of adult.csv (skip the MLP workload if absent)")
    ap.add_argument("--mnist", help="folder of the MNIST IDX files (skip the CNN workload if absent)")
    ap.add_argument("--k", type=int, default=16, help="reference models (even)")
    ap.add_argument("--pool", type=int, default=10_000, help="Adult pool size")
    ap.add_argument("--mnist-n", type=int, default=5_000, help="MNIST pool size")
    ap.add_argument("--hidden", type=int, nargs="+", default=[256], help="MLP hidden width(s)")
    ap.add_argument("--epochs-mlp", type=int, default=10)
    ap.add_argument("--epochs-cnn", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the in-process modes")
    ap.add_argument("--modes", nargs="+", default=["one", "stacked", "procs"], choices=["one", "stacked", "procs"])
    ap.add_argument("--cnn-modes", nargs="+", default=None, choices=["one", "stacked", "procs"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from miaudit.audit import balanced_membership, load_dataset

    peaks = {1: _peak_gflops(1), 2: _peak_gflops(2)}
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, sgemm peak (torch.mm 2048^2 float32): 1 thread {peaks[1]:.1f} GFLOP/s, "
          f"2 threads {peaks[2]:.1f} GFLOP/s; load average {os.getloadavg()[0]:.1f}")
    seeds = list(range(1000, 1000 + args.k))
    table, notes = [], []
    if args.adult:
        ds = load_dataset({"kind": "adult", "path": args.adult})
        rng = np.random.default_rng(args.seed)
        idx = rng.permutation(len(ds.y))[: args.pool]
        X, y = ds.X.iloc[idx].reset_index(drop=True), ds.y[idx]
        membership = balanced_membership(len(y), args.k, seed=args.seed)
        for h in args.hidden:
            kw = dict(model="mlp", model_kwargs={"hidden": [h]}, n_classes=2, optimizer="sgd", lr=0.05,
                      momentum=0.9, epochs=args.epochs_mlp, batch_size=args.batch_size)
            rows, diff, fl = run_workload(f"Adult MLP({h}) K={args.k}", kw, X, y, membership, seeds, args.threads,
                                          args.modes, peaks)
            table += rows
            notes.append(f"Adult MLP({h}): {fl / 1e9:.1f} GFLOP of training; max |logit diff| stacked vs "
                         f"one-by-one = {diff if diff is None else f'{diff:.2e}'}")
    if args.mnist:
        ds = load_dataset({"kind": "mnist", "path": args.mnist})
        rng = np.random.default_rng(args.seed)
        idx = rng.permutation(len(ds.y))[: args.mnist_n]
        X, y = ds.X[idx], ds.y[idx]
        membership = balanced_membership(len(y), args.k, seed=args.seed)
        kw = dict(model="small_cnn", model_kwargs={"width": 16}, n_classes=10, optimizer="sgd", lr=0.05,
                  momentum=0.9, epochs=args.epochs_cnn, batch_size=args.batch_size)
        rows, diff, fl = run_workload(f"MNIST SmallCNN K={args.k}", kw, X, y, membership, seeds, args.threads,
                                      args.cnn_modes or args.modes, peaks)
        table += rows
        notes.append(f"MNIST SmallCNN: {fl / 1e9:.1f} GFLOP of training; max |logit diff| stacked vs one-by-one = "
                     f"{diff if diff is None else f'{diff:.2e}'}")

    print()
    print(f"| {'workload':<24} | {'mode':<20} | {'wall s':>8} | {'CPU s':>8} | {'speed-up':>8} | {'GFLOP/s':>8} | "
          f"{'of peak':>7} |")
    print(f"|{'-' * 26}|{'-' * 22}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 10}|{'-' * 9}|")
    for r in table:
        print(f"| {r['workload']:<24} | {r['mode']:<20} | {r['wall_s']:8.1f} | {r['cpu_s']:8.1f} | "
              f"{r['speedup']:7.2f}x | {r['gflops']:8.2f} | {r['peak_fraction']:7.1%} |")
    print()
    for n in notes:
        print(n)
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (timings on a shared 2-core machine)")


if __name__ == "__main__":
    main()
