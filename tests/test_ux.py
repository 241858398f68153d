"""A new user's run, end to end on tiny data (issue 11): attacks that cannot run, the examples, scores.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._worlds import leaky_world
from .test_cli import one_error_line, run_cli


def test_attack_that_cannot_cross_fit_is_skipped_with_its_reason_unless_named(tmp_path: Path) -> None:
    path = tmp_path / "tiny.npz"
    np.savez(path, **leaky_world(n=8, k=2, shift=2.0))  # 4 members, 4 non-members: too few for 5 folds
    proc = run_cli("score", str(path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    flat = " ".join(proc.stdout.split())
    assert "skipped trained_lr: cross-fitting with n_folds=5 needs at least 5 members" in flat
    assert "[attacks.params] trained_lr = { n_folds = 2 }" in flat  # the way to lower it, markup not eaten
    named = run_cli("score", str(path), "--out", str(tmp_path / "o2"), "--attack", "trained_lr")
    assert named.returncode == 2
    assert "attack 'trained_lr' cannot run on this data: cross-fitting" in one_error_line(named)
    assert not (tmp_path / "o2").exists()
