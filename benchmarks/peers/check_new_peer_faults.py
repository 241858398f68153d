"""Fault checks for the issue-15 peers (LeakPro, SACRO-ML, Privacy Meter's scripts), main env, run by hand.

  1. Null games (outputs independent of membership): SACRO-ML's QMIA as designed fits its quantile regressor on
     the very non-members it then scores; does it find "leakage" where there is none? Its held-out variant
     (regressor fitted on separate non-members) and its worst-case attack for contrast. --trials games of
     n examples (half members), features N(0, 1), probabilities Dirichlet(1), labels uniform, none depending on
     membership; a claim = the AUC's 95% interval (miaudit.metrics) above 0.5.
  2. From the stored games of run_peers.py (--games): Privacy Meter scripts' RMIA score granularity (its score is
     the fraction of population z beaten, so it takes at most |Z| + 1 values): how many non-members share the
     top score, and the TPR@1% it can reach, next to miaudit's RMIA on the same game; its LOSS and LeakPro's
     population attack AUC (sign).

usage: nice python benchmarks/peers/check_new_peer_faults.py [--trials 20] [--games DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
       "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def null_game(d: Path, seed: int, n: int, c: int, f: int) -> None:
    rng = np.random.default_rng([seed, 1515])
    X = rng.normal(size=(n, f)).astype(np.float32)
    Xp = rng.normal(size=(n, f)).astype(np.float32)
    y, yp = rng.integers(0, c, n), rng.integers(0, c, n)
    p, pp = rng.dirichlet(np.ones(c), n), rng.dirichlet(np.ones(c), n)
    m = np.zeros(n, dtype=bool)
    m[rng.permutation(n)[: n // 2]] = True
    np.savez(d / "bundle.npz", labels=y, target_logits=np.log(p), is_member=m, population_logits=np.log(pp),
             population_labels=yp)
    np.savez(d / "features.npz", X=X, y=y, X_population=Xp, y_population=yp,
             recipe=np.array(json.dumps({"kind": "sklearn_mlp", "params": {}, "n_classes": c})))


def check_null(args: argparse.Namespace) -> dict:
    from miaudit.metrics import evaluate_scores

    rows: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for t in range(args.trials):
            d = Path(tmp) / f"g{t}"
            d.mkdir()
            null_game(d, t, args.n, 10, 8)
            subprocess.run([f"{args.envs}/sacroml/bin/python", str(HERE / "peer_sacroml.py"), str(d / "bundle.npz"),
                            str(d / "out.json"), "--features", str(d / "features.npz"), "--workdir", str(d / "w"),
                            "--k", "", "--modes", "", "--seed", str(t)], env=ENV, capture_output=True, check=False)
            out = json.loads((d / "out.json").read_text())
            m = np.load(d / "bundle.npz")["is_member"]
            for name, a in out["attacks"].items():
                if a.get("scores") is None:
                    rows.setdefault(name, []).append({"error": a.get("error")})
                    continue
                r = evaluate_scores(m, np.asarray(a["scores"]), fprs=(0.01,), seed=t).to_dict()
                rows.setdefault(name, []).append({"auc": r["auc"], "auc_ci": r.get("auc_ci"),
                                                  "tpr_at_1pct": r["tpr_at_fpr"]["0.01"],
                                                  "reported_auc": (a.get("reported") or {}).get("auc")})
    return {"game": f"{args.trials} null games, n={args.n} (half members), 10 classes, 8 N(0,1) features, "
                    "Dirichlet(1) probabilities independent of membership; population set of n more",
            "summary": summarize(rows, args.n), "trials": rows}


def summarize(rows: dict, n: int) -> dict:
    from miaudit.metrics import clopper_pearson

    summary = {}
    for name, rs in rows.items():
        ok = [r for r in rs if "auc" in r]
        claims = sum(1 for r in ok if r["auc_ci"] and r["auc_ci"][0] > 0.5)
        n_pos = n // 2
        tpr_claims = sum(1 for r in ok if r["tpr_at_1pct"] is not None
                         and clopper_pearson(int(round(r["tpr_at_1pct"] * n_pos)), n_pos, confidence=0.95)[0] > 0.01)
        summary[name] = {"trials": len(rs), "errors": len(rs) - len(ok),
                         "auc_mean": float(np.mean([r["auc"] for r in ok])) if ok else None,
                         "auc_ci_above_half": claims, "tpr_at_1pct_ci_above_1pct": tpr_claims,
                         "tpr_at_1pct_mean": float(np.mean([r["tpr_at_1pct"] for r in ok])) if ok else None}
    return summary


def check_games(args: argparse.Namespace) -> dict:
    out = {}
    for g in sorted(Path(args.games).glob("*/seed*")):
        pm, lp = g / "peer_pmrmia.json", g / "peer_leakpro.json"
        if not pm.exists():
            continue
        with np.load(g / "bundle.npz") as z:
            m = z["is_member"].astype(bool)
            n_pop = len(z["population_labels"])
        row: dict = {"n_nonmembers": int((~m).sum()), "n_population_z": int(n_pop)}
        d = json.loads(pm.read_text())
        for name, a in d["attacks"].items():
            if a.get("scores") is None:
                continue
            s = np.asarray(a["scores"])
            from sklearn.metrics import roc_auc_score

            top = s.max()
            row[name] = {"distinct_scores": int(len(np.unique(s))), "auc": float(roc_auc_score(m, s)),
                         "nonmembers_at_top_score": int(((s == top) & ~m).sum()),
                         "members_at_top_score": int(((s == top) & m).sum())}
        mi = g / "miaudit_k8.json"
        if mi.exists():
            r = json.loads(mi.read_text())["attacks"].get("rmia")
            row["miaudit_rmia_k8_tpr_at_1pct"] = r["metrics"]["tpr"]["0.01"]["tpr"] if r else None
        if lp.exists():
            a = json.loads(lp.read_text())["attacks"].get("population")
            if a and a.get("scores") is not None:
                from sklearn.metrics import roc_auc_score

                row["leakpro_population_auc"] = float(roc_auc_score(m, np.asarray(a["scores"])))
        out[f"{g.parent.name}/{g.name}"] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--envs", default="/work/peer-envs")
    ap.add_argument("--games", default="/work/peer-envs/_runs/full")
    ap.add_argument("--out", default=str(HERE / "FAULTS_ISSUE15.json"))
    ap.add_argument("--null-from", help="take the null-game part from this earlier output")
    args = ap.parse_args()
    if args.null_from:  # reuse a finished null-game run (e.g. when only the stored games changed)
        null = json.loads(Path(args.null_from).read_text())["null_games_sacroml"]
        null["summary"] = summarize(null["trials"], args.n)
    else:
        null = check_null(args)
    res = {"null_games_sacroml": null, "stored_games": check_games(args)}
    Path(args.out).write_text(json.dumps(res, indent=1, default=float))
    print(json.dumps({"null": res["null_games_sacroml"]["summary"], "games": res["stored_games"]}, indent=1,
                     default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
