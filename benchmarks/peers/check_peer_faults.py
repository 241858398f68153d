"""Check the peers' known faults named in issue 4, with miaudit on the same inputs for contrast.

  1. TF Privacy: epsilon lower bound > 0 on pure noise (outputs independent of membership), in how
     many of --trials null games? (Its default EpsilonLowerBound maximises over every threshold, both
     directions, on the same data it certifies on.) miaudit's split-half bound on the same scores.
  2. ART: label-only decision-boundary attack not reproducible under a fixed seed (np.random.seed);
     also the rule-based attack's probabilities on a 2-class model (fault_art.py, in the ART env).
  3. Privacy Meter 1.0.1: does it have RMIA (TPR 0 at 1% FPR on small data)? Does its LOSS
     (population) attack have the wrong sign? How does its reference attack behave at low FPR with
     few reference models? On a synthetic game with a known, strong per-example signal.

usage: nice python benchmarks/peers/check_peer_faults.py [--trials 20] [--out benchmarks/peers/FAULTS.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ENV = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def py(envs: str, name: str) -> str:
    return str(Path(envs) / name / "bin" / "python")


def null_bundle(path: Path, seed: int, n: int, c: int) -> None:
    rng = np.random.default_rng([seed, 4242])
    labels = rng.integers(0, c, size=n)
    logits = rng.normal(0.0, 2.0, size=(n, c))
    is_member = np.zeros(n, dtype=bool)
    is_member[rng.permutation(n)[: n // 2]] = True
    np.savez(path, labels=labels, target_logits=logits, is_member=is_member)


def check_tfprivacy(args: argparse.Namespace, tmp: Path) -> dict:
    from miaudit.metrics import epsilon_lower_bound

    exe = py(args.envs, "tfprivacy")
    if not Path(exe).exists():
        return {"error": f"env missing: {exe}"}
    rows = []
    for t in range(args.trials):
        b, o = tmp / f"null{t}.npz", tmp / f"null{t}.json"
        null_bundle(b, t, args.n, 10)
        proc = subprocess.run([exe, str(HERE / "peer_tfprivacy.py"), str(b), str(o), "--seed", str(t),
                               "--attacks", args.tfp_attacks], capture_output=True, text=True, env=ENV)
        if not o.exists():
            return {"error": proc.stderr.strip().splitlines()[-1:]}
        res = json.loads(o.read_text())
        with np.load(b) as z:
            m = z["is_member"].astype(bool)
        row = {"trial": t}
        for att, a in res["attacks"].items():
            if a.get("error"):
                row[att] = {"error": a["error"]}
                continue
            s = np.asarray(a["scores"], dtype=float)
            ours = epsilon_lower_bound(m, s, delta=1e-5, confidence=0.95, seed=t)
            row[att] = {"tfp_eps": a["reported"]["epsilon_lower_bound"], "tfp_auc": a["reported"]["auc"],
                        "miaudit_eps": float(getattr(ours, "epsilon", getattr(ours, "value", np.nan)))}
        rows.append(row)
        log(f"  null trial {t}: " + ", ".join(f"{k} tfp {v.get('tfp_eps', 'err'):.3g} / miaudit {v.get('miaudit_eps', float('nan')):.3g}"
                                             for k, v in row.items() if k != "trial" and "error" not in v))
    summary = {}
    for att in args.tfp_attacks.split(","):
        vals = [r[att] for r in rows if att in r and "error" not in r[att]]
        summary[att] = {
            "trials": len(vals),
            "tfp_eps_positive": sum(v["tfp_eps"] > 0 for v in vals),
            "tfp_eps_mean": float(np.mean([v["tfp_eps"] for v in vals])) if vals else None,
            "tfp_eps_max": float(np.max([v["tfp_eps"] for v in vals])) if vals else None,
            "miaudit_eps_positive": sum(v["miaudit_eps"] > 0 for v in vals),
            "miaudit_eps_max": float(np.max([v["miaudit_eps"] for v in vals])) if vals else None,
        }
    return {"n_examples": args.n, "game": "logits ~ N(0, 2^2) iid, labels uniform over 10 classes, "
            "membership a random half, independent of the outputs", "summary": summary, "trials": rows}


def check_art(args: argparse.Namespace, tmp: Path) -> dict:
    exe = py(args.envs, "art")
    if not Path(exe).exists():
        return {"error": f"env missing: {exe}"}
    o = tmp / "fault_art.json"
    proc = subprocess.run([exe, str(HERE / "fault_art.py"), str(o), "--n", "10", "--repeats", "3"],
                          capture_output=True, text=True, env=ENV)
    if not o.exists():
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(o.read_text())


def synthetic_reference_bundle(path: Path, seed: int, n: int, k: int) -> None:
    """Per-example difficulty + membership shift; logits = [phi, 0, ..., 0] (class 0 true)."""
    from miaudit.audit import balanced_membership

    rng = np.random.default_rng([seed, 99])
    c = 10
    labels = np.zeros(n, dtype=np.int64)
    diff = rng.normal(2.0, 1.5, size=n)
    shift = rng.exponential(1.0, size=n)

    def outputs(member: np.ndarray) -> np.ndarray:
        phi = diff + shift * member + rng.normal(0, 0.4, size=member.shape)
        z = np.zeros(member.shape + (c,))
        z[..., 0] = phi
        return z

    is_member = np.zeros(n, dtype=bool)
    is_member[rng.permutation(n)[: n // 2]] = True
    ref_is_member = balanced_membership(n, k, seed=seed)
    pop = rng.normal(2.0, 1.5, size=n // 2) + rng.normal(0, 0.4, size=n // 2)
    pz = np.zeros((n // 2, c))
    pz[:, 0] = pop
    np.savez(path, labels=labels, target_logits=outputs(is_member), is_member=is_member,
             ref_logits=outputs(ref_is_member).astype(np.float32), ref_is_member=ref_is_member,
             population_logits=pz, population_labels=np.zeros(n // 2, dtype=np.int64))


def check_privacymeter(args: argparse.Namespace, tmp: Path) -> dict:
    exe = py(args.envs, "privacymeter")
    if not Path(exe).exists():
        return {"error": f"env missing: {exe}"}
    out: dict = {}
    listing = subprocess.run([exe, "-c", "import pkgutil, privacy_meter; print(sorted(m.name for m in "
                              "pkgutil.iter_modules(privacy_meter.__path__)))"], capture_output=True, text=True)
    out["modules"] = listing.stdout.strip()
    grep = subprocess.run([exe, "-c", "import privacy_meter, pathlib; p = pathlib.Path(privacy_meter.__file__).parent; "
                           "print(sum('rmia' in f.read_text().lower() for f in p.glob('*.py')))"],
                          capture_output=True, text=True)
    out["files_mentioning_rmia"] = grep.stdout.strip()
    from miaudit.api import run_attacks
    from miaudit.data import load_bundle
    from miaudit.metrics import evaluate_scores

    runs = []
    for k in (4, 8, 16):
        b, o = tmp / f"synth_k{k}.npz", tmp / f"pm_k{k}.json"
        synthetic_reference_bundle(b, 0, args.n, k)
        subprocess.run([exe, str(HERE / "peer_privacymeter.py"), str(b), str(o)], capture_output=True, text=True, env=ENV)
        res = json.loads(o.read_text())
        bundle = load_bundle(str(b))
        run = run_attacks(bundle, ["loss", "attack_r", "lira_online", "rmia"], seed=0)
        ours = {name: evaluate_scores(bundle.is_member, s, fprs=(1e-3, 1e-2)).to_dict() for name, s in run.scores.items()}
        row = {"k": k, "n": args.n}
        for att in ("population", "reference"):
            a = res["attacks"][att]
            if a.get("error"):
                row[f"pm_{att}"] = {"error": a["error"]}
                continue
            ops = a["operating_points"]
            fpr = np.asarray(ops["fp"]) / ops["n_nonmembers"]
            pos = fpr[fpr > 0]
            row[f"pm_{att}"] = {"auc": a["reported"]["auc"], "tpr@1%": a["reported"]["tpr_at_fpr"]["0.01"],
                                "tpr@0.1%": a["reported"]["tpr_at_fpr"]["0.001"],
                                "smallest_positive_fpr": float(pos.min()) if pos.size else None}
        for name, d in ours.items():
            row[f"miaudit_{name}"] = {"auc": d["auc"], "tpr@1%": d["tpr_at_fpr"]["0.01"], "tpr@0.1%": d["tpr_at_fpr"]["0.001"]}
        runs.append(row)
        log(f"  PM synthetic K={k}: " + json.dumps({kk: vv for kk, vv in row.items() if kk.startswith(('pm_', 'miaudit_'))}))
    out["synthetic_reference_game"] = {
        "game": "class-0 logit phi_i = d_i + s_i * member + N(0, 0.4^2), d ~ N(2, 1.5^2), s ~ Exp(1); "
                "members have HIGHER confidence / LOWER loss; balanced K reference models",
        "runs": runs,
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--n", type=int, default=2000, help="examples per game (half members)")
    ap.add_argument("--tfp-attacks", default="threshold,lr")
    ap.add_argument("--envs", default="/work/peer-envs")
    ap.add_argument("--only", default="tfprivacy,art,privacymeter")
    ap.add_argument("--out", default=str(HERE / "FAULTS.json"))
    args = ap.parse_args()
    report: dict = {"generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, fn in (("tfprivacy", check_tfprivacy), ("art", check_art), ("privacymeter", check_privacymeter)):
            if name not in args.only.split(","):
                continue
            log(f"checking {name} ...")
            try:
                report[name] = fn(args, tmp)
            except Exception as exc:  # noqa: BLE001
                report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            log(f"{name}: " + json.dumps(report[name].get("summary", {k: v for k, v in report[name].items()
                                                                     if k not in ("trials", "runs")}))[:1500])
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
