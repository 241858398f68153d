"""Scoring at scale (issue 12): LiRA online on N examples x K = 256 references x A = 2 queries, one machine.

Goal: 1e6 x 256 x 2 in under 8 GB through chunking. The reference logits (K, N, A, C) float32 are written
to a ``.npy`` file and memory-mapped (C = 2 classes: 4 KiB per example, 4.1 GB at N = 1e6; at C = 10 they
would be 20 GB and could only be mapped, never loaded); the attack streams them in chunks of examples, one
reference model at a time. Each N runs in a fresh subprocess, which reports:

* ``fit+score s``: wall time of ``get_attack("lira_online").fit_score(bundle)`` (data generation excluded);
* ``heap peak MB``: the peak of Python/NumPy heap allocations during fit+score (``tracemalloc``): the memory
  the attack itself needs, O(N A) per-example statistics plus one chunk;
* ``max RSS MB``: the process's peak resident set (``ru_maxrss``), which also counts the pages of the mapped
  logits the kernel kept resident (file-backed, reclaimable under pressure).

    nice python benchmarks/bench_scoring_scale.py --n 10000 30000 100000     # fractions, extrapolated
    python benchmarks/bench_scoring_scale.py --n 1000000                     # the full size (slow)

Prints a table with per-example rates and the linear extrapolation of the largest measured N to 1e6.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np


def child(n: int, k: int, a: int, c: int, folder: Path, chunk: int | None) -> dict[str, float]:
    from miaudit.attacks import get_attack
    from miaudit.data import SignalBundle

    rng = np.random.default_rng(0)
    path = folder / f"ref_{n}.npy"
    ref = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(k, n, a, c))
    mu, sd = rng.normal(0, 2, n).astype(np.float32), np.exp(rng.normal(0, 0.5, n)).astype(np.float32)
    ref_is_member = np.zeros((k, n), dtype=bool)
    step = 100_000
    for s0 in range(0, n, step):  # written in slabs: generation never holds the whole array
        sl = slice(s0, min(n, s0 + step))
        m = sl.stop - sl.start
        half = np.argsort(rng.random((k, m)), axis=0) < k // 2  # every example IN for exactly half
        ref_is_member[:, sl] = half
        phi = mu[sl][None, :, None] + half[..., None] * sd[sl][None, :, None] + sd[sl][None, :, None] * \
            rng.standard_normal((k, m, a), dtype=np.float32)
        ref[:, sl, :, 1] = phi
        ref[:, sl, :, 0] = 0.0
    ref.flush()
    del ref
    ref_logits = np.load(path, mmap_mode="r")
    target = np.zeros((n, a, c), dtype=np.float32)
    target[:, :, 1] = (mu + sd * (rng.random(n) < 0.5))[:, None] + sd[:, None] * rng.standard_normal((n, a))
    bundle = SignalBundle(labels=np.ones(n, dtype=np.int64), target_logits=target,
                          is_member=rng.random(n) < 0.5, ref_logits=ref_logits, ref_is_member=ref_is_member)
    mapped = isinstance(bundle.ref_logits, np.memmap) or isinstance(getattr(bundle.ref_logits, "base", None), np.memmap)
    tracemalloc.start()
    t0 = time.perf_counter()
    scores = get_attack("lira_online", chunk_size=chunk).fit_score(bundle)
    wall = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert np.isfinite(scores).all()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": n, "wall": wall, "heap_mb": peak / 2**20, "rss_mb": rss, "mapped": mapped,
            "logits_mb": k * n * a * c * 4 / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--queries", type=int, default=2)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--chunk-size", type=int, default=None, help="examples per chunk (default: automatic)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.n[0], args.k, args.queries, args.classes, args.folder, args.chunk_size)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_scoring_scale_") as tmp:
        for n in args.n:
            cmd = [sys.executable, __file__, "--child", "--n", str(n), "--k", str(args.k), "--queries",
                   str(args.queries), "--classes", str(args.classes), "--folder", tmp]
            if args.chunk_size:
                cmd += ["--chunk-size", str(args.chunk_size)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(f"  N = {n}: {r['wall']:.1f} s, heap peak {r['heap_mb']:.0f} MB, max RSS {r['rss_mb']:.0f} MB",
                  flush=True)
            Path(tmp, f"ref_{n}.npy").unlink()
    print(f"\nLiRA online, K = {args.k}, A = {args.queries}, C = {args.classes}, reference logits memory-mapped "
          f"float32 (mapped: {rows[0]['mapped']})\n")
    print("| N | logits MB | fit+score s | us / example | heap peak MB | heap B / example | max RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']:,} | {r['logits_mb']:.0f} | {r['wall']:.1f} | {1e6 * r['wall'] / r['n']:.0f} | "
              f"{r['heap_mb']:.0f} | {r['heap_mb'] * 2**20 / r['n']:.0f} | {r['rss_mb']:.0f} |")
    big = rows[-1]
    f = 1e6 / big["n"]
    print(f"\nlinear extrapolation of N = {big['n']:,} to N = 1,000,000: {big['wall'] * f:.0f} s, heap peak "
          f"{big['heap_mb'] * f:.0f} MB (+ the mapped logits, {big['logits_mb'] * f:.0f} MB of file pages)")


if __name__ == "__main__":
    main()
