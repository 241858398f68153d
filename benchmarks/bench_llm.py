"""Language-model audits on real text (Python's ``pydoc_data.topics`` paragraphs), CPU-sized (issue 13).

(A) The config game, as ``miaudit audit`` runs it: a GPT-2-shaped model trained from scratch on random halves of
    the pool, ``--refs`` references per target, every attack's AUC and TPR@1% with intervals, the blind baseline
    (random split: should sit at chance), canary exposure against repetitions (1, 4, 16), seconds per model.
(B) A topic-shifted split: a target trained on paragraphs of the first topics, non-members from the last
    topics, audited with :func:`miaudit.audit.lm.run_lm_audit_with_target`: the blind baseline must catch it and
    the verdict must say so.
(C) Null check of the blind baseline: ``--null`` random member/non-member splits of the paragraphs; how often
    it is significant at its 5% level.

Usage (sized for 2 CPU cores shared with other work: a few CPU minutes; the numbers in
benchmarks/results/llm.md come from this)::

    nice python benchmarks/bench_llm.py [--pool 200] [--epochs 4] [--embd 32] [--refs 8] [--targets 2] [--null 20]
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from miaudit.audit import run_audit
from miaudit.audit.lm import blind_baseline, run_lm_audit_with_target
from miaudit.config import AuditConfig
from miaudit.data._text import pydoc_paragraphs
from miaudit.metrics import AuditSettings
from miaudit.training.lm_recipe import LmRecipe

print = functools.partial(print, flush=True)  # noqa: A001 - progress appears as it is made


def _model(args: argparse.Namespace) -> dict:
    return {"kind": "causal_lm", "init": "scratch",
            "config": {"n_layer": 2, "n_head": 2, "n_embd": args.embd, "n_positions": 128},
            "tokenizer": "bytes", "epochs": args.epochs, "learning_rate": 3e-3, "batch_size": 16, "stride": 96}


def _row(name: str, m: dict) -> str:
    lo, hi = m["auc_ci"]
    return f"| {name} | {m['auc']:.3f} [{lo:.3f}, {hi:.3f}] | {_tpr1(m)} |"


def _tpr1(m: dict) -> str:
    d = m["tpr_at_fpr_detail"].get("0.01", {})
    if d.get("tpr") is None:
        return "n/a (" + str(d.get("reason", "not resolvable"))[:60] + ")"
    return f"{100 * d['tpr']:.1f}% [{100 * d['target_ci_low']:.1f}, {100 * d['target_ci_high']:.1f}]"


def game_a(args: argparse.Namespace, work: Path) -> dict:
    cfg = AuditConfig.from_dict({
        "data": {"kind": "pydoc_topics", "max_examples": args.pool + 2, "seed": 0},
        "model": {**_model(args), "canaries": {"repetitions": [1, 4, 16], "per_repetition": 4,
                                          "candidates": args.candidates}},
        "game": {"n_references": args.refs, "n_targets": args.targets, "seed": 0},
        "output": {"dir": str(work / "a"), "run_dir": str(work / "a" / "cache")},
    })
    t0 = time.perf_counter()
    res = run_audit(cfg, jobs=args.jobs)
    wall = time.perf_counter() - t0
    res.save(work / "a")
    return {"wall": wall, "json": json.loads((work / "a" / "results.json").read_text())}


def game_b(args: argparse.Namespace, work: Path) -> dict:
    texts, topics = pydoc_paragraphs()
    names = list(dict.fromkeys(topics))
    half = len(names) // 2
    first = [t for t, k in zip(texts, topics) if k in names[:half]][: args.topic_n]
    last = [t for t, k in zip(texts, topics) if k in names[half:]][-args.topic_n:]
    recipe = LmRecipe.from_spec(_model(args))
    recipe = recipe.with_scoring(prefix=[], lowercase=True)
    t0 = time.perf_counter()
    target = recipe.train(np.array(first, dtype=object), None, seed=12345)
    res = run_lm_audit_with_target(recipe, target, first, last, n_references=2, run_dir=work / "b" / "cache",
                                   jobs=args.jobs, game={"dataset": "pydoc_topics (topic split)"})
    wall = time.perf_counter() - t0
    res.save(work / "b")
    return {"wall": wall, "json": json.loads((work / "b" / "results.json").read_text()),
            "topics": (names[0], names[half - 1], names[half], names[-1])}


def null_c(args: argparse.Namespace) -> dict:
    texts, _ = pydoc_paragraphs()
    docs = np.asarray(texts, dtype=object)
    rng = np.random.default_rng(2024 if args.null_docs is None else 7)
    hits, aucs = 0, []
    t0 = time.perf_counter()
    for g in range(args.null):
        sub = docs if args.null_docs is None else docs[rng.choice(len(docs), args.null_docs, replace=False)]
        mem = rng.permutation(len(sub)) < len(sub) // 2
        b = blind_baseline(sub, [(g, mem)], settings=AuditSettings(seed=g))
        hits += int(b["significant"])
        aucs.append(b["auc"])
    return {"hits": hits, "n": args.null, "mean_auc": float(np.mean(aucs)), "sd_auc": float(np.std(aucs)),
            "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--embd", type=int, default=32)
    ap.add_argument("--refs", type=int, default=8)
    ap.add_argument("--targets", type=int, default=2)
    ap.add_argument("--topic-n", type=int, default=100)
    ap.add_argument("--candidates", type=int, default=100)
    ap.add_argument("--null", type=int, default=20)
    ap.add_argument("--null-docs", type=int, default=None, help="(C) on random subsets of this many paragraphs")
    ap.add_argument("--null-only", action="store_true", help="run only the null check (C)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", type=str, default=None)
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_llm_"))
    print(f"# LM audit benchmark (pydoc_data.topics), work folder {work}\n")
    print(f"model: GPT-2, 2 layers, 2 heads, n_embd {args.embd}, 128 positions, byte tokenizer; {args.epochs} epochs, "
          f"lr 3e-3, batch 16; stride 96\n")

    c = null_c(args)
    print(f"## (C) blind baseline on random splits (null check)\n\n{c['hits']} / {c['n']} significant at level 5% "
          f"(mean AUC {c['mean_auc']:.3f}, sd {c['sd_auc']:.3f}; {c['seconds']:.0f} s for all)\n")
    if args.null_only:
        return

    a = game_a(args, work)
    r = a["json"]
    g = r["game"]
    print(f"## (A) config game: random split, {g['pool_size']} paragraphs, K = {g['n_models']} models, "
          f"{g['n_targets']} targets x {g['n_references']} references\n")
    print(f"wall {a['wall']:.0f} s; per model: fit {g['fit_seconds_per_model']:.1f} s, query "
          f"{g['predict_seconds_per_model']:.1f} s (jobs = {args.jobs}); train loss {g['train_loss']:.3f}, "
          f"test loss {g['test_loss']:.3f} (gap {g['loss_gap']:.3f} nats/byte)\n")
    print("| attack | AUC [95% CI] | TPR@1% FPR [95% CI] |\n|---|---|---|")
    for name in r["ranking"]:
        print(_row(name, r["attacks"][name]))
    b = r["baselines"]["blind"]
    print(f"| blind baseline (no model) | {b['auc']:.3f} [{b['auc_interval'][0]:.3f}, {b['auc_interval'][1]:.3f}] "
          f"| p = {b['p_value']:.2g}, significant: {b['significant']} |\n")
    print(f"verdict: {r['verdict']['level']}: {r['verdict']['sentence']}\n")
    can = r["canaries"]
    print(f"canaries: template 'the access code is dddd-dddd' (|R| = 10^8), {can['candidates']} sampled candidates "
          f"each (exposure at most {can['max_exposure']:.2f} bits), target model 0\n")
    print("| repetitions | canaries | mean exposure (bits) | AUC vs non-inserted | TPR@1% FPR |\n|---|---|---|---|---|")
    for rep, d in sorted(can["by_repetitions"].items(), key=lambda kv: int(kv[0])):
        t1 = d["tpr_at_fpr"].get("1%", {})
        tp = "n/a" if t1.get("tpr") is None else f"{100 * t1['tpr']:.0f}% [{100 * t1['interval'][0]:.0f}, {100 * t1['interval'][1]:.0f}]"
        print(f"| {rep} | {d['n_canaries']} | {d['mean_exposure']:.2f} | {d['auc']:.3f} | {tp} |")
    print()

    bb = game_b(args, work)
    r = bb["json"]
    b = r["baselines"]["blind"]
    t = bb["topics"]
    print(f"## (B) topic split: members from topics {t[0]!r}..{t[1]!r}, non-members from {t[2]!r}..{t[3]!r} "
          f"({args.topic_n} each), K = 2 references; wall {bb['wall']:.0f} s\n")
    print("| attack | AUC [95% CI] | TPR@1% FPR [95% CI] |\n|---|---|---|")
    for name in r["ranking"]:
        print(_row(name, r["attacks"][name]))
    print(f"| blind baseline (no model) | {b['auc']:.3f} [{b['auc_interval'][0]:.3f}, {b['auc_interval'][1]:.3f}] "
          f"| p = {b['p_value']:.2g}, significant: {b['significant']} |\n")
    print(f"verdict: {r['verdict']['level']}: {r['verdict']['sentence']}\n")


if __name__ == "__main__":
    main()
