"""Write a results.json's verdict and its strongest attack's headline figures as a short markdown note.

Used for orientation next to ``bench_null_games.py``: the verdict on a config that DOES leak
(``examples/digits_mlp.toml``), so a change that silences false positives on null games can be checked not
to silence real leakage too. Works with today's results.json (verdict rebuilt with
``miaudit.report.make_verdict``) and with a results.json that carries a top-level ``"verdict"`` object.

Usage (from the repository root, PYTHONPATH=src)::

    nice -n 19 python -m miaudit audit examples/digits_mlp.toml --out /tmp/digits_mlp
    python benchmarks/verdict_headline.py /tmp/digits_mlp/results.json --out-md benchmarks/results/verdict_before.md \\
        --command "nice -n 19 python -m miaudit audit examples/digits_mlp.toml --out /tmp/digits_mlp" --seconds 123
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _ci(ci) -> str:
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if isinstance(ci, (list, tuple)) and len(ci) == 2 else "n/a"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path)
    p.add_argument("--out-md", type=Path, required=True)
    p.add_argument("--command", default="")
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--title", default="Verdict on the leaking example config examples/digits_mlp.toml")
    a = p.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    res = json.loads(a.results.read_text())
    attacks, game = res.get("attacks") or {}, res.get("game") or {}
    if isinstance(res.get("verdict"), dict):
        v = res["verdict"]
        level, title = v.get("level"), v.get("title")
        claimed = v.get("leakage_detected")
        # new schema: "attack" is the deciding attack; the strongest (ranking[0]) is game.strongest_attack
        strongest = game.get("strongest_attack") or v.get("attack") or v.get("strongest")
        source = "results.json verdict"
    else:
        from miaudit.report import make_verdict

        v = make_verdict(attacks, res.get("settings"), game)
        level, title, strongest = v.level, v.title, v.strongest
        claimed = level in ("high", "measurable")
        source = "make_verdict (rebuilt from results.json)"
    if not isinstance(strongest, str):
        strongest = game.get("strongest_attack")
    m = attacks.get(strongest, {})
    lines = [f"# {a.title}", ""]
    if a.command:
        lines += ["Command:", "", f"    {a.command}", ""]
    if a.seconds is not None:
        lines += [f"Wall time: {a.seconds:.0f} s (2 shared cores, nice -n 19).", ""]
    lines += [
        f"- verdict level: **{level}** ({source}); leakage claimed: {claimed}",
        f"- verdict title: {title}",
        *([f"- verdict sentence: {v.get('sentence')}",
           f"- deciding test: attack {v.get('attack')}, figure {v.get('figure')}, estimate {v.get('estimate')}, "
           f"interval {v.get('interval')} (confidence {v.get('interval_confidence')}), chance {v.get('chance')}, "
           f"{v.get('n_members')} members / {v.get('n_nonmembers')} non-members held out, target {v.get('target')}",
           f"- rule: method {(v.get('rule') or {}).get('method')}, alpha {(v.get('rule') or {}).get('alpha')}, "
           f"high {(v.get('rule') or {}).get('high')}, n_targets {(v.get('rule') or {}).get('n_targets')}, "
           f"n_candidates {(v.get('rule') or {}).get('n_candidates')}"]
          if isinstance(res.get("verdict"), dict) else []),
        f"- game: {game.get('n_models')} models, {game.get('n_targets')} targets, n_references (as reported) "
        f"{game.get('n_references')}, {game.get('n_members')} members / {game.get('n_nonmembers')} non-members pooled; "
        f"train acc {game.get('train_accuracy')}, test acc {game.get('test_accuracy')}",
        f"- strongest attack: **{strongest}**",
        f"  - AUC {m.get('auc')} {_ci(m.get('auc_ci'))}",
    ]
    for f, t in (m.get("tpr_at_fpr") or {}).items():
        lines.append(f"  - TPR@FPR={f}: {t} {_ci((m.get('tpr_at_fpr_ci') or {}).get(f))}")
    lines.append(f"  - epsilon lower bound: {m.get('epsilon_lower_bound')}")
    lines += ["", "All attacks:", "", "| attack | AUC | AUC CI | eps LB |", "|---|---|---|---|"]
    for name, mm in sorted(attacks.items(), key=lambda kv: -(kv[1].get("auc") or 0)):
        auc = mm.get("auc")
        lines.append(f"| {name} | {auc:.4f} | {_ci(mm.get('auc_ci'))} | {mm.get('epsilon_lower_bound')} |"
                     if isinstance(auc, (int, float)) else f"| {name} | n/a | n/a | n/a |")
    md = "\n".join(lines) + "\n"
    print(md)
    a.out_md.parent.mkdir(parents=True, exist_ok=True)
    a.out_md.write_text(md)


if __name__ == "__main__":
    main()
