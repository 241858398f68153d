"""The game's refusals and its verdict through the command line, as a user meets them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from .._worlds import leaky_world

CONFIG = """\
attacks = ["loss", "lira_online"]
[data]
kind = "digits"
max_examples = 200
[model]
estimator = "sklearn.linear_model.LogisticRegression"
params = {{ max_iter = 200 }}
[game]
n_references = {refs}
seed = 1
[output]
dir = "out"
"""


def _miaudit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "miaudit", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_a_game_without_references_is_refused_before_any_training(tmp_path: Path) -> None:
    cfg = tmp_path / "k2.toml"
    cfg.write_text(CONFIG.format(refs=0))
    r = _miaudit("audit", str(cfg), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "[game] n_references: expected an even integer >= 2" in r.stderr
    assert "a game of 2 models would have no reference at all" in r.stderr
    assert not (tmp_path / "out").exists()


def test_score_prints_and_writes_the_verdict(tmp_path: Path) -> None:
    world = leaky_world(n=600, k=8, shift=2.0)
    path = tmp_path / "b.npz"
    np.savez(path, **world)
    r = _miaudit("score", str(path), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "verdict: Leakage detected:" in r.stdout
    v = json.loads((tmp_path / "o" / "results.json").read_text())["verdict"]
    assert v["leakage_detected"] is True and v["interval"][0] > v["chance"]
    assert v["n_nonmembers"] == 150 and v["sentence"] in " ".join(r.stdout.split())


def test_a_bundle_that_keeps_the_targets_partner_is_warned_about(tmp_path: Path) -> None:
    from miaudit.audit import balanced_membership

    world = leaky_world(n=400, k=4, null=True, seed=2)
    design = balanced_membership(400, 4, seed=0)
    world["is_member"] = design[0]
    world["ref_is_member"] = design[1:4]  # model 1 is the target's complement
    world["ref_logits"] = world["ref_logits"][:3]
    path = tmp_path / "p.npz"
    np.savez(path, **world)
    r = _miaudit("score", str(path), "--attack", "loss", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "warning:" in r.stderr and "IN references depends on the target's membership" in r.stderr
    assert json.loads((tmp_path / "o" / "results.json").read_text())["warnings"]
