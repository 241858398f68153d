"""Benchmark: membership inference against a small CNN on MNIST, without and with DP-SGD (issue 5).

The game: a pool of the 10,000 MNIST test-split images; K reference models of one recipe, each trained on a
balanced random half (5,000 images; every image a member of exactly K/2 of them), plus ``--targets`` target
models trained on independent random halves (``draw_membership``). Each target is attacked with all other
models as references; figures are pooled over targets (``miaudit.api.evaluate_game``), with Clopper-Pearson /
DeLong intervals.

Why the targets are drawn apart from the balanced references: in the pure paired design (every model in
turn the target of a balanced K-model matrix), the number of IN references of an example is K/2 - 1 when it
is a member of the target and K/2 when not, so the reference membership itself tells the target's
membership; on pure-noise outputs ``lira_online`` then reaches AUC 0.36 and the epsilon lower bound comes
out above 0 (see the closing report). Independent target draws remove that leak.

1. Non-DP SmallCNN (trained with random shifts), every attack, with 1 query and with 1 + 2 augmented queries
   (shifts by one pixel left and right); the models are trained once, the 1-query figures use query 0 only.
2. The same recipe with DP-SGD (Opacus, RDP accountant, delta 1e-5) at epsilon = 1, 4, 16 (``--dp-k`` models
   each): train/test accuracy vs the best empirical epsilon lower bound vs the accountant's epsilon.

    nice python benchmarks/bench_mnist_cnn.py --mnist ../shared/data/mnist

Models are cached under ``--run-dir`` (re-running reuses them). Training runs in 2 worker processes with one
torch thread each (``miaudit.training.train_models``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def _fmt(v, ci=None, pct=False):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    f = (lambda x: f"{100 * x:.2f}%") if pct else (lambda x: f"{x:.3f}")
    if ci is None or ci[0] is None:
        return f(v)
    return f"{f(v)} [{f(ci[0])}, {f(ci[1])}]"


def _game(n, k, n_targets, *, seed):
    """(k + n_targets, n) membership: k balanced references, then targets drawn independently."""
    from miaudit.audit import balanced_membership, draw_membership

    ss = np.random.SeedSequence(seed)
    a, b = ss.spawn(2)
    refs = balanced_membership(n, k, seed=int(a.generate_state(1)[0]))
    tg = [draw_membership(n, seed=int(c.generate_state(1)[0])) for c in b.spawn(n_targets)]
    return np.vstack([refs, *tg]) if tg else refs


def _train(recipe, X, y, membership, seeds, run_dir, jobs):
    from miaudit.training import train_models

    t0 = time.perf_counter()
    trained = train_models(recipe, X, y, membership, seeds=seeds, run_dir=run_dir, jobs=jobs)
    return trained, time.perf_counter() - t0


def _evaluate(y, logits, membership, targets, attacks, game):
    from miaudit.api import evaluate_game

    t0 = time.perf_counter()
    res = evaluate_game(y, logits, membership, targets=targets, attacks=attacks,
                        settings={"delta": 1e-5, "confidence": 0.95, "fprs": [1e-3, 1e-2, 1e-1], "seed": 0},
                        game=game)
    return res, time.perf_counter() - t0


def _attack_rows(label, res):
    rows = []
    for name, m in sorted(((n, m.to_dict()) for n, m in res.metrics.items()), key=lambda kv: -(kv[1].get("auc") or 0)):
        tpr, tci = m["tpr_at_fpr"], m["tpr_at_fpr_ci"]
        rows.append(f"| {label:<18} | {name:<17} | {_fmt(m['auc'], m.get('auc_ci')):<22} | "
                    f"{_fmt(tpr.get('0.001'), tci.get('0.001'), pct=True):<26} | "
                    f"{_fmt(tpr.get('0.01'), tci.get('0.01'), pct=True):<26} | {m['epsilon_lower_bound']:.2f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", required=True, help="folder of the MNIST IDX files (t10k split used as the pool)")
    ap.add_argument("--n", type=int, default=10_000, help="pool size (the first n of the 10,000; smoke runs)")
    ap.add_argument("--k", type=int, default=16, help="reference models in the non-DP game (even)")
    ap.add_argument("--targets", type=int, default=4, help="target models (independent draws)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--width", type=int, default=16, help="SmallCNN width")
    ap.add_argument("--dp-k", type=int, default=2, help="reference models per DP level (even)")
    ap.add_argument("--dp-targets", type=int, default=2, help="target models per DP level")
    ap.add_argument("--dp-epochs", type=int, default=3)
    ap.add_argument("--dp-eps", type=float, nargs="*", default=[1.0, 4.0, 16.0])
    ap.add_argument("--attacks", nargs="*", default=None, help="attack names (default: every attack that runs)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--run-dir", default="/tmp/miaudit-bench-mnist")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from miaudit.data import load_dataset
    from miaudit.training import model_seeds
    from miaudit.training.torch_recipe import TorchRecipe

    t_all = time.perf_counter()
    ds = load_dataset({"kind": "mnist", "path": args.mnist})
    X, y = ds.X[: args.n], ds.y[: args.n]
    n = len(y)
    common = dict(model="small_cnn", model_kwargs={"width": args.width}, n_classes=10, optimizer="sgd",
                  momentum=0.9, augmentation="shift", max_shift=2)
    recipe = TorchRecipe(**common, lr=0.05, epochs=args.epochs, batch_size=128, queries=["shift:1,0", "shift:-1,0"])
    membership = _game(n, args.k, args.targets, seed=args.seed)
    seeds = model_seeds(args.seed, len(membership))
    targets = list(range(args.k, len(membership)))
    print(f"MNIST t10k pool N={n}, each model trained on {int(membership[0].sum())}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (shared machine)")

    trained, t_train = _train(recipe, X, y, membership, seeds, Path(args.run_dir) / "plain", args.jobs)
    print(f"non-DP: trained {int(trained.trained_now.sum())} of {len(seeds)} models in {t_train:.0f} s "
          f"(fit {np.nanmean(trained.fit_seconds):.1f} s / model); train acc {np.nanmean(trained.train_accuracy):.3f}, "
          f"test acc {np.nanmean(trained.test_accuracy):.3f}")
    summary, table, verdicts = [], [], []
    for label, logits in (("1 query", trained.logits[:, :, :1]), ("3 queries (1+2 aug)", trained.logits)):
        res, t_eval = _evaluate(y, logits, membership, targets, args.attacks, {"dataset": "mnist"})
        table += _attack_rows(label, res)
        best = max(m.epsilon.value for m in res.metrics.values())
        summary.append((label, res.game["train_accuracy"], res.game["test_accuracy"], None, best,
                        t_train, t_eval, res.strongest))
        verdicts.append((label, res.verdict().sentence, None))

    for eps in args.dp_eps:
        r = TorchRecipe(**common, lr=0.1, epochs=args.dp_epochs, batch_size=128,
                        dp={"epsilon": eps, "delta": 1e-5, "max_grad_norm": 1.0})
        mem = _game(n, args.dp_k, args.dp_targets, seed=args.seed + 1)
        sd = model_seeds(args.seed + 1, len(mem))
        tr, t_tr = _train(r, X, y, mem, sd, Path(args.run_dir) / f"dp{eps:g}", args.jobs)
        guarantee = r.dp_guarantee(int(mem[0].sum()))
        res, t_eval = _evaluate(y, tr.logits, mem, list(range(args.dp_k, len(mem))), args.attacks,
                                {"dataset": "mnist", "dp": {"neighbouring": "add_remove", **guarantee}})
        label = f"DP eps={eps:g}"
        table += _attack_rows(label, res)
        best = max(m.epsilon.value for m in res.metrics.values())
        summary.append((label, res.game["train_accuracy"], res.game["test_accuracy"], guarantee, best, t_tr, t_eval,
                        res.strongest))
        chk = res.dp_check
        verdicts.append((label, res.verdict().sentence, None if chk is None else chk.to_dict()))
        if chk is not None and chk.contradicted:
            print(f"!! SOUNDNESS VIOLATION: empirical bound {chk.bound.value:.3f} at delta {chk.game_delta:.2g} > "
                  f"{chk.game_epsilon:.3f}, what eps = {guarantee['epsilon']:.3f} (add/remove) allows in this game")

    print()
    print("| setting            | train acc | test acc | accountant eps (sigma)  | best eps LB | strongest  | train s | eval s |")
    print("|--------------------|-----------|----------|-------------------------|-------------|------------|---------|--------|")
    for label, tra, tea, g, best, t_tr, t_ev, strongest in summary:
        acc = "-" if g is None else f"{g['epsilon']:.2f} (sigma {g['noise_multiplier']:.2f})"
        print(f"| {label:<18} | {tra:9.3f} | {tea:8.3f} | {acc:<23} | {best:11.2f} | {str(strongest):<10} | "
              f"{t_tr:7.0f} | {t_ev:6.1f} |")
    print()
    print("| setting            | attack            | AUC [95% CI]           | TPR@0.1% FPR [95% CI]      | "
          "TPR@1% FPR [95% CI]        | eps LB |")
    print("|--------------------|-------------------|------------------------|----------------------------|"
          "----------------------------|--------|")
    for row in table:
        print(row)
    print()
    print("Verdicts (results.json verdict.sentence) and DP checks:")
    for label, sentence, chk in verdicts:
        extra = "" if chk is None else (f" DP check: largest bound {chk['epsilon_lower_bound']} ({chk['attack']}) at "
                                        f"delta {chk['game_delta']:.2g} vs game epsilon {chk['game_epsilon']:.3g}: "
                                        f"{'CONTRADICTED' if chk['contradicted'] else 'consistent'}.")
        print(f"- {label}: {sentence}{extra}")
    print()
    print(f"K={args.k} balanced references + {len(targets)} independent targets (each attacked with all other models "
          f"as references), SmallCNN width {args.width}, {args.epochs} epochs; DP: {args.dp_k} references + "
          f"{args.dp_targets} targets per level, {args.dp_epochs} epochs; total wall "
          f"{time.perf_counter() - t_all:.0f} s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
