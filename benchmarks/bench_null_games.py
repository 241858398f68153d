"""Benchmark: how often does miaudit claim membership leakage on NULL games (nothing can leak)?

In a null game every model's outputs are drawn independently of which examples it trained on, so any
"leakage" miaudit reports is a false positive. Two experiments, both through the CLI (``python -m miaudit``,
a subprocess per game, exit code checked):

(A) ``--bundles N`` null signal bundles through ``miaudit score B.npz --out DIR``. Each bundle: n examples
    (``--n``), C classes (``--classes``), labels uniform; a fixed per-example "difficulty" logit matrix D
    (shared by every model of the game: Gaussian logits plus a per-example bump on the true class) and, per
    model, ``logits = D + noise_scale * N(0, 1)`` drawn independently. The target's ``is_member`` is a random
    half; K = ``--n-references`` reference models come in K/2 complementary pairs of random halves, drawn
    independently of the target's membership. Game g uses seed ``--seed + g``.

(B) ``--audits M`` pooled null audits through ``miaudit audit CONFIG --out DIR``: K = 8 models
    (``--audit-models``), every one evaluated as the target, on the embedded digits data
    (``pool_size = --pool-size``, seed = audit index), with the null estimator
    ``benchmarks/null_estimator.py:NullClassifier`` (outputs = fixed function of the features + per-(model,
    row) noise; never depends on the training rows). The config is written next to null_estimator.py and
    that folder is prepended to PYTHONPATH for the subprocess.

    ``--k-semantics`` says what ``[game] n_references`` means for the code under test: ``models`` (today:
    the number of models trained; writes n_references = K) or ``references`` (new code: references per
    target, models trained = n_references + 2; writes n_references = K - 2). The first audit's game block is
    printed so the model/target count can be checked. (On today's code ``references`` trains only 6 models
    and the config is rejected: "[game] n_targets: expected an integer in [1, n_references = 6], got 8".)

Leakage claimed: if results.json has a top-level ``"verdict"`` object, ``verdict["leakage_detected"]``;
otherwise today's report verdict is rebuilt with ``miaudit.report.make_verdict(attacks, settings, game)``
and counted when its level is "high" or "measurable". Also counted over (game, attack) pairs: ``auc_ci``
excludes 0.5, and ``epsilon_lower_bound > 0``.

Usage (from the repository root, with ``PYTHONPATH=src``)::

    nice -n 19 python benchmarks/bench_null_games.py --k-semantics models \\
        --out-md benchmarks/results/null_games_before.md --out-json benchmarks/results/null_games_before.json
    nice -n 19 python benchmarks/bench_null_games.py --bundles 3 --audits 1 --out-md /tmp/t.md --out-json /tmp/t.json

The markdown table is printed and written to ``--out-md``; raw per-game results go to ``--out-json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# ----------------------------------------------------------------------------------------------- games
def make_null_bundle(path: Path, *, seed: int, n: int, n_classes: int, k: int, noise: float) -> None:
    """Write a null signal bundle: every model's logits are independent of every membership row."""
    if n % 2 or k % 2:
        raise SystemExit("--n and --n-references must be even")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n).astype(np.int64)
    difficulty = rng.normal(0.0, 1.5, size=(n, n_classes))
    difficulty[np.arange(n), labels] += rng.normal(2.0, 2.0, size=n)  # per-example easiness
    target_logits = difficulty + noise * rng.standard_normal((n, n_classes))
    is_member = np.zeros(n, dtype=bool)
    is_member[rng.permutation(n)[: n // 2]] = True
    ref_logits = (difficulty[None] + noise * rng.standard_normal((k, n, n_classes))).astype(np.float32)
    ref_is_member = np.zeros((k, n), dtype=bool)
    for p in range(k // 2):
        half = np.zeros(n, dtype=bool)
        half[rng.permutation(n)[: n // 2]] = True
        ref_is_member[2 * p] = half
        ref_is_member[2 * p + 1] = ~half
    np.savez(path, labels=labels, target_logits=target_logits.astype(np.float64), is_member=is_member,
             ref_logits=ref_logits, ref_is_member=ref_is_member)


AUDIT_TOML = """\
# written by bench_null_games.py: a NULL audit (outputs never depend on the training rows)
[data]
kind = "digits"

[model]
kind = "sklearn"
estimator = "null_estimator.NullClassifier"
preprocessing = "none"

[game]
pool_size = {pool_size}
n_references = {n_references}     # --k-semantics {semantics}: {n_models} models trained
n_targets = {n_targets}
seed = {seed}

[output]
dir = "{out_dir}"
"""


# --------------------------------------------------------------------------------------------- running
def run_cli(args: list[str], *, env: dict[str, str], log: Path) -> tuple[int, float]:
    cmd = [sys.executable, "-m", "miaudit", *args]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=str(ROOT)).returncode
    return rc, time.perf_counter() - t0


def cli_env(extra_path: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    src = str(ROOT / "src")
    if src not in parts:
        parts.insert(0, src)
    if extra_path is not None:
        parts.insert(0, str(extra_path))
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.setdefault("COLUMNS", "160")
    return env


def judge(results: dict[str, Any]) -> dict[str, Any]:
    """Leakage claimed or not, by the new top-level verdict if present, else today's make_verdict."""
    attacks = results.get("attacks") or {}
    if isinstance(results.get("verdict"), dict) and "leakage_detected" in results["verdict"]:
        v = results["verdict"]
        claimed, level, source = bool(v["leakage_detected"]), v.get("level"), "results.json verdict"
        # new schema: verdict["attack"] is the deciding attack (None when nothing was detected)
        strongest = v.get("attack") or v.get("strongest") or v.get("strongest_attack") or (results.get("game") or {}).get("strongest_attack")
    else:
        from miaudit.report import make_verdict

        v = make_verdict(attacks, results.get("settings"), results.get("game"))
        claimed, level, source = v.level in ("high", "measurable"), v.level, "make_verdict (rebuilt)"
        strongest = v.strongest
    tpr_above = _tpr_above_chance(results)
    per_attack = {}
    for name, m in attacks.items():
        ci = m.get("auc_ci")
        ok_ci = isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci)
        eps = m.get("epsilon_lower_bound")
        per_attack[name] = {
            "auc": m.get("auc"),
            "auc_ci": ci,
            "auc_ci_excludes_half": bool(ok_ci and (ci[0] > 0.5 or ci[1] < 0.5)),
            "auc_ci_above_half": bool(ok_ci and ci[0] > 0.5),
            "epsilon_lower_bound": eps,
            "eps_positive": bool(isinstance(eps, (int, float)) and eps > 0),
            "tpr_at_fpr": m.get("tpr_at_fpr"),
            "tpr_at_fpr_ci": m.get("tpr_at_fpr_ci"),
            "tpr_above_chance": tpr_above.get(name),
        }
    return {"leakage_claimed": claimed, "level": level, "verdict_source": source,
            "strongest": strongest if isinstance(strongest, str) else None, "attacks": per_attack}


def _tpr_above_chance(results: dict[str, Any]) -> dict[str, bool | None]:
    """Per attack: does today's report call some TPR@FPR figure above chance? (diagnostic only: which
    criterion triggered a claim; uses report internals, so {} when they are not there.)"""
    try:
        from miaudit.report._verdict import fpr_keys, tpr_figure
    except ImportError:
        return {}
    attacks = results.get("attacks") or {}
    settings = results.get("settings") or {}
    conf = settings.get("confidence") or 0.95
    try:
        fprs = fpr_keys(attacks, settings)
        return {n: bool(any(tpr_figure(m, f, confidence=conf).above_chance for f in fprs)) for n, m in attacks.items()}
    except Exception:  # noqa: BLE001 - a diagnostic must never break the benchmark
        return {}


def run_bundles(a: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    env = cli_env()
    out = []
    for g in range(a.bundles):
        seed = a.seed + g
        b = work / f"bundle_{g:03d}.npz"
        make_null_bundle(b, seed=seed, n=a.n, n_classes=a.classes, k=a.n_references, noise=a.noise)
        d = work / f"score_{g:03d}"
        rc, secs = run_cli(["score", str(b), "--out", str(d), "--overwrite"], env=env, log=work / f"score_{g:03d}.log")
        row: dict[str, Any] = {"game": g, "seed": seed, "rc": rc, "seconds": round(secs, 2)}
        if rc != 0:
            row["error"] = (work / f"score_{g:03d}.log").read_text()[-2000:]
            print(f"[A {g + 1}/{a.bundles}] rc={rc} ({secs:.1f}s) FAILED", flush=True)
        else:
            res = json.loads((d / "results.json").read_text())
            row.update(judge(res))
            print(f"[A {g + 1}/{a.bundles}] {row['level']} (strongest {row['strongest']}), {secs:.1f}s", flush=True)
        out.append(row)
        b.unlink(missing_ok=True)
    return out


def run_audits(a: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    env = cli_env(HERE)
    k = a.audit_models
    n_refs = k if a.k_semantics == "models" else k - 2
    out = []
    for g in range(a.audits):
        d = work / f"audit_{g:03d}"
        cfg = HERE / f"_null_audit_{os.getpid()}_{g:03d}.toml"
        cfg.write_text(AUDIT_TOML.format(pool_size=a.pool_size, n_references=n_refs, semantics=a.k_semantics,
                                         n_models=k, n_targets=k, seed=g, out_dir=str(d)))
        try:
            args = ["audit", str(cfg), "--out", str(d), "--overwrite"]  # a re-run in the same work folder
            if a.jobs is not None:
                args += ["--jobs", str(a.jobs)]
            rc, secs = run_cli(args, env=env, log=work / f"audit_{g:03d}.log")
        finally:
            cfg.unlink(missing_ok=True)
        row: dict[str, Any] = {"audit": g, "seed": g, "rc": rc, "seconds": round(secs, 2), "n_references_written": n_refs}
        if rc != 0:
            row["error"] = (work / f"audit_{g:03d}.log").read_text()[-2000:]
            print(f"[B {g + 1}/{a.audits}] rc={rc} ({secs:.1f}s) FAILED:\n{row['error']}", flush=True)
        else:
            res = json.loads((d / "results.json").read_text())
            row["game_block"] = res.get("game")
            if g == 0:
                print("[B] first audit's results.json game block (check: 8 models / 8 targets):", flush=True)
                print(json.dumps({kk: vv for kk, vv in (res.get("game") or {}).items()
                                  if not isinstance(vv, (list, dict)) or len(json.dumps(vv)) < 300},
                                 indent=1, default=str), flush=True)
            row.update(judge(res))
            print(f"[B {g + 1}/{a.audits}] {row['level']} (strongest {row['strongest']}), {secs:.1f}s", flush=True)
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------- report
def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if r["rc"] == 0]
    pairs = [(r, name, m) for r in ok for name, m in r["attacks"].items()]
    by_attack: dict[str, dict[str, int]] = {}
    for _, name, m in pairs:
        s = by_attack.setdefault(name, {"n": 0, "ci": 0, "eps": 0, "tpr": 0})
        s["n"] += 1
        s["tpr"] += bool(m.get("tpr_above_chance"))
        s["ci"] += m["auc_ci_excludes_half"]
        s["eps"] += m["eps_positive"]
    levels: dict[str, int] = {}
    for r in ok:
        levels[str(r["level"])] = levels.get(str(r["level"]), 0) + 1
    secs = [r["seconds"] for r in rows]
    return {
        "games": len(rows), "ok": len(ok), "failed": len(rows) - len(ok),
        "claimed": sum(r["leakage_claimed"] for r in ok), "levels": levels,
        "pairs": len(pairs), "ci_excl": sum(m["auc_ci_excludes_half"] for _, _, m in pairs),
        "ci_above": sum(m["auc_ci_above_half"] for _, _, m in pairs),
        "eps_pos": sum(m["eps_positive"] for _, _, m in pairs),
        "tpr_above": sum(bool(m.get("tpr_above_chance")) for _, _, m in pairs),
        "tpr_known": any(m.get("tpr_above_chance") is not None for _, _, m in pairs),
        "by_attack": by_attack, "sources": sorted({r["verdict_source"] for r in ok}),
        "seconds_total": round(sum(secs), 1), "seconds_mean": round(float(np.mean(secs)), 2) if secs else None,
    }


def pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.1f}%)" if b else "0/0"


def markdown(a: argparse.Namespace, sa: dict | None, sb: dict | None, command: str, wall: float) -> str:
    lines = [
        "# Null games: how often miaudit claims leakage when nothing can leak",
        "",
        f"Run {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, total wall {wall / 60:.1f} min; "
        f"command (from the repository root, PYTHONPATH=src):",
        "",
        f"    {command}",
        "",
        f"(A) {a.bundles} null bundles via `miaudit score`: n = {a.n}, C = {a.classes}, K = {a.n_references} "
        f"reference models, noise sd {a.noise}, seeds {a.seed}..{a.seed + a.bundles - 1}.  "
        f"(B) {a.audits} null audits via `miaudit audit`: digits, pool_size = {a.pool_size}, "
        f"{a.audit_models} models, n_targets = {a.audit_models}, NullClassifier, --k-semantics {a.k_semantics}, "
        f"seeds 0..{max(a.audits - 1, 0)}.",
        "",
        "Leakage claimed = results.json `verdict.leakage_detected` if present, else today's "
        "`make_verdict(...)` level in {high, measurable}. Every claim here is a false positive. "
        "Today's `measurable` fires when ANY attack has an AUC CI above 0.5, a positive epsilon bound, or a "
        "TPR@FPR interval the report calls above chance (last column of the per-attack tables; diagnostic "
        "from report internals, n/a when they are gone).",
        "",
        "| experiment | games ok | leakage claimed | verdict levels | (game, attack) pairs | AUC CI excludes 0.5 "
        "| AUC CI above 0.5 | eps lower bound > 0 | TPR@FPR 'above chance' | mean s / game | verdict from |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, s in (("A: score bundles", sa), ("B: pooled audits", sb)):
        if s is None or not s["games"]:
            continue
        lv = ", ".join(f"{k}: {v}" for k, v in sorted(s["levels"].items()))
        lines.append(
            f"| {label} | {s['ok']}/{s['games']} | {pct(s['claimed'], s['ok'])} | {lv} | {s['pairs']} | "
            f"{pct(s['ci_excl'], s['pairs'])} | {pct(s['ci_above'], s['pairs'])} | {pct(s['eps_pos'], s['pairs'])} "
            f"| {pct(s['tpr_above'], s['pairs']) if s['tpr_known'] else 'n/a'} | {s['seconds_mean']} | {'; '.join(s['sources'])} |"
        )
    for label, s in (("A: score bundles", sa), ("B: pooled audits", sb)):
        if s is None or not s["by_attack"]:
            continue
        lines += ["", f"Per attack, {label}:", "",
                  "| attack | games | AUC CI excludes 0.5 | eps > 0 | some TPR@FPR 'above chance' (report) |",
                  "|---|---|---|---|---|"]
        for name, c in sorted(s["by_attack"].items()):
            tpr = pct(c["tpr"], c["n"]) if s["tpr_known"] else "n/a"
            lines.append(f"| {name} | {c['n']} | {pct(c['ci'], c['n'])} | {pct(c['eps'], c['n'])} | {tpr} |")
    for label, s in (("A", sa), ("B", sb)):
        if s is not None and s["failed"]:
            lines += ["", f"**{label}: {s['failed']} game(s) failed (non-zero exit); see the JSON for the log tail.**"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundles", type=int, default=60, help="(A) number of null bundles (default 60)")
    p.add_argument("--n", type=int, default=1000, help="(A) examples per bundle")
    p.add_argument("--classes", type=int, default=10, help="(A) classes")
    p.add_argument("--n-references", type=int, default=8, help="(A) reference models per bundle (even)")
    p.add_argument("--noise", type=float, default=1.0, help="(A) sd of each model's independent logit noise")
    p.add_argument("--seed", type=int, default=0, help="(A) seed of game 0 (game g uses seed + g)")
    p.add_argument("--audits", type=int, default=24, help="(B) number of null audits (default 24)")
    p.add_argument("--audit-models", type=int, default=8, help="(B) models trained per audit (all are targets)")
    p.add_argument("--pool-size", type=int, default=1000, help="(B) [game] pool_size")
    p.add_argument("--k-semantics", choices=("models", "references"), default="references",
                   help="(B) meaning of [game] n_references in the code under test: 'models' writes K, "
                        "'references' writes K - 2 (default)")
    p.add_argument("--jobs", type=int, default=1, help="(B) --jobs passed to miaudit audit (default 1)")
    p.add_argument("--work-dir", type=Path, default=None, help="keep bundles/outputs here (default: a temp dir)")
    p.add_argument("--out-md", type=Path, default=ROOT / "benchmarks/results/null_games.md")
    p.add_argument("--out-json", type=Path, default=ROOT / "benchmarks/results/null_games.json")
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))

    command = "nice -n 19 python " + " ".join(shlex.quote(x) for x in [
        "benchmarks/bench_null_games.py", *(sys.argv[1:] if argv is None else argv)])
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="null_games_") as tmp:
        work = a.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows_a = run_bundles(a, work) if a.bundles > 0 else []
        rows_b = run_audits(a, work) if a.audits > 0 else []
    wall = time.perf_counter() - t0
    sa, sb = summarize(rows_a) if rows_a else None, summarize(rows_b) if rows_b else None
    md = markdown(a, sa, sb, command, wall)
    print(md)
    a.out_md.parent.mkdir(parents=True, exist_ok=True)
    a.out_md.write_text(md)
    a.out_json.parent.mkdir(parents=True, exist_ok=True)
    a.out_json.write_text(json.dumps({"command": command, "args": {k: str(v) for k, v in vars(a).items()},
                                      "wall_seconds": round(wall, 1), "summary": {"A": sa, "B": sb},
                                      "bundles": rows_a, "audits": rows_b}, indent=1, default=str))


if __name__ == "__main__":
    main()
