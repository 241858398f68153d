"""Benchmark: attack power on real targets (issue 3), digits and UCI Adult, K = 4, 8, 16, 64.

The game is the one of ``miaudit audit`` (:func:`miaudit.audit.run_audit`): a pool of examples, K models
of one scikit-learn recipe on a balanced membership matrix (every example IN for exactly K/2 models), and
each of the first ``--n-targets`` models plays the target against the other K - 1 as references. Figures are
pooled over targets (one ROC over every target's members and non-members), with 95% intervals (AUC: DeLong;
TPR@FPR: the headline ``tpr_at_fpr_ci`` of results.json). For the strongest attack the spread across targets
(mean +- std of the per-target AUC and TPR) is reported too.

Targets:
* digits: scikit-learn's 1,797 8x8 digits, all of them in the pool; MLPClassifier(hidden 128, max_iter 200),
  StandardScaler.
* Adult (``--adult PATH`` to adult.csv): a random pool of ``--adult-pool`` rows; MLPClassifier(hidden 64,
  max_iter ``--adult-iter``) on one-hot categorical + scaled numeric columns (``preprocessing = "auto"``).

Models are cached under ``--run-dir`` (keyed by recipe, data, membership row and seed), so a rerun only
scores. Run (from the repository root)::

    nice python benchmarks/bench_attack_power.py --adult /work/shared/data/adult/adult.csv

Design check (``--null-check``): score a target whose training half is independent of the truth membership
row against the K - 1 references of each game; every attack should then be at AUC 0.5 and epsilon bound 0
(writes ``<out stem>_null.md``)::

    nice python benchmarks/bench_attack_power.py --null-check --datasets digits --out benchmarks/results/attack_power_digits.md

The markdown table is printed and written to ``--out`` (default
``benchmarks/results/attack_power.md``); one JSON line per game is appended to ``attack_power.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

FPRS = ("0.001", "0.01")


def _pct(v):
    return "n/a" if v is None else f"{100 * v:.2f}"


def _ci(lo_hi, pct=True):
    if not lo_hi or lo_hi[0] is None:
        return ""
    f = (lambda x: f"{100 * x:.2f}") if pct else (lambda x: f"{x:.3f}")
    return f" [{f(lo_hi[0])}, {f(lo_hi[1])}]"


def config_for(dataset: str, k: int, args) -> dict:
    if dataset == "digits":
        data = {"kind": "digits"}
        model = {"kind": "sklearn", "estimator": "sklearn.neural_network.MLPClassifier",
                 "params": {"hidden_layer_sizes": [args.digits_hidden], "max_iter": args.digits_iter},
                 "preprocessing": "auto"}
        game = {"n_references": k - 2, "n_targets": min(k, args.n_targets), "seed": args.seed}  # K models
    elif dataset == "adult":
        data = {"kind": "adult", "path": str(Path(args.adult).resolve())}
        model = {"kind": "sklearn", "estimator": "sklearn.neural_network.MLPClassifier",
                 "params": {"hidden_layer_sizes": [args.adult_hidden], "max_iter": args.adult_iter},
                 "preprocessing": "auto"}
        game = {"pool_size": args.adult_pool, "n_references": k - 2, "n_targets": min(k, args.n_targets),
                "seed": args.seed}
    else:
        raise SystemExit(f"unknown dataset {dataset!r}")
    out = {"data": data, "model": model, "game": game,
           "metrics": {"fprs": [0.001, 0.01, 0.1], "confidence": 0.95, "delta": 1e-5},
           "output": {"dir": str(Path(args.run_dir) / "reports" / f"{dataset}-k{k}"),
                      "run_dir": str(Path(args.run_dir) / "cache")}}
    if args.attacks:
        out["attacks"] = {"names": list(args.attacks)}
    return out


def run_game(dataset: str, k: int, args) -> dict:
    from miaudit.audit import prepare_audit, run_audit, train_prepared
    from miaudit.config import AuditConfig

    cfg = AuditConfig.from_dict(config_for(dataset, k, args))
    # Train (or load) first so that training and scoring wall times can be told apart.
    t0 = time.perf_counter()
    trained = train_prepared(prepare_audit(cfg), jobs=args.jobs)
    t_train = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = run_audit(cfg, jobs=args.jobs)  # every model now comes from the cache: this is load + scoring
    t_score = time.perf_counter() - t1
    g = res.game
    return {"dataset": dataset, "k": k, "n_targets": g.get("n_targets"), "pool": g.get("n_examples"),
            "n_members": g.get("n_members"), "n_nonmembers": g.get("n_nonmembers"),
            "train_accuracy": g.get("train_accuracy"), "test_accuracy": g.get("test_accuracy"),
            "strongest": res.strongest, "models_trained": trained.n_trained,
            "models_cached": trained.n_cached, "train_s": t_train, "score_s": t_score,
            "metrics": {name: {**m.to_dict(), **({"spread": res.spread[name]} if name in res.spread else {})}
                        for name, m in res.metrics.items()}, "skipped": res.skipped,
            "verdict": res.verdict().sentence}


def render(r: dict) -> str:
    lines = [f"### {r['dataset']}, K = {r['k']} ({r['n_targets']} targets, pool {r['pool']}; pooled over targets: "
             f"{r['n_members']} member / {r['n_nonmembers']} non-member scores)", "",
             f"train acc {r['train_accuracy']:.3f}, test acc {r['test_accuracy']:.3f} (mean over the K models); "
             f"wall: training {r['train_s']:.0f} s ({r['models_trained']} trained, {r['models_cached']} cached), "
             f"load + scoring {r['score_s']:.0f} s", "",
             "| attack | AUC [95% CI] | TPR@0.1% (%) [CI] | TPR@1% (%) [CI] | TPR@1% / loss | eps LB |",
             "|---|---|---|---|---|---|"]
    ms = r["metrics"]
    base = (ms.get("loss") or {}).get("tpr_at_fpr", {}).get("0.01")
    for name in sorted(ms, key=lambda a: -(ms[a].get("tpr_at_fpr", {}).get("0.01") or 0)):
        m = ms[name]
        t, tci = m["tpr_at_fpr"], m.get("tpr_at_fpr_ci", {})
        ratio = "" if not base or t.get("0.01") is None else f"{t['0.01'] / base:.2f}x"
        star = " **(strongest)**" if name == r["strongest"] else ""
        lines.append(f"| {name}{star} | {m['auc']:.3f}{_ci(m.get('auc_ci'), pct=False)} | "
                     f"{_pct(t.get('0.001'))}{_ci(tci.get('0.001'))} | {_pct(t.get('0.01'))}{_ci(tci.get('0.01'))} | "
                     f"{ratio} | {m.get('epsilon_lower_bound', 0):.2f} |")
    if r["skipped"]:
        lines.append("")
        lines.append("skipped: " + "; ".join(f"{k}: {v}" for k, v in r["skipped"].items()))
    best = ms.get(r["strongest"]) or {}
    sp = best.get("spread")
    if sp:
        tp = sp.get("tpr_at_fpr", {})

        def ms_(d, pct):
            if not d or d.get("mean") is None:
                return "n/a"
            return (f"{100 * d['mean']:.2f} +- {100 * d['std']:.2f}" if pct else f"{d['mean']:.3f} +- {d['std']:.3f}")

        lines += ["", f"spread of the strongest attack ({r['strongest']}) over {sp.get('n_targets')} targets: "
                  f"AUC {ms_(sp.get('auc'), False)}, TPR@0.1% {ms_(tp.get('0.001'), True)} %, "
                  f"TPR@1% {ms_(tp.get('0.01'), True)} %"]
    return "\n".join(lines) + "\n"


def summary(rows: list[dict]) -> str:
    lines = ["| dataset | K | targets | train acc | test acc | strongest | AUC | TPR@0.1% (%) | TPR@1% (%) | "
             "TPR@1% vs K=4 | AUC mean+-std over targets | train s | score s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    first = {}
    for r in rows:
        m = r["metrics"].get(r["strongest"]) or {}
        t = m.get("tpr_at_fpr", {})
        first.setdefault(r["dataset"], t.get("0.01"))
        b = first[r["dataset"]]
        ratio = "" if not b or t.get("0.01") is None else f"{t['0.01'] / b:.2f}x"
        sp = (m.get("spread") or {}).get("auc") or {}
        spread = "" if sp.get("mean") is None else f"{sp['mean']:.3f} +- {sp['std']:.3f}"
        lines.append(f"| {r['dataset']} | {r['k']} | {r['n_targets']} | {r['train_accuracy']:.3f} | "
                     f"{r['test_accuracy']:.3f} | {r['strongest']} | {m.get('auc', float('nan')):.3f} | "
                     f"{_pct(t.get('0.001'))} | {_pct(t.get('0.01'))} | {ratio} | {spread} | "
                     f"{r['train_s']:.0f} | {r['score_s']:.0f} |")
    return "\n".join(lines) + "\n"


def null_check(dataset: str, ks: list[int], args) -> str:
    """Design check: score a target whose training half is independent of the truth membership row (model
    ``K0 - 1`` of a game with another K0) against the K - 1 other models of the balanced game. The target
    then carries no information about membership, so every attack should have AUC ~ 0.5 and epsilon lower
    bound 0; anything else comes from the design. (Before models came in complementary pairs with the
    target's partner left out, a member of the target had K/2 - 1 IN and K/2 OUT references and a
    non-member the reverse, and this check found AUC 0.34 at K = 4.)"""
    import numpy as np

    from miaudit.api import evaluate_bundle
    from miaudit.audit import prepare_audit, references_for_target, train_prepared
    from miaudit.config import AuditConfig
    from miaudit.data import SignalBundle

    def game(k):
        p = prepare_audit(AuditConfig.from_dict(config_for(dataset, k, args)))
        return p, train_prepared(p, jobs=args.jobs)

    k0 = 8 if 8 not in ks else 10
    _, t0 = game(k0)
    null_logits = t0.logits[k0 - 1].astype(np.float64)
    lines = [f"### {dataset}: null target (model {k0 - 1} of the K = {k0} game, trained on a half independent of "
             "the truth row) against the K - 1 references of the balanced game, target slot 0", "",
             "| K | attack | AUC [95% CI] | TPR@1% (%) | eps LB |", "|---|---|---|---|---|"]
    for k in ks:
        p, t = game(k)
        refs = references_for_target(p.is_member, 0)  # as evaluate_game does
        bundle = SignalBundle.from_arrays(labels=p.y, target_logits=null_logits, is_member=p.is_member[0],
                                          ref_logits=t.logits[refs], ref_is_member=p.is_member[refs])
        res = evaluate_bundle(bundle, settings={"fprs": [0.001, 0.01, 0.1], "seed": args.seed})
        for a, m in sorted(((a, m.to_dict()) for a, m in res.metrics.items()), key=lambda kv: -abs(kv[1]["auc"] - 0.5)):
            lo, hi = m["auc_ci"]
            flag = " **(outside 0.5)**" if (lo > 0.5 or hi < 0.5) else ""
            lines.append(f"| {k} | {a} | {m['auc']:.3f} [{lo:.3f}, {hi:.3f}]{flag} | "
                         f"{_pct(m['tpr_at_fpr'].get('0.01'))} | {m['epsilon_lower_bound']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["digits", "adult"], choices=["digits", "adult"])
    ap.add_argument("--ks", nargs="+", type=int, default=[4, 8, 16, 64])
    ap.add_argument("--adult", default=None, help="path of adult.csv (needed for the adult dataset)")
    ap.add_argument("--adult-pool", type=int, default=6000)
    ap.add_argument("--adult-hidden", type=int, default=64)
    ap.add_argument("--adult-iter", type=int, default=60)
    ap.add_argument("--digits-hidden", type=int, default=128)
    ap.add_argument("--digits-iter", type=int, default=200)
    ap.add_argument("--n-targets", type=int, default=8, help="cap on the models evaluated as targets")
    ap.add_argument("--attacks", nargs="*", default=None, help="attack names (default: every attack that runs)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--run-dir", default="/work/bench-runs/attack_power", help="model cache and reports")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "attack_power.md"))
    ap.add_argument("--null-check", action="store_true",
                    help="instead of the benchmark, score a target independent of the truth membership at each K "
                         "(design check; writes <out stem>_null.md)")
    args = ap.parse_args()
    if "adult" in args.datasets and not args.adult:
        ap.error("--adult PATH is required for the adult dataset (or pass --datasets digits)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.null_check:
        text = "# Null-target design check\n\nCommand: `python " + " ".join(os.sys.argv) + "`\n\n" + \
            "\n".join(null_check(ds, args.ks, args) for ds in args.datasets)
        out = Path(args.out).with_name(Path(args.out).stem + "_null.md")
        out.write_text(text)
        print(text)
        return
    jsonl = Path(args.out).with_suffix(".jsonl")
    rows = []
    header = (f"# Attack power (issue 3)\n\nCommand: `python {' '.join(os.sys.argv)}`\n\n"
              f"digits: MLP hidden {args.digits_hidden}, max_iter {args.digits_iter}, pool = all 1,797; "
              f"Adult: MLP hidden {args.adult_hidden}, max_iter {args.adult_iter}, pool {args.adult_pool}; "
              f"targets capped at {args.n_targets}; jobs {args.jobs}; seed {args.seed}. "
              "TPR and its intervals in %, AUC with its DeLong interval, pooled over targets.\n\n")
    for ds in args.datasets:
        for k in args.ks:
            t0 = time.perf_counter()
            r = run_game(ds, k, args)
            r["wall_s"] = time.perf_counter() - t0
            rows.append(r)
            with jsonl.open("a") as f:
                f.write(json.dumps({kk: v for kk, v in r.items()}, default=str) + "\n")
            text = render(r)
            print(text, flush=True)
            body = header + "## Summary (strongest attack)\n\n" + summary(rows) + "\n## Every attack\n\n" + \
                "\n".join(render(x) for x in rows)
            Path(args.out).write_text(body)
    print(summary(rows))


if __name__ == "__main__":
    main()
