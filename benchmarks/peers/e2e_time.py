"""End-to-end wall time, data to per-example scores, at equal recipe, K and epochs (issue 15), main env.

Every tool trains its own models with its own pipeline on the same pool (and population set), with the same
network and optimiser settings (torch; the MLP for digits, the small CNN for MNIST), the same epochs and batch
size, one run each, one after the other on this machine:

  miaudit (defaults)     `python -m miaudit audit cfg.toml`: K + 2 models (complementary pairs), model 0 as the
                         target against the K outside its pair; torch `stack = "auto"`, `--jobs` default (all cores)
  miaudit (fastest)      the same with `stack = true` and `--jobs 2`
  miaudit (one by one)   `stack = false`, `--jobs 1`: the plain loop, for reference
  Privacy Meter scripts  e2e_pmrmia.py: its run_mia.py flow, K + 2 models, RMIA on model 0
  LeakPro                peer_leakpro.py --e2e: the target trained with the handler's `train`, then LeakPro's
                         RMIA (online) with K shadow models trained through the same `train`

Wall = the subprocess from start to exit (Python start-up and imports included). Each tool's own phase times are
kept where it reports them (miaudit: results.json "run", wall seconds per phase since its process started).
Attacks: miaudit rmia + lira_online, Privacy Meter RMIA, LeakPro RMIA online.

usage: nice python benchmarks/peers/e2e_time.py --target digits --k 8,16 [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import targets as T  # noqa: E402

RECIPES = {
    "digits": {"kind": "torch_mlp", "params": {"hidden": 128, "lr": 0.1, "momentum": 0.9, "epochs": 30, "batch_size": 64}},
    "mnist": {"kind": "torch_cnn", "params": {"lr": 0.05, "momentum": 0.9, "epochs": 15, "batch_size": 64}},
}
ENV1 = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def write_data(target: str, work: Path, mnist_dir: str, seed: int) -> tuple[Path, Path, dict]:
    t = T.load_digits_target() if target == "digits" else T.load_mnist_target(mnist_dir)
    idx = T.draw(t, seed)
    X, y = t.X[idx["audit"]], t.y[idx["audit"]]
    Xp, yp = t.X[idx["population"]], t.y[idx["population"]]
    recipe = {**RECIPES[target], "n_classes": t.n_classes}
    is_member = np.zeros(len(y), dtype=bool)
    is_member[np.random.default_rng([seed, 99]).permutation(len(y))[: len(y) // 2]] = True
    data = work / "data.npz"
    np.savez(data, X=X, y=y, X_population=Xp, y_population=yp, is_member=is_member, recipe=np.array(json.dumps(recipe)))
    pool = work / "pool.npz"  # what miaudit reads (its [data] kind = "npz")
    np.savez(pool, X=X, y=y)
    return data, pool, recipe


def miaudit_config(path: Path, pool: Path, recipe: dict, k: int, stack: object, out: Path) -> None:
    p = recipe["params"]
    model = f'model = "mlp"\nmodel_kwargs = {{ hidden = [{p["hidden"]}] }}\n' if recipe["kind"] == "torch_mlp" \
        else 'model = "small_cnn"\n'
    stack_s = {True: "true", False: "false"}.get(stack, '"auto"')  # type: ignore[call-overload]
    path.write_text(f"""attacks = ["rmia", "lira_online"]
[data]
kind = "npz"
path = "{pool}"
[model]
kind = "torch"
{model}optimizer = "sgd"
lr = {p["lr"]}
momentum = {p["momentum"]}
epochs = {p["epochs"]}
batch_size = {p["batch_size"]}
stack = {stack_s}
[game]
n_references = {k}
n_targets = 1
seed = 0
[output]
dir = "{out}"
""")


#: results.json "run" timings_s keys of miaudit, and the labels its rows show them under.
MIAUDIT_PHASES = (("startup", "start-up (imports)"), ("load", "config + data (+ torch import)"), ("train", "training"),
                  ("score", "scoring (signals + attacks)"), ("metrics", "metrics"), ("report", "report"))


def miaudit_phases(d: Path) -> dict | None:
    """miaudit's own phase times: results.json "run" (its wall seconds per phase, since the process started), or
    for a miaudit without it what the log shows (the progress bar's training time and the total it prints)."""
    res = d / "out" / "results.json"
    run = json.loads(res.read_text()).get("run") if res.exists() else None
    if isinstance(run, dict) and isinstance(run.get("timings_s"), dict):
        t = run["timings_s"]
        out: dict = {label: round(float(t.get(key, 0.0)), 3) for key, label in MIAUDIT_PHASES}
        out["total in process"] = round(float(run["total_s"]), 3)
        out["outside the phases"] = round(float(run["total_s"]) - sum(float(v) for v in t.values()), 3)
        out["start-up measured from"] = run.get("startup_from")
        return out
    return miaudit_log_phases(d / "log.txt")


def miaudit_log_phases(log: Path) -> dict | None:
    """Training time (its progress bar's elapsed time) and the in-process total it prints last, from the log."""
    import re

    text = log.read_text(errors="replace").replace("\r", "\n") if log.exists() else ""
    tr = re.findall(r"training models.*?(\d+):(\d\d):(\d\d) eta", text)
    tot = re.findall(r"\((\d+(?:\.\d+)?) s\)\s*$", text.strip())
    out = {}
    if tr:
        h, mnt, sec = (int(v) for v in tr[-1])
        out["training (progress bar)"] = 3600 * h + 60 * mnt + sec
    if tot:
        out["total in process"] = float(tot[-1])
    return out or None


def timed(cmd: list[str], env: dict, log: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    return time.perf_counter() - t0, rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="digits", choices=sorted(RECIPES))
    ap.add_argument("--mnist", default="/work/shared/data/mnist")
    ap.add_argument("--k", default="8,16")
    ap.add_argument("--tools", default="miaudit_default,miaudit_fast,miaudit_plain,pmrmia,leakpro")
    ap.add_argument("--envs", default="/work/peer-envs")
    ap.add_argument("--pm-src", default="/work/peer-envs/src/ml_privacy_meter")
    ap.add_argument("--work", default="/work/peer-envs/_e2e")
    ap.add_argument("--out", default=None)
    ap.add_argument("--peer-threads", choices=["default", "1"], default="default",
                    help="threads of the peer tools: their default (all cores) or one")
    ap.add_argument("--epochs", type=int, help="override the recipe's epochs (the same for every tool)")
    args = ap.parse_args(argv)
    if args.epochs:
        RECIPES[args.target]["params"]["epochs"] = args.epochs
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = Path(args.work) / f"{args.target}-{stamp}"
    work.mkdir(parents=True)
    data, pool, recipe = write_data(args.target, work, args.mnist, 0)
    # Each tool with its own defaults: the peers get the machine's default thread count (torch's intra-op
    # threads = cores) unless --peer-threads 1 pins them to one BLAS/OpenMP thread as in the power benchmark.
    env_peer = dict(os.environ, **ENV1) if args.peer_threads == "1" else \
        {k: v for k, v in os.environ.items() if k not in ENV1}
    env_peer.pop("PYTHONPATH", None)
    env_mi = dict(os.environ)
    rows = []
    for k in [int(v) for v in args.k.split(",")]:
        for tool in args.tools.split(","):
            d = work / f"{tool}_k{k}"
            n = 1
            while d.exists():  # the same tool listed twice: a repeat run
                n += 1
                d = work / f"{tool}_k{k}_run{n}"
            d.mkdir()
            if tool.startswith("miaudit"):
                stack, jobs = {"miaudit_default": ("auto", None), "miaudit_fast": (True, 2), "miaudit_stack1": (True, 1),
                               "miaudit_plain": (False, 1)}[tool]
                cfg = d / "cfg.toml"
                miaudit_config(cfg, pool, recipe, k, stack, d / "out")
                cmd = ["nice", sys.executable, "-m", "miaudit", "audit", str(cfg)] + (["--jobs", str(jobs)] if jobs else [])
                wall, rc = timed(cmd, env_mi, d / "log.txt")
                phases = miaudit_phases(d)
            elif tool == "pmrmia":
                cmd = ["nice", f"{args.envs}/pmrmia/bin/python", str(HERE / "e2e_pmrmia.py"), str(data), str(d / "out.json"),
                       "--pm-src", args.pm_src, "--workdir", str(d / "w"), "--k", str(k)]
                wall, rc = timed(cmd, env_peer, d / "log.txt")
                phases = json.loads((d / "out.json").read_text())["phases_s"] if (d / "out.json").exists() else None
            elif tool == "leakpro":
                cmd = ["nice", f"{args.envs}/leakpro/bin/python", str(HERE / "peer_leakpro.py"), str(data), str(d / "out.json"),
                       "--e2e", "--workdir", str(d / "w"), "--k", str(k), "--attacks", "rmia_online"]
                wall, rc = timed(cmd, env_peer, d / "log.txt")
                phases = None
                if (d / "out.json").exists():
                    o = json.loads((d / "out.json").read_text())
                    a = next(iter(o["attacks"].values()), {})
                    phases = {"start-up (imports)": o.get("import_s"), "target training": o.get("target_train_s"),
                              "LeakPro setup": o.get("setup_s"), "shadow training + signals": a.get("prepare_s"),
                              "attack": None if a.get("wall_s") is None else round(a["wall_s"] - (a.get("prepare_s") or 0), 2),
                              "error": o.get("error") or a.get("error")}
            else:
                raise SystemExit(f"unknown tool {tool}")
            row = {"target": args.target, "k": k, "tool": tool, "wall_s": round(wall, 1), "rc": rc, "phases": phases,
                   "load_avg_1min_after": round(os.getloadavg()[0], 1),
                   "cmd": " ".join(cmd)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    out = Path(args.out) if args.out else work / "e2e.json"
    out.write_text(json.dumps({"recipe": recipe, "rows": rows, "nproc": os.cpu_count(),
                               "load_avg": os.getloadavg()}, indent=1))
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
