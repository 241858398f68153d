"""Side-by-side benchmark: miaudit vs IBM ART, TensorFlow Privacy and ML Privacy Meter (issue 4).

For each target and seed this script
  1. draws the audit pool (+ a disjoint population set) and the member/non-member split,
  2. trains the target with the miaudit recipe and stores its outputs as a miaudit signal bundle,
  3. trains K_max balanced reference models with miaudit's runner (rows 0..7 form a balanced K=8
     design on their own, rows 0..15 a balanced K=16 design),
  4. runs every peer in its own virtual environment as a subprocess on that SAME bundle,
  5. runs miaudit's registered attacks with K=8 and K=16 reference models,
  6. recomputes every tool's figures with miaudit.metrics.evaluate_scores from its per-example
     scores (or Clopper-Pearson on its operating-point counts when it exposes no scores), and
     keeps the figures as the tool reports them.
Finally it prints one markdown table and writes it to RESULTS.md (or --out).

Run by hand, never in CI. Example (small, quick):
  nice python benchmarks/peers/run_peers.py --targets digits --seeds 0 --quick
Full:
  nice python benchmarks/peers/run_peers.py --targets digits,adult,mnist --seeds 0,1,2 \
      --adult /work/shared/data/adult/adult.csv --mnist /work/shared/data/mnist
Re-print the table from stored game results:  run_peers.py --table-only --targets ... --seeds ...
"""

from __future__ import annotations

import os as _os

for _k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    _os.environ.setdefault(_k, "1")  # 2 shared cores: one BLAS thread per process, parallelism via --jobs

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common as C  # noqa: E402
import targets as T  # noqa: E402

PEERS = {
    "art": ("art", "peer_art.py"),
    "tfprivacy": ("tfprivacy", "peer_tfprivacy.py"),
    "privacymeter": ("privacymeter", "peer_privacymeter.py"),
    "pmrmia": ("pmrmia", "peer_pmrmia.py"),
    "sacroml": ("sacroml", "peer_sacroml.py"),
    "leakpro": ("leakpro", "peer_leakpro.py"),
}
FPRS = (0.001, 0.01)
THREAD_ENV = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


warnings.filterwarnings("ignore", message=".*Maximum iterations.*")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------
def evaluate(is_member: np.ndarray, scores: np.ndarray, seed: int) -> dict:
    try:
        from miaudit.metrics import evaluate_scores
    except Exception:  # noqa: BLE001 - miaudit.metrics not built yet
        return C.fallback_metrics(is_member, scores)
    d = evaluate_scores(is_member, scores, fprs=(1e-3, 1e-2, 1e-1), seed=seed).to_dict()
    d["source"] = "miaudit"
    return d


def from_operating_points(ops: dict) -> dict:
    """TPR@FPR with Clopper-Pearson intervals from a tool's (fp, tp) counts at its own thresholds."""
    try:
        from miaudit.metrics import clopper_pearson
    except Exception:  # noqa: BLE001
        clopper_pearson = None
    fp, tp = np.asarray(ops["fp"]), np.asarray(ops["tp"])
    npos, nneg = ops["n_members"], ops["n_nonmembers"]
    out = {"tpr_at_fpr": {}, "tpr_at_fpr_detail": {}, "auc": None, "epsilon_lower_bound": None,
           "source": "operating points"}
    for f in FPRS:
        key = str(f)
        if f * nneg < 1:
            out["tpr_at_fpr"][key] = None
            out["tpr_at_fpr_detail"][key] = {"tpr": None, "n_members": npos, "n_nonmembers": nneg,
                                             "ci_low": None, "ci_high": None}
            continue
        ok = fp <= math.floor(f * nneg + 1e-9)
        k = int(tp[ok].max()) if ok.any() else 0
        if clopper_pearson is not None:
            lo, hi = clopper_pearson(k, npos, confidence=0.95)
        else:
            lo, hi = C.clopper_pearson(k, npos)
        out["tpr_at_fpr"][key] = k / npos
        out["tpr_at_fpr_detail"][key] = {"tpr": k / npos, "ci_low": lo, "ci_high": hi,
                                         "n_members": npos, "n_nonmembers": nneg}
    return out


def slim(metrics: dict) -> dict:
    """What the table needs from an AttackMetrics dict (keeps JSON small)."""
    det = metrics.get("tpr_at_fpr_detail") or {}
    tpr = {}
    for f in FPRS:
        key = str(f)
        d = det.get(key) or {}
        t = (metrics.get("tpr_at_fpr") or {}).get(key)
        ci = (metrics.get("tpr_at_fpr_ci") or {}).get(key)
        tpr[key] = {"tpr": t, "n_members": d.get("n_members", metrics.get("n_members")),
                    "n_nonmembers": d.get("n_nonmembers", metrics.get("n_nonmembers")),
                    "ci": ci if ci is not None else ([d.get("ci_low"), d.get("ci_high")] if d.get("ci_low") is not None else None),
                    "reason": d.get("reason")}
    return {"auc": metrics.get("auc"), "auc_ci": metrics.get("auc_ci"), "tpr": tpr,
            "eps": metrics.get("epsilon_lower_bound"), "source": metrics.get("source")}


# ------------------------------------------------------------------------------------------------
# one game
# ------------------------------------------------------------------------------------------------
def load_target(name: str, args: argparse.Namespace) -> T.Target:
    if name == "digits":
        return T.load_digits_target(n_audit=700 if args.quick else 1400)
    if name == "adult":
        if not args.adult:
            raise SystemExit("--adult PATH is needed for the adult target")
        return T.load_adult_target(args.adult, n_audit=2000 if args.quick else args.adult_pool,
                                   n_population=500 if args.quick else 2000)
    if name == "mnist":
        if not args.mnist:
            raise SystemExit("--mnist DIR is needed for the mnist target")
        return T.load_mnist_target(args.mnist, n_audit=1000 if args.quick else 2000,
                                   n_population=300 if args.quick else 500)
    raise SystemExit(f"unknown target {name!r}; use digits, adult, mnist")


def prepare_game(target: T.Target, seed: int, gdir: Path, args: argparse.Namespace) -> dict:
    """Train the target and the reference models; write bundle.npz and features.npz."""
    from miaudit.audit import balanced_membership, draw_membership
    from miaudit.training import model_seeds, train_models

    gdir.mkdir(parents=True, exist_ok=True)
    info_path = gdir / "game.json"
    if info_path.exists() and (gdir / "bundle.npz").exists():
        return json.loads(info_path.read_text())
    recipe = T.make_recipe(target)
    idx = T.draw(target, seed)
    Xa, ya = target.X[idx["audit"]], target.y[idx["audit"]]
    Xp, yp = target.X[idx["population"]], target.y[idx["population"]]
    is_member = draw_membership(len(ya), seed=seed)

    t0 = time.perf_counter()
    model = recipe.train(Xa[is_member], ya[is_member], seed=10_000 + seed)
    t_target = time.perf_counter() - t0
    la = np.asarray(recipe.predict_logits(model, Xa), dtype=np.float64)
    lp = np.asarray(recipe.predict_logits(model, Xp), dtype=np.float64)
    acc_tr = float((la[is_member, 0].argmax(1) == ya[is_member]).mean())
    acc_te = float((la[~is_member, 0].argmax(1) == ya[~is_member]).mean())
    log(f"{target.name} seed {seed}: target trained in {t_target:.1f}s, train acc {acc_tr:.3f}, test acc {acc_te:.3f}")

    kmax = max(args.k)
    # K=16 = two independent balanced K=8 designs stacked: rows [0, 8) are balanced on their own.
    blocks = [balanced_membership(len(ya), 8, seed=np.random.SeedSequence([seed, 500 + b])) for b in range(max(1, kmax // 8))]
    membership = np.concatenate(blocks)[:kmax]
    seeds = model_seeds(seed, kmax)
    Xall, yall = np.concatenate([Xa, Xp]), np.concatenate([ya, yp])
    membership_all = np.concatenate([membership, np.zeros((kmax, len(yp)), dtype=bool)], axis=1)
    ref_wall: dict[str, float] = {}
    ref_wall_note = "measured"
    ref_logits = None
    done = 0
    for k in sorted(args.k):
        t0 = time.perf_counter()
        # the references also predict the population set (never trained on it): Privacy Meter's RMIA
        # needs every model's outputs on its population samples z
        trained = train_models(recipe, Xall, yall, membership_all[:k], seeds=seeds[:k], run_dir=gdir / "refs",
                               jobs=args.jobs)
        wall = time.perf_counter() - t0
        n_new = int(np.sum(trained.trained_now))
        if n_new < k - done:  # some models came from the cache (an interrupted run): estimate, and say so
            fresh = ~np.asarray(trained.trained_now)[done:k]
            est = float(np.sum(np.asarray(trained.fit_seconds)[done:k][fresh]
                               + np.asarray(trained.predict_seconds)[done:k][fresh])) / max(1, args.jobs)
            wall += est
            ref_wall_note = "estimated from cached models' recorded fit time / jobs"
            log(f"  {k - done - n_new} cached models: wall estimated (+{est:.1f}s)")
        ref_wall[str(k)] = (ref_wall.get(str(done), 0.0) if done else 0.0) + wall
        done = k
        ref_logits = trained.logits
        log(f"  {k} reference models ready (cumulative wall {ref_wall[str(k)]:.1f}s)")

    rl = np.asarray(ref_logits, dtype=np.float32)[:, :, 0, :]
    na = len(ya)
    np.savez(gdir / "bundle.npz", labels=ya, target_logits=la[:, 0, :], is_member=is_member,
             population_logits=lp[:, 0, :], population_labels=yp,
             ref_logits=rl[:, :na], ref_is_member=membership, ref_population_logits=rl[:, na:])
    np.savez(gdir / "features.npz", X=Xa.astype(np.float32), y=ya, X_population=Xp.astype(np.float32),
             y_population=yp, recipe=np.array(json.dumps(T.recipe_json(target))), **T.export_model(model))
    info = {"target": target.name, "seed": seed, "n_audit": int(len(ya)), "n_members": int(is_member.sum()),
            "n_nonmembers": int((~is_member).sum()), "n_population": int(len(yp)),
            "train_accuracy": acc_tr, "test_accuracy": acc_te, "target_train_s": t_target,
            "ref_train_wall_s": ref_wall, "ref_wall_note": ref_wall_note, "k_max": kmax, "recipe": recipe.spec(), "note": target.note}
    info_path.write_text(json.dumps(info, indent=1))
    return info


def run_peer(peer: str, gdir: Path, seed: int, args: argparse.Namespace, kmax: int) -> dict:
    env_name, script = PEERS[peer]
    py = Path(args.envs) / env_name / "bin" / "python"
    out = gdir / f"peer_{peer}.json"
    if out.exists() and not args.rerun_peers:
        return json.loads(out.read_text())
    if not py.exists():
        res = {"peer": peer, "error": f"virtual environment missing: {py} (run benchmarks/peers/setup_envs.sh)",
               "attacks": {}}
        out.write_text(json.dumps(res))
        return res
    bundle = gdir / "bundle.npz"
    cmd = ["nice", "-n", "5", str(py), str(HERE / script), str(bundle), str(out), "--seed", str(seed)]
    if peer == "art":
        cmd += ["--features", str(gdir / "features.npz"), "--shadow-k", str(min(8, kmax))]
    if peer in ("pmrmia", "sacroml", "leakpro"):
        cmd += ["--features", str(gdir / "features.npz"), "--k", ",".join(str(k) for k in args.k),
                "--workdir", str(gdir / f"{peer}_work")]
    if peer == "pmrmia":
        cmd += ["--pm-src", args.pm_src]
    env = dict(os.environ, **THREAD_ENV)
    env.pop("PYTHONPATH", None)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.peer_timeout, env=env)
        tail = (proc.stderr or "").strip().splitlines()[-5:]
    except subprocess.TimeoutExpired:
        res = {"peer": peer, "error": f"timed out after {args.peer_timeout}s", "attacks": {}}
        out.write_text(json.dumps(res))
        return res
    wall = time.perf_counter() - t0
    if not out.exists():
        res = {"peer": peer, "error": f"exit {proc.returncode}: " + " | ".join(tail), "attacks": {}}
        out.write_text(json.dumps(res))
        return res
    res = json.loads(out.read_text())
    res["process_wall_s"] = wall
    out.write_text(json.dumps(res))
    return res


def failure_text(a: dict, width: int) -> str:
    """The first error of an aggregated attack row, safe inside a markdown table cell."""
    return str((a.get("errors") or ["no result"])[0]).replace("|", "/")[:width]


def auc_cells(a: dict) -> tuple[str, str]:
    """(AUC mean ± sd over seeds, AUC as the tool reports it) of an aggregated attack row."""
    auc = a.get("auc")
    auc_s = "n/a" if not auc else f"{auc[0]:.3f} ± {auc[1]:.3f}"
    rauc = "—" if a.get("auc_reported") is None else f"{a['auc_reported']:.3f}"
    return auc_s, rauc


def run_miaudit(gdir: Path, info: dict, k: int, seed: int) -> dict:
    out = gdir / f"miaudit_k{k}.json"
    if out.exists():
        return json.loads(out.read_text())
    from miaudit.api import run_attacks
    from miaudit.data import SignalBundle

    with np.load(gdir / "bundle.npz", allow_pickle=False) as z:
        b = {key: z[key] for key in z.files}
    t0 = time.perf_counter()
    bundle = SignalBundle.from_arrays(
        labels=b["labels"], target_logits=b["target_logits"], is_member=b["is_member"],
        ref_logits=b["ref_logits"][:k], ref_is_member=b["ref_is_member"][:k],
        population_logits=b["population_logits"], population_labels=b["population_labels"])
    run = run_attacks(bundle, None, seed=seed)
    score_s = time.perf_counter() - t0
    attacks = {}
    for name, s in run.scores.items():
        attacks[name] = {"scores": None, "metrics": slim(evaluate(b["is_member"], s, seed)),
                         "wall_s": score_s + info["ref_train_wall_s"][str(k)], "error": None}
    res = {"peer": f"miaudit K={k}", "attacks": attacks, "skipped": dict(run.skipped), "score_s": score_s}
    out.write_text(json.dumps(res, default=C._jsonable))
    return res


def run_miaudit_pipeline(target: T.Target, gdir: Path, k: int, seed: int, args: argparse.Namespace) -> dict:
    """miaudit through its public entry point run_audit_with_target: trains its OWN K reference models
    (its balanced design, its seeds) and queries the target itself; the wall time is the whole call."""
    out = gdir / f"miaudit_pipeline_k{k}.json"
    if out.exists():
        return json.loads(out.read_text())
    from miaudit.audit import run_audit_with_target

    with np.load(gdir / "bundle.npz", allow_pickle=False) as z:
        m = z["is_member"].astype(bool)
        stored = z["target_logits"]
    recipe = T.make_recipe(target)
    idx = T.draw(target, seed)
    Xa, ya = target.X[idx["audit"]], target.y[idx["audit"]]
    model = recipe.train(Xa[m], ya[m], seed=10_000 + seed)  # the same target (same data, same seed)
    again = np.asarray(recipe.predict_logits(model, Xa), dtype=np.float64)[:, 0, :]
    same = bool(np.allclose(again, stored, atol=1e-6))
    t0 = time.perf_counter()
    result = run_audit_with_target(recipe, model, Xa[m], ya[m], Xa[~m], ya[~m], n_references=k, seed=seed,
                                   run_dir=gdir / f"pipeline_k{k}", jobs=args.jobs)
    wall = time.perf_counter() - t0
    attacks = {name: {"scores": None, "metrics": slim({**d, "source": "miaudit"}), "wall_s": wall, "error": None}
               for name, d in ((n, m.to_dict()) for n, m in result.metrics.items())}
    res = {"peer": f"miaudit pipeline K={k}", "attacks": attacks, "skipped": dict(result.skipped),
           "wall_s": wall, "target_outputs_identical_to_bundle": same}
    out.write_text(json.dumps(res, default=C._jsonable))
    return res


def peer_rows(res: dict, is_member: np.ndarray, seed: int) -> dict:
    rows = {}
    for name, a in (res.get("attacks") or {}).items():
        row = {"error": a.get("error"), "wall_s": a.get("wall_s"), "reported": a.get("reported") or {},
               "note": a.get("note")}
        if a.get("scores") is not None:
            sc = np.asarray([np.nan if v is None else v for v in a["scores"]], dtype=float)
            scored = ~np.isnan(sc)  # a subset attack (HSJ, OSLO) leaves unscored rows null: figures on the scored rows
            row["metrics"] = slim(evaluate(is_member[scored], sc[scored], seed))
            row["n_scored"] = int(scored.sum())
        elif a.get("operating_points"):
            m = from_operating_points(a["operating_points"])
            m["auc"] = (a.get("reported") or {}).get("auc")
            row["metrics"] = slim(m)
        else:
            row["metrics"] = a.get("metrics")
        rows[name] = row
    return rows


# ------------------------------------------------------------------------------------------------
# aggregation and table
# ------------------------------------------------------------------------------------------------
def cp(k: int, n: int) -> tuple[float, float]:
    try:
        from miaudit.metrics import clopper_pearson

        return clopper_pearson(k, n, confidence=0.95)
    except Exception:  # noqa: BLE001
        return C.clopper_pearson(k, n)


def aggregate(per_seed: list[dict]) -> dict:
    """Pool one (tool, attack) over seeds: AUC mean/sd; TPR@FPR = pooled counts with a CP interval."""
    ok = [r for r in per_seed if r.get("metrics") and not r.get("error")]
    errs = [r["error"] for r in per_seed if r.get("error")]
    agg: dict[str, Any] = {"n_seeds": len(ok), "errors": errs}
    if not ok:
        return agg
    aucs = [r["metrics"]["auc"] for r in ok if r["metrics"].get("auc") is not None]
    agg["auc"] = (float(np.mean(aucs)), float(np.std(aucs))) if aucs else None
    for f in FPRS:
        key = str(f)
        ks, ns, nneg, reasons = 0, 0, 0, []
        usable = True
        for r in ok:
            t = r["metrics"]["tpr"][key]
            if t["tpr"] is None:
                usable = False
                reasons.append(f"{t.get('n_nonmembers')} non-members < 1/FPR" if t.get("n_nonmembers")
                               else (t.get("reason") or "not supported"))
                continue
            ks += int(round(t["tpr"] * t["n_members"]))
            ns += int(t["n_members"])
            nneg += int(t["n_nonmembers"])
        if usable and ns:
            lo, hi = cp(ks, ns)
            agg[key] = {"tpr": ks / ns, "ci": (lo, hi), "n_members": ns, "n_nonmembers": nneg}
        else:
            agg[key] = {"tpr": None, "reason": reasons[0] if reasons else "no data"}
        rep = [r["reported"].get("tpr_at_fpr", {}).get(key) for r in ok if r.get("reported")]
        rep = [v for v in rep if v is not None]
        agg[f"reported_{key}"] = float(np.mean(rep)) if rep else None
    eps = [r["metrics"].get("eps") for r in ok if r["metrics"].get("eps") is not None]
    agg["eps"] = float(np.mean(eps)) if eps else None
    reps = [r["reported"].get("epsilon_lower_bound") for r in ok if r.get("reported")]
    reps = [v for v in reps if v is not None]
    agg["eps_reported"] = float(np.mean(reps)) if reps else None
    raucs = [r["reported"].get("auc") for r in ok if r.get("reported") and r["reported"].get("auc") is not None]
    agg["auc_reported"] = float(np.mean(raucs)) if raucs else None
    walls = [r["wall_s"] for r in ok if r.get("wall_s") is not None]
    agg["wall_s"] = float(np.mean(walls)) if walls else None
    return agg


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def fmt_tpr(a: dict, key: str, counts: bool = False) -> str:
    """TPR at FPR ``key`` with its interval (and ``(members/non-members)`` behind it with ``counts``)."""
    t = a.get(key) or {}
    if t.get("tpr") is None:
        return f"null ({t.get('reason', 'n/a')})"
    lo, hi = t["ci"]
    behind = f" ({t['n_members']}/{t['n_nonmembers']})" if counts else ""
    return f"{100 * t['tpr']:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]{behind}"


def build_table(games: dict, infos: dict) -> str:
    lines = []
    for tname, per_tool in games.items():
        info = infos.get(tname, [])
        if info:
            i0 = info[0]
            lines.append(f"\n### {tname}: {len(info)} seed(s), {i0['n_members']} members / {i0['n_nonmembers']} "
                         f"non-members per seed, population {i0['n_population']}; target train acc "
                         f"{np.mean([i['train_accuracy'] for i in info]):.3f}, test acc "
                         f"{np.mean([i['test_accuracy'] for i in info]):.3f}\n")
        lines.append("| tool | attack | AUC (mean ± sd) | AUC as reported | TPR@0.1% [95% CI] | TPR@1% [95% CI] "
                     "| TPR@0.1% / @1% as reported | eps LB (miaudit bound) | eps LB as reported | wall s |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        best: dict[str, dict[str, float]] = {}
        for tool, attacks in per_tool.items():
            if "__error__" in attacks:
                lines.append(f"| {tool} | (all) | failed: {attacks['__error__'][:200]} | | | | | | | |")
                continue
            for att, a in attacks.items():
                if not a.get("n_seeds"):
                    lines.append(f"| {tool} | {att} | failed: {failure_text(a, 200)} | | | | | | | |")
                    continue
                auc_s, rauc = auc_cells(a)
                rep = "—"
                if a.get("reported_0.001") is not None or a.get("reported_0.01") is not None:
                    rep = f"{fmt_pct(a.get('reported_0.001'))} / {fmt_pct(a.get('reported_0.01'))}"
                eps = "n/a" if a.get("eps") is None else f"{a['eps']:.2f}"
                reps = "—" if a.get("eps_reported") is None else f"{a['eps_reported']:.2f}"
                wall = "n/a" if a.get("wall_s") is None else f"{a['wall_s']:.1f}"
                lines.append(f"| {tool} | {att} | {auc_s} | {rauc} | {fmt_tpr(a, '0.001')} | {fmt_tpr(a, '0.01')} "
                             f"| {rep} | {eps} | {reps} | {wall} |")
                for key in ("0.001", "0.01"):
                    t = (a.get(key) or {}).get("tpr")
                    if t is not None and t > best.setdefault(tool, {}).get(key, -1.0):
                        best[tool][key] = t
                        best[tool][key + "_ci"] = (a.get(key) or {}).get("ci")
                        best[tool][key + "_att"] = att
        mi = {k: max((best[t].get(k, -1) for t in best if t.startswith("miaudit")), default=-1)
              for k in ("0.001", "0.01")}
        lines.append("")
        lines.append("| peer | peer's best TPR@1% (attack) | miaudit best / peer best @1% | peer's best TPR@0.1% (attack) | "
                     "miaudit best / peer best @0.1% |")
        lines.append("|---|---|---|---|---|")
        for tool in best:
            if tool.startswith("miaudit"):
                continue
            cells = []
            for key in ("0.01", "0.001"):
                pb = best[tool].get(key)
                if pb is None:
                    cells += ["n/a", "n/a"]
                    continue
                ci = best[tool].get(key + "_ci")
                chance = ci is not None and ci[0] <= float(key)
                who = f"{fmt_pct(pb)} ({best[tool].get(key + '_att')}{'; CI includes chance' if chance else ''})"
                if mi[key] < 0:
                    cells += [who, "n/a"]
                elif pb == 0:
                    cells += [who, "∞ (peer 0)"]
                else:
                    cells += [who, f"{mi[key] / pb:.1f}x" + (" (peer at chance: ratio unstable)" if chance else "")]
            lines.append(f"| {tool} | " + " | ".join(cells) + " |")
        mi_att = {k: max(((best[t].get(k, -1), f"{t} {best[t].get(k + '_att')}") for t in best
                          if t.startswith("miaudit") and best[t].get(k) is not None), default=(-1, "no figure"))[1]
                  for k in ("0.001", "0.01")}
        lines.append(f"\nmiaudit best: TPR@1% {fmt_pct(mi['0.01'] if mi['0.01'] >= 0 else None)} ({mi_att['0.01']}), "
                     f"TPR@0.1% {fmt_pct(mi['0.001'] if mi['0.001'] >= 0 else None)} ({mi_att['0.001']}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="digits")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--adult")
    ap.add_argument("--adult-pool", type=int, default=10_000)
    ap.add_argument("--mnist")
    ap.add_argument("--k", default="8,16")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--peers", default="art,tfprivacy,privacymeter")
    ap.add_argument("--envs", default="/work/peer-envs")
    ap.add_argument("--pm-src", default="/work/peer-envs/src/ml_privacy_meter",
                    help="unpacked Privacy Meter scripts (ml_privacy_meter.tar.gz)")
    ap.add_argument("--work", default="/work/peer-envs/_runs", help="game folders (bundles, peer outputs)")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--quick", action="store_true", help="small pools (a smoke run)")
    ap.add_argument("--no-miaudit", action="store_true")
    ap.add_argument("--miaudit-pipeline", action="store_true",
                    help="also run miaudit through miaudit.audit.run_audit_with_target (trains its own references)")
    ap.add_argument("--rerun-peers", action="store_true")
    ap.add_argument("--peer-timeout", type=int, default=3600)
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args(argv)
    args.k = [int(v) for v in args.k.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    peers = [p for p in args.peers.split(",") if p]
    work = Path(args.work) / ("quick" if args.quick else "full")

    games: dict[str, dict[str, dict[str, Any]]] = {}
    infos: dict[str, list[dict]] = {}
    t_start = time.perf_counter()
    for tname in args.targets.split(","):
        target = load_target(tname, args)
        per_tool: dict[str, dict[str, list[dict]]] = {}
        target_error = None
        for seed in seeds:
            gdir = work / target.name / f"seed{seed}"
            try:
                if args.table_only:
                    info = json.loads((gdir / "game.json").read_text())
                else:
                    info = prepare_game(target, seed, gdir, args)
            except Exception as exc:  # noqa: BLE001
                target_error = f"{type(exc).__name__}: {exc}"
                log(f"{target.name} seed {seed}: game not prepared: {target_error}")
                break
            infos.setdefault(target.name, []).append(info)
            with np.load(gdir / "bundle.npz", allow_pickle=False) as z:
                is_member = z["is_member"].astype(bool)
            for peer in peers:
                if args.table_only and not (gdir / f"peer_{peer}.json").exists():
                    continue
                log(f"{target.name} seed {seed}: {peer} ...")
                res = run_peer(peer, gdir, seed, args, info["k_max"])
                if res.get("error") and not res.get("attacks"):
                    per_tool.setdefault(peer, {}).setdefault("__error__", []).append({"error": res["error"]})
                    log(f"  {peer} failed: {res['error'][:300]}")
                    continue
                label = f"{peer} {res.get('version', '')}".strip()
                for att, row in peer_rows(res, is_member, seed).items():
                    per_tool.setdefault(label, {}).setdefault(att, []).append(row)
                    m = row.get("metrics") or {}
                    log(f"  {label} {att}: auc {m.get('auc')} err {row.get('error')}")
            if args.miaudit_pipeline and not args.no_miaudit:
                for k in args.k:
                    label = f"miaudit run_audit_with_target K={k}"
                    try:
                        if args.table_only and not (gdir / f"miaudit_pipeline_k{k}.json").exists():
                            continue
                        res = run_miaudit_pipeline(target, gdir, k, seed, args)
                    except Exception as exc:  # noqa: BLE001
                        per_tool.setdefault(label, {}).setdefault("__error__", []).append(
                            {"error": f"{type(exc).__name__}: {exc}"})
                        log(f"  {label} failed: {exc}")
                        continue
                    for att, row in res["attacks"].items():
                        per_tool.setdefault(label, {}).setdefault(att, []).append(
                            {"metrics": row["metrics"], "wall_s": row["wall_s"], "error": None, "reported": {}})
            if not args.no_miaudit:
                for k in args.k:
                    try:
                        if args.table_only and not (gdir / f"miaudit_k{k}.json").exists():
                            continue
                        res = run_miaudit(gdir, info, k, seed)
                    except Exception as exc:  # noqa: BLE001
                        per_tool.setdefault(f"miaudit K={k}", {}).setdefault("__error__", []).append(
                            {"error": f"{type(exc).__name__}: {exc}"})
                        log(f"  miaudit K={k} failed: {exc}")
                        continue
                    for att, row in res["attacks"].items():
                        per_tool.setdefault(f"miaudit K={k}", {}).setdefault(att, []).append(
                            {"metrics": row["metrics"], "wall_s": row["wall_s"], "error": None, "reported": {}})
        if target_error and not per_tool:
            games[target.name] = {"(game)": {"__error__": target_error}}
            continue
        agg: dict[str, dict[str, Any]] = {}
        for tool, attacks in per_tool.items():
            if "__error__" in attacks:
                agg[tool] = {"__error__": attacks["__error__"][0]["error"]}
                continue
            agg[tool] = {att: aggregate(rows) for att, rows in attacks.items()}
        games[target.name] = agg

    header = ("# Side-by-side: miaudit vs IBM ART, TensorFlow Privacy, ML Privacy Meter, LeakPro, SACRO-ML\n\n"
              f"Command: `nice python benchmarks/peers/{' '.join(['run_peers.py', *sys.argv[1:]])}`  \n"
              f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; total wall "
              f"{time.perf_counter() - t_start:.0f}s on a 2-core machine shared with other jobs (timings under load).\n\n"
              "Figures: AUC = mean ± sd over seeds; TPR@FPR = pooled over seeds (sum of true positives at each "
              "seed's own threshold with FPR <= target / sum of members) with a 95% Clopper-Pearson interval, "
              "recomputed by miaudit.metrics from each tool's per-example scores (or from its operating-point "
              "counts when it exposes no scores). `null` = fewer non-members than 1/FPR: no sample supports "
              "that figure. eps LB (miaudit bound) = miaudit's split-half epsilon lower bound on that tool's "
              "scores; 'as reported' = the tool's own figure. Wall time: the attack only, excluding the target's "
              "training (same for all tools); includes reference/shadow-model training where the attack trains "
              "them (miaudit K=16 includes the first 8 models). Best-of-attacks per tool is chosen on the same "
              "data for every tool.\n")
    table = build_table(games, infos)
    text = header + table + "\n"
    print(text)
    Path(args.out).write_text(text)
    (work / "summary.json").write_text(json.dumps({"games": games, "infos": infos}, indent=1, default=C._jsonable))
    return 0


if __name__ == "__main__":
    sys.exit(main())
