"""Determinism (issue 4, "Robustness"): the same seed gives the same bytes.

``results.json`` must be byte-identical apart from its ``"created"`` line and ``"run"`` timings, and ``scores.csv``
byte-identical, across

(a) two runs of ``miaudit audit CONFIG`` (CLI in-process, separate caches: every model retrained),
(b) ``--jobs 1`` and ``--jobs 2``,
(c) executors: inline (jobs=1), the process pool with and without the local trainer thread, and
    ray (skipped when not installed); ``spawn`` workers in a slow variant,
(d) ``miaudit score`` on the same bundle twice (every attack in a slow variant),
(e) ``miaudit.audit.run_demo`` twice (slow: ~10 s per demo on a loaded 2-core machine).

A cross-process check (a fresh interpreter, another ``PYTHONHASHSEED``) is in
``tests/test_crash_safety.py``, whose reference run is in-process and whose resumed runs are not.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from miaudit.data import SignalBundle, save_bundle
from miaudit.training import SklearnRecipe, model_seeds, train_models

from ._cli import assert_same_outputs, run_cli

CONFIG = """\
attacks = ["loss", "trained_lr", "lira_online", "rmia"]

[data]
kind = "digits"
max_examples = 240
group = "pixel_0_4"

[model]
estimator = "sklearn.linear_model.LogisticRegression"
params = {{ max_iter = 200 }}

[game]
n_references = 2  # references per target: 4 models
n_targets = 2
seed = 11

[output]
dir = "{out}"
"""

def audit(root: Path, name: str, jobs: int) -> Path:
    """``miaudit audit`` on the tiny config with its own output folder and model cache."""
    cfg = root / f"{name}.toml"
    cfg.write_text(CONFIG.format(out=name))
    run_cli(["audit", str(cfg), "--jobs", str(jobs)])
    return root / name


def cached_logits(out: Path) -> dict[str, bytes]:
    out_files = sorted((out / "cache" / "models").glob("*.npz"))
    res = {}
    for f in out_files:
        with np.load(f, allow_pickle=False) as z:
            res[f.stem] = z["logits"].tobytes()
    return res


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return audit(tmp_path_factory.mktemp("det"), "run_a", jobs=1)


def test_first_run_is_complete(first_run: Path) -> None:
    res = json.loads((first_run / "results.json").read_text())
    assert set(res["attacks"]) == {"loss", "trained_lr", "lira_online", "rmia"}
    assert res["slices"].get("group"), "the group column must give slices (more code under test)"
    assert len(cached_logits(first_run)) == 4


def test_two_audit_runs_are_byte_identical(first_run: Path) -> None:
    second = audit(first_run.parent, "run_b", jobs=1)
    assert cached_logits(first_run) == cached_logits(second)  # retrained, not shared: separate caches
    assert_same_outputs(first_run, second)  # the report carries no timestamp: byte-identical too


def test_jobs_1_and_jobs_2_are_byte_identical(first_run: Path) -> None:
    parallel = audit(first_run.parent, "run_jobs2", jobs=2)
    assert cached_logits(first_run) == cached_logits(parallel)
    assert_same_outputs(first_run, parallel)


# ------------------------------------------------------------------------------------------ executors


def _tiny() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    from miaudit.audit import balanced_membership

    X, y = load_digits(return_X_y=True)
    return X[:160], y[:160].astype(np.int64), balanced_membership(160, 4, seed=1)


def _train(tmp: Path, name: str, **kw: Any) -> np.ndarray:
    X, y, m = _tiny()
    recipe = SklearnRecipe("sklearn.linear_model.LogisticRegression", {"max_iter": 150}, n_classes=10)
    out = train_models(recipe, X, y, m, seeds=model_seeds(3, 4), run_dir=tmp / name, **kw)
    assert out.n_trained == 4
    return out.logits


def test_executors_give_identical_logits(tmp_path: Path) -> None:
    inline = _train(tmp_path, "inline", jobs=1)
    procs_only = _train(tmp_path, "procs", jobs=2, executor="process", local_worker=False)
    mixed = _train(tmp_path, "mixed", jobs=2, executor="process", local_worker=True)
    assert inline.tobytes() == procs_only.tobytes() == mixed.tobytes()


@pytest.mark.slow
def test_spawned_workers_give_identical_logits(tmp_path: Path) -> None:
    inline = _train(tmp_path, "inline", jobs=1)
    spawned = _train(tmp_path, "spawn", jobs=2, local_worker=False, mp_context="spawn")
    assert inline.tobytes() == spawned.tobytes()


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_executor_gives_identical_logits(tmp_path: Path) -> None:  # pragma: no cover - needs ray
    inline = _train(tmp_path, "inline", jobs=1)
    ray = _train(tmp_path, "ray", jobs=2, executor="ray")
    assert inline.tobytes() == ray.tobytes()


# ------------------------------------------------------------------------------------------ score, demo


# attacks with their own randomness (cross-fitting, shadow models, bootstraps) not run by the audit above
SCORE_ATTACKS = ["trained_gb", "shokri", "calibrated_loss", "rmia_offline"]


def _score_twice(tmp_path: Path, attacks: list[str] | None) -> None:
    rng = np.random.default_rng(5)
    n, k, c = 300, 4, 3
    labels = rng.integers(0, c, n)
    is_member = np.zeros(n, bool)
    is_member[rng.permutation(n)[: n // 2]] = True
    ref_is_member = np.zeros((k, n), bool)
    for j in range(n):
        ref_is_member[rng.permutation(k)[: k // 2], j] = True

    def logits(member: np.ndarray) -> np.ndarray:
        z = rng.normal(size=(*member.shape, c))
        onehot = np.eye(c)[labels]
        return z + onehot * (1.0 + 1.5 * member[..., None])

    bundle = SignalBundle.from_arrays(
        labels=labels, target_logits=logits(is_member), is_member=is_member,
        ref_logits=logits(ref_is_member).astype(np.float32), ref_is_member=ref_is_member,
        groups=np.array(["north", "south", "east"])[rng.integers(0, 3, n)],
    )
    path = save_bundle(bundle, tmp_path / "b.npz")
    outs = []
    for name in ("s1", "s2"):
        run_cli(["score", str(path), "--out", str(tmp_path / name), *sum((["--attack", a] for a in attacks or []), [])])
        outs.append(tmp_path / name)
    res = json.loads((outs[0] / "results.json").read_text())
    assert res["slices"].get("group") and (attacks is None or sorted(res["attacks"]) == sorted(attacks))
    assert_same_outputs(*outs)


def test_score_twice_is_byte_identical(tmp_path: Path) -> None:
    _score_twice(tmp_path, SCORE_ATTACKS)


@pytest.mark.slow
def test_score_twice_with_every_attack_is_byte_identical(tmp_path: Path) -> None:
    _score_twice(tmp_path, None)


@pytest.mark.slow
def test_demo_twice_gives_the_same_json() -> None:
    from miaudit.audit import run_demo

    a, b = (run_demo(model="logreg", n_references=2, jobs=1).to_json() for _ in range(2))
    assert a.pop("created") and b.pop("created")
    assert json.dumps(a, sort_keys=True, allow_nan=False) == json.dumps(b, sort_keys=True, allow_nan=False)
