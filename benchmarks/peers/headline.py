"""Headline table from one or more summary.json files written by run_peers.py (best attack per tool).

usage: python benchmarks/peers/headline.py SUMMARY.json [SUMMARY.json ...]
Prints markdown: per target, per tool, the attack with the highest pooled TPR@1% and the one with the
highest pooled TPR@0.1%, with 95% Clopper-Pearson intervals, plus miaudit's best / the tool's best.
"""

from __future__ import annotations

import json
import sys


def pct(t: dict | None) -> str:
    if not t or t.get("tpr") is None:
        return "null" if t else "n/a"
    lo, hi = t["ci"]
    return f"{100 * t['tpr']:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]"


def best(attacks: dict, key: str) -> tuple[str | None, dict | None]:
    cands = [(a[key]["tpr"], name, a) for name, a in attacks.items()
             if isinstance(a, dict) and isinstance(a.get(key), dict) and a[key].get("tpr") is not None]
    if not cands:
        return None, None
    _, name, a = max(cands, key=lambda c: c[0])
    return name, a


def main(paths: list[str]) -> int:
    out = []
    for p in paths:
        games = json.load(open(p))["games"]
        for target, tools in games.items():
            out.append(f"\n**{target}**\n")
            out.append("| tool | best @1%: attack | TPR@1% [95% CI] | AUC | best @0.1%: attack | TPR@0.1% [95% CI] "
                       "| wall s (best @1%) | miaudit best / this @1% | miaudit best / this @0.1% |")
            out.append("|---|---|---|---|---|---|---|---|---|")
            rows = []
            mi = {"0.01": None, "0.001": None}
            for tool, attacks in tools.items():
                if "__error__" in attacks:
                    rows.append((tool, None, None, None, None, attacks["__error__"]))
                    continue
                n1, a1 = best(attacks, "0.01")
                n0, a0 = best(attacks, "0.001")
                rows.append((tool, n1, a1, n0, a0, None))
                if tool.startswith("miaudit"):
                    for key, a in (("0.01", a1), ("0.001", a0)):
                        if a is not None and (mi[key] is None or a[key]["tpr"] > mi[key]):
                            mi[key] = a[key]["tpr"]
            for tool, n1, a1, n0, a0, err in rows:
                if err:
                    out.append(f"| {tool} | failed: {err[:150]} | | | | | | | |")
                    continue
                auc = a1.get("auc") if a1 else None
                auc_s = "n/a" if not auc else f"{auc[0]:.3f}"
                wall = "n/a" if not a1 or a1.get("wall_s") is None else f"{a1['wall_s']:.0f}"

                def ratio(key: str, a: dict | None) -> str:
                    if tool.startswith("miaudit") or a is None or mi[key] is None:
                        return "—"
                    t = a[key]["tpr"]
                    chance = a[key]["ci"][0] <= float(key)
                    if t == 0:
                        return "∞ (this tool: 0)"
                    return f"{mi[key] / t:.1f}x" + (" (this tool at chance)" if chance else "")

                note0 = pct(a0[key0]) if (a0 and (key0 := "0.001")) else (
                    pct(a1.get("0.001")) if a1 else "n/a")
                out.append(f"| {tool} | {n1} | {pct(a1['0.01']) if a1 else 'n/a'} | {auc_s} | {n0 or '—'} | "
                           f"{note0} | {wall} | {ratio('0.01', a1)} | {ratio('0.001', a0)} |")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
