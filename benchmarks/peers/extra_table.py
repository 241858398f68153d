"""Table of the issue-15 "extra" peer attacks from stored game folders (main env; no training, no peer runs).

Reads `<work>/full/<target>/seed<s>/peer_<tool>.json` written by run_peers.py, recomputes every figure with the
harness's own code (run_peers.peer_rows -> miaudit.metrics.evaluate_scores on the scored rows only; pooled
TPR@FPR with Clopper-Pearson intervals via run_peers.aggregate) and prints, for each figure, how many members /
non-members stand behind it (pooled over seeds). Attacks that score a subset of the pool (HSJ, OSLO) are scored on
their own subset. Also prints miaudit's best attack on the same games for reference.

  python benchmarks/peers/extra_table.py --work /work/peer-envs/_runs_peers2 --targets digits-mlp,mnist-cnn \
      --seeds 0,1,2 --out benchmarks/peers/RESULTS_ISSUE15_extra.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run_peers as R  # noqa: E402

SELECT = {"leakpro": r"^(loss_traj|seqmia|yoqo|oslo|HSJ|qmia)", "sacroml": r"^lira_"}


def cell(a: dict, key: str) -> str:
    return R.fmt_tpr(a, key, counts=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/work/peer-envs/_runs")
    ap.add_argument("--targets", default="digits-mlp,mnist-cnn")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--tools", default="leakpro,sacroml")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    lines: list[str] = []
    for tname in args.targets.split(","):
        per: dict[tuple[str, str], list[dict]] = {}
        notes: dict[tuple[str, str], str] = {}
        mi: dict[tuple[str, str], list[dict]] = {}
        used = []
        for seed in seeds:
            g = Path(args.work) / "full" / tname / f"seed{seed}"
            if not (g / "bundle.npz").exists():
                continue
            used.append(seed)
            with np.load(g / "bundle.npz", allow_pickle=False) as z:
                is_member = z["is_member"].astype(bool)
            for tool in args.tools.split(","):
                f = g / f"peer_{tool}.json"
                if not f.exists():
                    continue
                res = json.loads(f.read_text())
                for att, row in R.peer_rows(res, is_member, seed).items():
                    if re.search(SELECT.get(tool, "."), att):
                        per.setdefault((f"{tool} {res.get('version', '')}".strip(), att), []).append(row)
                        notes[(tool, att)] = row.get("note") or ""
            for k in (8, 16):
                f = g / f"miaudit_k{k}.json"
                if f.exists():
                    for att, row in json.loads(f.read_text())["attacks"].items():
                        mi.setdefault((f"miaudit K={k}", att), []).append(
                            {"metrics": row["metrics"], "wall_s": row["wall_s"], "error": None, "reported": {}})
        if not used:
            continue
        lines.append(f"\n### {tname}: seeds {','.join(map(str, used))}\n")
        lines.append("| tool | attack | AUC (mean ± sd) | AUC as reported | TPR@0.1% [95% CI] (members/non-members) "
                     "| TPR@1% [95% CI] (members/non-members) | wall s / seed |")
        lines.append("|---|---|---|---|---|---|---|")
        for (tool, att), rows in per.items():
            a = R.aggregate(rows)
            if not a.get("n_seeds"):
                lines.append(f"| {tool} | {att} | failed: {R.failure_text(a, 220)} | | | | |")
                continue
            auc_s, rauc = R.auc_cells(a)
            wall = "n/a" if a.get("wall_s") is None else f"{a['wall_s']:.1f}"
            lines.append(f"| {tool} | {att} | {auc_s} | {rauc} | {cell(a, '0.001')} | {cell(a, '0.01')} | {wall} |")
        best = None
        for (tool, att), rows in mi.items():
            a = R.aggregate(rows)
            t = (a.get("0.01") or {}).get("tpr")
            if t is not None and (best is None or t > best[0]):
                best = (t, tool, att, a)
        if best:
            _, tool, att, a = best
            lines.append(f"\nReference, same games: miaudit's best at 1% FPR is {tool} `{att}`: AUC "
                         f"{a['auc'][0]:.3f}, TPR@1% {cell(a, '0.01')}, TPR@0.1% {cell(a, '0.001')}.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
