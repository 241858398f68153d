"""Crash safety (issue 4, "Robustness"): SIGKILL an audit anywhere, re-run it, get the same results.

``python -m miaudit audit CONFIG`` runs as a subprocess (its own process group, so training workers
die with it) and is SIGKILLed at seeded random moments: while it trains (after a random number of
model files appeared), while it scores and renders, and (slow variant) while it writes its outputs.
After every kill:

* every ``.npz`` in the model cache loads (``allow_pickle=False``) with the right shape and holds the
  reference run's model of that key (same logits and seed), every ``.json`` in the output folder parses, and any result file already present is *identical* to the
  uninterrupted run's (so it cannot be half-written);
* every other file is a temporary: a dot-name ending in ``.tmp`` (outputs) or
  ``<key>.npz.tmp-<pid>-<hex>`` (cache), which no ``*.npz``/``*.json``/``*.csv``/``*.html`` glob matches;
* models finished before the kill are kept: the next run does not rewrite them.

Finally a run to completion gives ``results.json`` (minus ``created`` and ``run``) and ``scores.csv`` byte-identical
to an uninterrupted in-process run (which also checks determinism across processes and hash seeds).

Fast variant: 2 kills, ``--jobs 1``. Slow variant: 10 kills, ``--jobs 2``, 16 models:
``python -m pytest -m slow tests/test_crash_safety.py -s`` (prints where each kill landed).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ._cli import assert_same_outputs, results_bytes, run_cli

CONFIG = """\
attacks = ["loss", "trained_lr", "lira_online", "rmia"]

[data]
kind = "digits"
max_examples = {n}

[model]
estimator = "sklearn.linear_model.LogisticRegression"
params = {{ max_iter = 300 }}

[game]
n_references = {refs}
n_targets = 2
seed = 7

[output]
dir = "{out}"
"""

RESULT_FILES = {"results.json", "scores.csv", "report.html"}
_KEY_NPZ = re.compile(r"^[0-9a-f]{64}\.npz$")
_CACHE_TMP = re.compile(r"^[0-9a-f]{64}\.npz\.tmp-\d+-[0-9a-f]+$")
_OUT_TMP = re.compile(r"^\..+\.tmp$")


def write_config(root: Path, name: str, *, n: int, k: int) -> Path:
    cfg = root / f"{name}.toml"
    cfg.write_text(CONFIG.format(n=n, refs=k - 2, out=name))  # k models: k - 2 references per target
    return cfg


def start(cfg: Path, jobs: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": "4242", "MPLBACKEND": "Agg", "COLUMNS": "200"}
    with open(log, "ab") as fh:  # a file, not a pipe: a full pipe would block the audit
        return subprocess.Popen([sys.executable, "-m", "miaudit", "audit", str(cfg), "--jobs", str(jobs),
                                 "--overwrite"],  # a re-run after a kill may find some outputs written
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def wait_for(proc: subprocess.Popen[bytes], cond: Callable[[], bool], log: Path, timeout: float = 180) -> bool:
    """Poll ``cond`` every 5 ms; False when the process exited first (it must have exited cleanly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        if proc.poll() is not None:
            assert proc.returncode == 0, f"audit failed ({proc.returncode}): {log.read_text()[-3000:]}"
            return False
        time.sleep(0.005)
    pytest.fail(f"timed out waiting for the audit: {log.read_text()[-3000:]}")


def kill(proc: subprocess.Popen[bytes]) -> bool:
    """SIGKILL the audit and its workers; True when it was still running (the kill landed)."""
    alive = proc.poll() is None
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # already gone with its whole group
        pass
    proc.wait()
    return alive


def models(out: Path) -> list[Path]:
    d = out / "cache" / "models"
    return sorted(p for p in d.glob("*.npz")) if d.is_dir() else []


def _at_least(out: Path, m: int) -> Callable[[], bool]:
    """Condition: ``m`` or more model files are in the cache of ``out``."""
    return lambda: len(models(out)) >= m


def _after(t0: float, delay: float) -> Callable[[], bool]:
    """Condition: ``delay`` seconds have passed since ``t0`` (:func:`time.monotonic`)."""
    return lambda: time.monotonic() - t0 >= delay


def check_no_half_written(out: Path, ref: Path, *, n: int) -> dict[str, int]:
    """The invariants after a kill; returns counts of models, result files and temporaries."""
    counts = {"models": 0, "results": 0, "temporaries": 0}
    for p in sorted(out.rglob("*")):
        if p.is_dir():
            assert p.relative_to(out).as_posix() in ("cache", "cache/models"), f"unexpected folder {p}"
            continue
        rel = p.relative_to(out).as_posix()
        if rel.startswith("cache/models/") and _KEY_NPZ.match(p.name):
            twin = ref / rel  # the same key: the uninterrupted run's model
            assert twin.is_file(), f"{rel}: a model key the uninterrupted run does not have"
            with np.load(p, allow_pickle=False) as z, np.load(twin, allow_pickle=False) as r:  # complete archives
                assert z["logits"].shape == (n, 1, 10) and np.isfinite(z["logits"]).all(), rel
                assert z["logits"].tobytes() == r["logits"].tobytes(), f"{rel}: other logits than the reference"
                fit = float(z["fit_seconds"])
                assert np.isfinite(fit) and fit > 0, f"{rel}: fit_seconds {fit}"
                assert json.loads(str(z["meta"]))["seed"] == json.loads(str(r["meta"]))["seed"], rel
            counts["models"] += 1
        elif rel in RESULT_FILES:
            counts["results"] += 1
            if rel == "results.json":
                assert results_bytes(out) == results_bytes(ref)  # parses, and is the final content
            elif rel == "scores.csv":
                assert p.read_bytes() == (ref / rel).read_bytes()
            else:  # the report carries no timestamp: byte-identical
                assert p.read_bytes() == (ref / rel).read_bytes(), "report.html differs (truncated?)"
        elif (rel.startswith("cache/models/") and _CACHE_TMP.match(p.name)) or ("/" not in rel and _OUT_TMP.match(p.name)):
            counts["temporaries"] += 1  # their names match no *.npz/*.json/*.csv/*.html glob (see the patterns)
        else:
            pytest.fail(f"unexpected file after a kill: {rel}")
    for p in out.rglob("*.json"):
        json.loads(p.read_text(encoding="utf-8"))
    return counts


def _reference(root: Path, *, n: int, k: int) -> Path:
    """The uninterrupted run, in this process (another interpreter and hash seed than the killed ones)."""
    run_cli(["audit", str(write_config(root, "ref", n=n, k=k)), "--jobs", "1"])
    return root / "ref"


def _finish_and_compare(cfg: Path, out: Path, ref: Path, jobs: int, log: Path, *, n: int, k: int) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in models(out)}
    proc = start(cfg, jobs, log)
    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    for name, mtime in before.items():  # finished models were reused, not retrained or rewritten
        assert (out / "cache" / "models" / name).stat().st_mtime_ns == mtime
    assert len(models(out)) == k
    counts = check_no_half_written(out, ref, n=n)
    assert counts["results"] == 3
    assert not list((out / "cache" / "models").glob("*.tmp-*")), "stale cache temporaries are removed on re-run"
    assert_same_outputs(ref, out)
    ref_logits = {p.name: np.load(p)["logits"].tobytes() for p in models(ref)}
    assert {p.name: np.load(p)["logits"].tobytes() for p in models(out)} == ref_logits


def test_two_kills_during_training_and_scoring_then_identical_results(tmp_path: Path) -> None:
    n, k, jobs = 240, 8, 1
    rng = random.Random(20261128)
    ref = _reference(tmp_path, n=n, k=k)
    cfg = write_config(tmp_path, "crash", n=n, k=k)
    out, log = tmp_path / "crash", tmp_path / "crash.log"

    # kill 1: training, after a random number of finished models (+ a random fraction of the next one);
    # at least 4 models (~50 ms each) remain, so the kill lands in training even on a fast machine
    m = rng.randint(1, k - 4)
    proc = start(cfg, jobs, log)
    assert wait_for(proc, lambda: len(models(out)) >= m, log), "the audit finished before the training kill"
    time.sleep(rng.uniform(0, 0.03))
    assert kill(proc)
    c1 = check_no_half_written(out, ref, n=n)
    assert m <= c1["models"] < k and c1["results"] == 0

    # kill 2: after the last model file appeared, a random moment into scoring/rendering
    before = {p.name: p.stat().st_mtime_ns for p in models(out)}
    proc = start(cfg, jobs, log)
    assert wait_for(proc, lambda: len(models(out)) == k, log), "the audit finished before the scoring kill"
    time.sleep(rng.uniform(0, 0.5))
    landed = kill(proc)
    assert landed, "the audit finished before the scoring kill; lower the delay"
    c2 = check_no_half_written(out, ref, n=n)
    assert c2["models"] == k
    assert all((out / "cache" / "models" / f).stat().st_mtime_ns == t for f, t in before.items())

    _finish_and_compare(cfg, out, ref, jobs, log, n=n, k=k)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ten_kills_at_random_points_then_identical_results(tmp_path: Path) -> None:
    n, k, jobs = 300, 16, 2
    rng = random.Random(4)
    ref = _reference(tmp_path, n=n, k=k)
    cfg = write_config(tmp_path, "crash", n=n, k=k)
    out, log = tmp_path / "crash", tmp_path / "crash.log"
    # 4 kills in training (random model counts), 1 the moment an output file or temporary appears,
    # 5 at random moments after the cache is complete (imports, loading, attacks, plots, writing)
    plan = [("training", m) for m in sorted(rng.sample(range(1, k - 1), 4))] + [("writing", 0.0)]
    plan += [("scoring", rng.uniform(0, 1.0) ** 0.5 * 8.0) for _ in range(5)]
    landed: list[str] = []
    for phase, arg in plan:
        proc = start(cfg, jobs, log)
        t0 = time.monotonic()
        if phase == "training":
            ok = wait_for(proc, _at_least(out, int(arg)), log)
            time.sleep(rng.uniform(0, 0.2))
        elif phase == "writing":
            ok = wait_for(proc, lambda: out.is_dir() and any(p.is_file() for p in out.iterdir()), log)
        else:
            ok = wait_for(proc, _after(t0, arg), log)
        hit = kill(proc) and ok
        counts = check_no_half_written(out, ref, n=n)
        where = f"{phase}({arg:.2f}) -> {'killed' if hit else 'finished first'}: {counts}"
        print(where)
        landed.append(where)
    assert sum("killed" in w for w in landed) >= 7, landed
    assert any(w.startswith("training") and "killed" in w for w in landed)
    assert any(w.startswith(("scoring", "writing")) and "killed" in w for w in landed)
    _finish_and_compare(cfg, out, ref, jobs, log, n=n, k=k)
