"""The issue's user path: a causal LM trained on the first pydoc_data.topics topics' paragraphs (members) and
audited against the last topics' paragraphs (non-members) THROUGH `miaudit audit` (a subprocess), and the same
with a random split. Prints the verdict and the blind baseline's AUC / p per split.

    nice python benchmarks/bench_llm_target_cli.py [--n 100] [--epochs 2] [--n-references 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from miaudit.data._text import pydoc_paragraphs
from miaudit.training.lm_recipe import LmRecipe

MODEL = {"n_layer": 2, "n_head": 2, "n_embd": 64, "n_positions": 128}


def split(kind: str, n: int) -> tuple[list[str], list[str]]:
    texts, topics = pydoc_paragraphs()
    names = list(dict.fromkeys(topics))
    if kind == "topic":
        first = [t[:300] for t, k in zip(texts, topics) if k in names[: len(names) // 3]][:n]
        last = [t[:300] for t, k in zip(texts, topics) if k in names[-len(names) // 3:]][-n:]
        return first, last
    idx = np.random.default_rng(0).permutation(len(texts))[: 2 * n]
    return [texts[i][:300] for i in idx[:n]], [texts[i][:300] for i in idx[n:]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="members and non-members each")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--n-references", type=int, default=4)
    a = ap.parse_args()
    conf = ", ".join(f"{k} = {v}" for k, v in MODEL.items())
    print("| split | verdict | blind AUC [interval] | blind p (level) | loss AUC | seconds |")
    print("|---|---|---|---|---|---|")
    for kind in ("topic", "random"):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            mem, non = split(kind, a.n)
            recipe = LmRecipe(config=MODEL, epochs=a.epochs)
            recipe.train(np.asarray(mem, dtype=object), np.zeros(len(mem)), seed=0).save_pretrained(tmp / "ckpt")
            with open(tmp / "docs.jsonl", "w", encoding="utf-8") as fh:
                for t, m in [*((t, True) for t in mem), *((t, False) for t in non)]:
                    fh.write(json.dumps({"text": t, "member": m}) + "\n")
            (tmp / "a.toml").write_text(
                f'[data]\nkind = "text"\npath = "docs.jsonl"\n[model]\nkind = "causal_lm"\ninit = "scratch"\n'
                f'config = {{ {conf} }}\ntokenizer = "bytes"\nepochs = {a.epochs}\n[game]\n'
                f'n_references = {a.n_references}\n[attacks]\nnames = ["loss", "zlib", "min_k", "lira_online"]\n'
                '[target]\nmodel = "ckpt"\n', encoding="utf-8")
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "miaudit", "audit", str(tmp / "a.toml"), "--out",
                                str(tmp / "out"), "--jobs", "1"], capture_output=True, text=True)
            sec = time.perf_counter() - t0
            if p.returncode != 0:
                print(p.stdout[-2000:], p.stderr[-2000:])
                raise SystemExit(p.returncode)
            r = json.loads((tmp / "out" / "results.json").read_text())
            b = r["baselines"]["blind"]
            lo, hi = b["auc_interval"]
            print(f"| {kind} | {r['verdict']['level']} | {b['auc']:.3f} [{lo:.3f}, {hi:.3f}] | "
                  f"{b['p_value']:.2g} ({b['level']:g}) | {r['attacks']['loss']['auc']:.3f} | {sec:.0f} |")


if __name__ == "__main__":
    main()
