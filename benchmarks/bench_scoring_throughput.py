"""Scoring throughput of the reference attacks: wall time and peak memory of ``fit_score``.

Default size: N = 1,000,000 examples x K = 64 reference models x A = 2 queries x C = 2 classes, so
that the float32 reference logits take 1.02 GB (C = 2 keeps the input at about 1 GB; the cost of the
attacks after the scaled logit does not depend on C). Targets (issue 3): under 60 s and under 4 GB
for LiRA and RMIA on 2 cores.

Memory is measured two ways: ``tracemalloc`` peak of the scoring call alone (numpy reports its
buffers to tracemalloc; the input arrays, allocated before, are not counted) and the process's peak
resident set (``ru_maxrss``, which includes the 1 GB input and its generation). Each attack runs in a
fresh child process so its ``ru_maxrss`` is its own. The wall time is taken with tracemalloc on (a
small overhead: few, large allocations); ``--no-trace`` times without it.

Usage::

    nice python benchmarks/bench_scoring_throughput.py [--n 1000000] [--k 64] [--queries 2]
        [--attacks lira_online rmia] [--chunk-size N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
import tracemalloc

import numpy as np


def make_bundle(n: int, k: int, a: int, c: int, seed: int = 0):  # -> SignalBundle
    """Random logits with a small membership signal, generated in chunks (no float64 copy of the input)."""
    from miaudit.data import SignalBundle

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, n)
    ref_is_member = np.zeros((k, n), dtype=bool)
    ref_logits = np.empty((k, n, a, c), dtype=np.float32)
    step = 1 << 16
    for s in range(0, n, step):
        e = min(n, s + step)
        keys = rng.random((k, e - s))
        ref_is_member[:, s:e] = keys.argsort(axis=0).argsort(axis=0) < k // 2
        block = rng.standard_normal((k, e - s, a, c), dtype=np.float32)
        onehot = labels[s:e, None] == np.arange(c)
        block += (0.5 * ref_is_member[:, s:e, None, None] * onehot[None, :, None, :]).astype(np.float32)
        ref_logits[:, s:e] = block
    target_logits = rng.standard_normal((n, a, c))
    return SignalBundle(labels=labels, target_logits=target_logits, ref_logits=ref_logits, ref_is_member=ref_is_member)


def _child(args: argparse.Namespace, name: str, traced: bool, q: mp.Queue) -> None:
    from miaudit.attacks import available_attacks, get_attack

    available_attacks()  # import every attack module before the clock starts
    bundle = make_bundle(args.n, args.k, args.queries, args.classes)
    params = {} if args.chunk_size is None else {"chunk_size": args.chunk_size}
    attack = get_attack(name, **params)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if traced:
        tracemalloc.start()
    t0 = time.perf_counter()
    scores = attack.fit_score(bundle)
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**30 if traced else float("nan")
    if traced:
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    ok = bool(np.isfinite(scores).all() and scores.shape == (args.n,))
    q.put((dt, peak, rss_before, rss, ok))


def run(args: argparse.Namespace, name: str, traced: bool) -> tuple[float, float, float, float, bool]:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    p = ctx.Process(target=_child, args=(args, name, traced, q))
    p.start()
    res = q.get()
    p.join()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--queries", type=int, default=2)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--attacks", nargs="+", default=["lira_online", "lira_offline", "rmia", "rmia_offline"])
    ap.add_argument("--chunk-size", type=int, default=None)
    ap.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run")
    args = ap.parse_args()
    gb = args.k * args.n * args.queries * args.classes * 4 / 1e9
    print(f"scoring throughput: N={args.n} K={args.k} A={args.queries} C={args.classes} "
          f"(ref_logits float32 {gb:.2f} GB), chunk_size={args.chunk_size or 'auto'}")
    print(f"{'attack':<14} {'wall s':>7} {'traced peak GiB':>16} {'maxrss before GiB':>18} "
          f"{'maxrss GiB':>11} {'ok':>3}")
    for name in args.attacks:
        dt, peak, rss0, rss, ok = run(args, name, traced=not args.no_trace)
        print(f"{name:<14} {dt:7.1f} {peak:16.2f} {rss0:18.2f} {rss:11.2f} {'yes' if ok else 'NO':>3}")


if __name__ == "__main__":
    main()
