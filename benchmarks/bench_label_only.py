"""Benchmark: label-only attacks against full access on the same game (issue 10, section 2).

For each dataset the same game (pool, membership design, model seeds) is audited twice through
:func:`miaudit.audit.run_audit`: with the models' full outputs (``[attacks] access = "logits"``, every attack)
and with predicted classes only (``access = "label"``: ``gap``, ``augment_count``, ``boundary_distance``,
``label_augment``, ``label_boundary``). The table gives the strongest attack of each access by AUC, its AUC
advantage (AUC - 0.5) with the DeLong interval, TPR at FPR 1% with its Clopper-Pearson interval, the ratio
label / full of the advantages, and the queries the label-only attacks made (per example, and in all to the
targets and to the references).

Games:
* digits: ``examples/digits_mlp.toml`` as it stands (10 models, 8 targets x 8 references).
* adult (``--adult PATH``): a pool of ``--adult-pool`` rows, MLP(64, max_iter 60), 6 models, 4 targets.
* mnist (``--mnist PATH``, the folder of t10k IDX files): a pool of ``--mnist-pool`` images (28 x 28: the image
  queries, one-pixel shifts without flips, and the HopSkipJump-style search), MLP(128, max_iter 30), 6 models,
  4 targets.

Null check (``--null-trials``): on each label game, the target's membership labels are replaced by random
balanced ones (the scores do not depend on them: the label-only attacks never read is_member), and the
verdict (:func:`miaudit.metrics.decide_leakage`, level 5%) is decided on each; the share of claims is
reported.

Run from the repository root::

    nice python benchmarks/bench_label_only.py --adult /work/shared/data/adult/adult.csv \\
        --mnist /work/shared/data/mnist --out benchmarks/results/label_only.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

LABEL_QUERIES = {"augmentations": 32, "noise": 0.3, "boundary_queries": 256}
#: Per game: MNIST digits are not mirror-symmetric and an MLP is not translation-invariant, so the image
#: augmentations are one-pixel shifts without flips there.
LABEL_QUERIES_FOR = {"mnist": {"shift": 1, "flip": False}}


def _games(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    from miaudit.config import read_config_file

    root = Path(__file__).resolve().parent.parent
    games: dict[str, dict[str, Any]] = {}
    if "digits" in args.datasets:
        d = dict(read_config_file(root / "examples" / "digits_mlp.toml"))
        d.pop("attacks", None)
        games["digits"] = d
    if "adult" in args.datasets and args.adult:
        games["adult"] = {
            "data": {"kind": "adult", "path": str(Path(args.adult).resolve())},
            "model": {"kind": "sklearn", "estimator": "sklearn.neural_network.MLPClassifier",
                      "params": {"hidden_layer_sizes": [64], "max_iter": 60}, "preprocessing": "auto"},
            "game": {"pool_size": args.adult_pool, "n_references": 4, "n_targets": 4, "seed": 0},
        }
    if "mnist" in args.datasets and args.mnist:
        games["mnist"] = {
            "data": {"kind": "mnist", "path": str(Path(args.mnist).resolve())},
            "model": {"kind": "sklearn", "estimator": "sklearn.neural_network.MLPClassifier",
                      "params": {"hidden_layer_sizes": [128], "max_iter": 30}, "preprocessing": "auto"},
            "game": {"pool_size": args.mnist_pool, "n_references": 4, "n_targets": 4, "seed": 0},
        }
    for name, g in games.items():
        g["metrics"] = {"fprs": [0.001, 0.01, 0.1], "confidence": 0.95, "delta": 1e-5}
        g["output"] = {"dir": str(Path(args.run_dir) / name), "run_dir": str(Path(args.run_dir) / "cache")}
    return games


def _best(result: Any) -> tuple[str, Any]:
    name = max(result.metrics, key=lambda k: result.metrics[k].auc)
    return name, result.metrics[name]


def _tpr(m: Any, fpr: float = 0.01) -> str:
    t = next(t for t in m.tpr_at_fpr if abs(t.fpr - fpr) < 1e-12)
    if t.tpr is None:
        return "n/a"
    return f"{100 * t.tpr:.2f}% [{100 * t.ci_low:.2f}, {100 * t.ci_high:.2f}]"


def _null_claims(cfg: Any, trials: int) -> tuple[int, int]:
    """Verdict claims on ``trials`` null games built from the label game's cached answers."""
    from miaudit.attacks import get_attack
    from miaudit.audit.evaluate import target_bundle
    from miaudit.audit.flow import label_spec, prepare_audit, train_prepared
    from miaudit.metrics import decide_leakage
    from miaudit.training.label_access import LabelAccessRecipe

    prepared = prepare_audit(cfg)
    spec = label_spec(cfg)
    import dataclasses

    prepared = dataclasses.replace(prepared, recipe=LabelAccessRecipe(prepared.recipe, spec))
    trained = train_prepared(prepared, jobs=1)  # from the cache
    rng = np.random.default_rng(12345)
    claims = 0
    names = ["gap", "augment_count", "boundary_distance", "label_augment", "label_boundary"]
    for i in range(trials):
        t = prepared.targets[i % len(prepared.targets)]
        b = target_bundle(prepared.y, trained.logits, prepared.is_member, t, label_answers=trained.extras)
        scores = {n: get_attack(n).fit_score(b) for n in names}
        fake = rng.permutation(np.asarray(b.is_member))
        claims += bool(decide_leakage(fake, scores, seed=i).leakage_detected)
    return claims, trials


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["digits", "adult", "mnist"])
    ap.add_argument("--adult", default=None)
    ap.add_argument("--adult-pool", type=int, default=3000)
    ap.add_argument("--mnist", default=None)
    ap.add_argument("--mnist-pool", type=int, default=3000)
    ap.add_argument("--run-dir", default="/tmp/miaudit-bench-label")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--null-trials", type=int, default=40)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from miaudit.audit import run_audit
    from miaudit.config import AuditConfig

    rows = ["| game | access | strongest attack | AUC | advantage [95% CI] | TPR@1% [95% CI] | label/full advantage | "
            "queries per example (target, references) | null claims | wall s |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, d in _games(args).items():
        full_cfg = AuditConfig.from_dict(d)
        t0 = time.perf_counter()
        full = run_audit(full_cfg, jobs=args.jobs)
        t_full = time.perf_counter() - t0
        lab_d = {**d, "attacks": {"access": "label",
                                  "label_queries": {**LABEL_QUERIES, **LABEL_QUERIES_FOR.get(name, {})}}}
        lab_cfg = AuditConfig.from_dict(lab_d)
        t0 = time.perf_counter()
        lab = run_audit(lab_cfg, jobs=args.jobs)
        t_lab = time.perf_counter() - t0
        fn, fm = _best(full)
        ln, lm = _best(lab)
        ratio = (lm.auc - 0.5) / (fm.auc - 0.5) if fm.auc > 0.5 else float("nan")
        q = lab.game.get("attack_queries", {}).get(ln, {})
        claims, trials = _null_claims(lab_cfg, args.null_trials) if args.null_trials else (0, 0)
        rows.append(f"| {name} | full (logits) | {fn} | {fm.auc:.4f} | {fm.auc - 0.5:.4f} [{fm.auc_ci[0] - 0.5:.4f}, "
                    f"{fm.auc_ci[1] - 0.5:.4f}] | {_tpr(fm)} | | | | {t_full:.0f} |")
        rows.append(f"| {name} | label | {ln} | {lm.auc:.4f} | {lm.auc - 0.5:.4f} [{lm.auc_ci[0] - 0.5:.4f}, "
                    f"{lm.auc_ci[1] - 0.5:.4f}] | {_tpr(lm)} | **{ratio:.2f}** | {q.get('per_example')} "
                    f"({q.get('target')}, {q.get('references')}) | {claims}/{trials} | {t_lab:.0f} |")
        others = ", ".join(f"{k} {m.auc:.4f}" for k, m in sorted(lab.metrics.items(), key=lambda kv: -kv[1].auc))
        rows.append(f"| {name} | label, every attack (AUC) | {others} | | | | | | | |")
        print("\n".join(rows[-3:]), flush=True)
    table = "\n".join(rows)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
