"""train_models: parallel = serial, cache reuse, selective retraining, crashes, SIGKILL resume."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from miaudit import InputError, TrainingError
from miaudit.training import (
    SklearnRecipe,
    TrainingProgress,
    data_fingerprint,
    model_key,
    model_seeds,
    rich_progress,
    train_models,
)
from miaudit.training._cache import read_model_file, remove_stale_temporaries, write_model_file

from ._helpers import (
    LR,
    BadShapeRecipe,
    CountingRecipe,
    FailOnSeed,
    GroupRecipe,
    PidRecipe,
    VaryingQueriesRecipe,
    balanced,
    digits,
    lr_recipe,
)

ROOT = Path(__file__).resolve().parents[2]
K = 4


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y = digits(200)
    return X, y, balanced(200, K)


def test_serial_run_shapes_accuracy_and_files(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    seen: list[TrainingProgress] = []
    out = train_models(lr_recipe(), X, y, m, seeds=model_seeds(0, K), run_dir=tmp_path, jobs=1, progress=seen.append)
    assert out.logits.shape == (K, 200, 1, 10) and out.logits.dtype == np.float32
    assert out.n_trained == K and out.n_cached == 0
    files = sorted((tmp_path / "models").glob("*.npz"))
    assert len(files) == K and {f.stem for f in files} == set(out.keys)
    # accuracies recomputed by brute force from the logits
    for k in range(K):
        pred = out.logits[k, :, 0].argmax(1)
        assert out.train_accuracy[k] == pytest.approx(np.mean(pred[m[k]] == y[m[k]]))
        assert out.test_accuracy[k] == pytest.approx(np.mean(pred[~m[k]] == y[~m[k]]))
    assert np.all(out.train_accuracy > out.test_accuracy)
    assert seen[0].n_done == 0 and seen[-1].n_done == seen[-1].n_total == K
    assert out.fit_seconds.min() > 0 and 0 <= out.overhead_fraction <= 1


def test_jobs_1_and_2_give_identical_logits_and_pool_pins_threads(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    seeds = model_seeds(3, K)
    a = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path / "a", jobs=1)
    log = tmp_path / "pids.txt"
    recipe = PidRecipe(LR, {"max_iter": 200}, n_classes=10, log_path=str(log))
    b = train_models(recipe, X, y, m, seeds=seeds, run_dir=tmp_path / "b", jobs=2, local_worker=False)
    assert np.array_equal(a.logits, b.logits)
    assert a.keys == b.keys
    # default: this process trains too while the worker starts; same models
    c = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path / "c", jobs=2)
    assert np.array_equal(a.logits, c.logits) and c.n_trained == K
    rows = [line.split() for line in log.read_text().splitlines()]
    assert len(rows) == K
    assert all(int(pid) != os.getpid() for pid, _, _ in rows)  # trained in worker processes
    assert all(omp == "1" and int(threads) == 1 for _, omp, threads in rows)


def test_second_run_trains_nothing(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    recipe = CountingRecipe(LR, {"max_iter": 200}, n_classes=10)
    first = train_models(recipe, X, y, m, seeds=model_seeds(0, K), run_dir=tmp_path, jobs=1)
    assert len(recipe.calls) == K
    second = train_models(recipe, X, y, m, seeds=model_seeds(0, K), run_dir=tmp_path, jobs=1)
    assert len(recipe.calls) == K and second.n_trained == 0 and second.n_cached == K
    assert np.array_equal(first.logits, second.logits)
    np.testing.assert_array_equal(first.fit_seconds, second.fit_seconds)


def test_changes_retrain_only_affected_models(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    seeds = model_seeds(0, K)
    recipe = CountingRecipe(LR, {"max_iter": 200}, n_classes=10)
    train_models(recipe, X, y, m, seeds=seeds, run_dir=tmp_path, jobs=1)
    recipe.calls.clear()
    # new seed for model 1 only
    seeds2 = list(seeds)
    seeds2[1] += 1
    train_models(recipe, X, y, m, seeds=seeds2, run_dir=tmp_path, jobs=1)
    assert recipe.calls == [seeds2[1]]
    # membership row 2 changes
    recipe.calls.clear()
    m2 = m.copy()
    m2[2, :2] = ~m2[2, :2]
    train_models(recipe, X, y, m2, seeds=seeds, run_dir=tmp_path, jobs=1)
    assert recipe.calls == [seeds[2]]
    # other parameters: every model
    recipe2 = CountingRecipe(LR, {"max_iter": 200, "C": 0.5}, n_classes=10)
    train_models(recipe2, X, y, m, seeds=seeds, run_dir=tmp_path, jobs=1)
    assert sorted(recipe2.calls) == sorted(seeds)
    # other data: every model
    recipe3 = CountingRecipe(LR, {"max_iter": 200}, n_classes=10)
    X2 = X.copy()
    X2[0, 0] += 1
    train_models(recipe3, X2, y, m, seeds=seeds, run_dir=tmp_path, jobs=1)
    assert len(recipe3.calls) == K


def test_model_key_depends_on_every_component() -> None:
    X, y = digits(20)
    fp = data_fingerprint(X, y)
    row = np.arange(20) % 2 == 0
    spec = lr_recipe().spec()
    base = model_key(spec, fp, row, 1)
    assert base == model_key(dict(spec), data_fingerprint(X.copy(), y.copy()), row.copy(), 1)
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 10
    row2 = row.copy()
    row2[-1] = True
    others = {
        model_key(spec, fp, row, 2),
        model_key(lr_recipe(C=2.0).spec(), fp, row, 1),
        model_key(spec, data_fingerprint(X, y2), row, 1),
        model_key(spec, data_fingerprint(X.astype(np.float32), y), row, 1),
        model_key(spec, fp, row2, 1),
    }
    assert base not in others and len(others) == 5


def test_dataframe_fingerprint_sees_values_and_columns() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0], "b": pd.Categorical(["x", "y"])})
    y = np.array([0, 1])
    fp = data_fingerprint(df, y)
    assert fp == data_fingerprint(df.copy(), y)
    assert fp != data_fingerprint(df.rename(columns={"a": "c"}), y)
    df2 = df.copy()
    df2.loc[1, "b"] = "x"
    assert fp != data_fingerprint(df2, y)


def test_fork_context_gives_the_same_models(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    seeds = model_seeds(4, K)
    a = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path / "a", jobs=1)
    log = tmp_path / "pids.txt"
    b = train_models(PidRecipe(LR, {"max_iter": 200}, n_classes=10, log_path=str(log)), X, y, m, seeds=seeds,
                     run_dir=tmp_path / "b", jobs=2, mp_context="fork", local_worker=False)
    assert np.array_equal(a.logits, b.logits)
    assert all(int(line.split()[0]) != os.getpid() for line in log.read_text().splitlines())


def test_crash_names_the_model_and_keeps_the_others(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    seeds = model_seeds(0, K)
    bad = FailOnSeed(LR, {"max_iter": 200}, n_classes=10, fail_seed=seeds[2])
    with pytest.raises(TrainingError, match=rf"model 2 \(seed {seeds[2]}\) failed: ValueError: boom on seed .*3 of 4 models are finished"):
        train_models(bad, X, y, m, seeds=seeds, run_dir=tmp_path, jobs=1)
    assert len(list((tmp_path / "models").glob("*.npz"))) == 3
    recipe = CountingRecipe(LR, {"max_iter": 200}, n_classes=10)
    train_models(recipe, X, y, m, seeds=seeds, run_dir=tmp_path, jobs=1)
    assert recipe.calls == [seeds[2]]


def test_crash_in_a_worker_process(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    seeds = model_seeds(0, K)
    bad = FailOnSeed(LR, {"max_iter": 200}, n_classes=10, fail_seed=seeds[0])
    with pytest.raises(TrainingError, match=r"model 0 .*boom.*3 of 4 models are finished and cached"):
        train_models(bad, X, y, m, seeds=seeds, run_dir=tmp_path, jobs=2, local_worker=False)
    assert len(list((tmp_path / "models").glob("*.npz"))) == 3


def test_bad_logits_shape_is_a_training_error(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    recipe = BadShapeRecipe(LR, {"max_iter": 50}, n_classes=10)
    with pytest.raises(TrainingError, match=r"model 0 .*predict_logits returned shape \(3, 1, 10\), expected \(200, A, 10\)"):
        train_models(recipe, X, y, m, seeds=model_seeds(0, K), run_dir=tmp_path, jobs=1)


def test_models_with_different_query_counts_are_a_training_error(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    seeds = model_seeds(0, K)
    recipe = VaryingQueriesRecipe(LR, {"max_iter": 50}, n_classes=10, odd_seed=seeds[2])
    with pytest.raises(TrainingError, match=r"model 2: logits of shape \(200, 2, 10\), model 0 gave \(200, 1, 10\)"):
        train_models(recipe, X, y, m, seeds=seeds, run_dir=tmp_path, jobs=1)


def test_train_group_is_used_and_gives_the_same_models(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    seeds = model_seeds(0, K)
    log = tmp_path / "groups.txt"
    grouped = train_models(GroupRecipe(LR, {"max_iter": 200}, n_classes=10, log_path=str(log)), X, y, m,
                           seeds=seeds, run_dir=tmp_path / "g", jobs=1)
    assert log.read_text().split() == ["3", "1"]
    single = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path / "s", jobs=1)
    assert np.array_equal(grouped.logits, single.logits)


def test_stale_temporary_and_corrupt_files_are_not_taken_as_models(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y, m = data
    seeds = model_seeds(0, K)
    recipe = lr_recipe()
    keys = [model_key(recipe.spec(), data_fingerprint(X, y), m[k], seeds[k]) for k in range(K)]
    models = tmp_path / "models"
    models.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = models / f"{keys[0]}.npz.tmp-{dead.pid}-abcd1234"
    stale.write_bytes(b"PK\x03\x04half-written")
    (models / f"{keys[1]}.npz").write_bytes(b"PK\x03\x04truncated")  # e.g. a disk filled up
    counting = CountingRecipe(LR, {"max_iter": 200}, n_classes=10)
    out = train_models(counting, X, y, m, seeds=seeds, run_dir=tmp_path, jobs=1)
    assert sorted(counting.calls) == sorted(seeds) and out.n_trained == K
    assert not stale.exists()
    assert not list(models.glob("*.tmp-*"))


def test_write_is_atomic_and_cleans_up(tmp_path: Path) -> None:
    p = tmp_path / "models" / "k.npz"
    write_model_file(p, logits=np.ones((5, 1, 3)), fit_seconds=1.0, predict_seconds=0.5, meta={"a": 1})
    got = read_model_file(p, n_examples=5, n_classes=3)
    assert got is not None and got["fit_seconds"] == 1.0 and got["logits"].dtype == np.float32
    assert read_model_file(p, n_examples=6, n_classes=3) is None  # wrong shape = not this model
    unsortable: Any = {"a": object(), 1: 1, "b": 2}  # keys of mixed types: json.dumps(sort_keys=True) fails
    with pytest.raises(TypeError):
        write_model_file(p, logits=np.ones((5, 1, 3)), fit_seconds=1.0, predict_seconds=0.5, meta=unsortable)
    assert [f.name for f in p.parent.iterdir()] == ["k.npz"]
    assert remove_stale_temporaries(tmp_path / "absent") == 0


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from tests.training._helpers import LR, SlowRecipe, balanced, digits
    from miaudit.training import model_seeds, train_models

    if __name__ == "__main__":
        X, y = digits(120)
        recipe = SlowRecipe(LR, {{"max_iter": 100}}, n_classes=10, delay=0.5)
        train_models(recipe, X, y, balanced(120, 6), seeds=model_seeds(5, 6), run_dir=sys.argv[1], jobs=int(sys.argv[2]))
    """
)


@pytest.mark.parametrize("jobs", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_resume_after_sigkill_is_identical_to_an_uninterrupted_run(tmp_path: Path, jobs: int) -> None:
    X, y = digits(120)
    m = balanced(120, 6)
    seeds = model_seeds(5, 6)
    script = tmp_path / "train.py"
    script.write_text(_KILL_SCRIPT.format(root=str(ROOT)))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(run), str(jobs)], start_new_session=True)
    deadline = time.monotonic() + 90
    models = run / "models"
    try:
        while time.monotonic() < deadline:
            if models.is_dir() and len(list(models.glob("*.npz"))) >= 2:
                break
            assert proc.poll() is None, "training finished or crashed before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no model file appeared in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and its worker processes
        proc.wait()
    n_done = len(list(models.glob("*.npz")))
    assert 2 <= n_done < 6
    recipe = CountingRecipe(LR, {"max_iter": 100}, n_classes=10)
    resumed = train_models(recipe, X, y, m, seeds=seeds, run_dir=run, jobs=1)
    assert 0 < len(recipe.calls) <= 6 - n_done + (jobs - 1)  # at most the models in flight are lost
    fresh = train_models(SklearnRecipe(LR, {"max_iter": 100}, n_classes=10), X, y, m, seeds=seeds,
                         run_dir=tmp_path / "fresh", jobs=1)
    assert np.array_equal(resumed.logits, fresh.logits)
    assert not list(models.glob("*.tmp-*"))


def test_rich_progress_renders(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path) -> None:
    from rich.console import Console

    X, y, m = data
    buf = io.StringIO()
    with rich_progress("refs", console=Console(file=buf, force_terminal=False, width=120)) as cb:
        train_models(lr_recipe(), X, y, m, seeds=model_seeds(0, K), run_dir=tmp_path, jobs=1, progress=cb)
    with rich_progress("refs", console=Console(file=buf, force_terminal=False, width=120)) as cb:
        train_models(lr_recipe(), X, y, m, seeds=model_seeds(0, K), run_dir=tmp_path, jobs=1, progress=cb)
    text = buf.getvalue()
    assert "4/4" in text and "0/0" in text and "4 cached" in text


def test_model_seeds_are_deterministic_and_prefix_stable() -> None:
    assert model_seeds(7, 4) == model_seeds(7, 8)[:4]
    assert len(set(model_seeds(7, 64))) == 64
    assert model_seeds(7, 4) != model_seeds(8, 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": np.zeros(5, dtype=int)}, r"y: expected shape \(200,\) to match X, got \(5,\)"),
        ({"y": np.zeros(200)}, r"y: expected integer class labels, got dtype float64"),
        ({"y": np.full(200, 10)}, r"y: expected labels in \[0, 10\), got range \[10, 10\]"),
        ({"membership": np.ones((4, 5), bool)}, r"membership: expected a bool array of shape \(K, 200\), got shape \(4, 5\)"),
        ({"membership": np.ones((4, 200), int)}, r"membership: expected dtype bool, got int"),
        ({"membership": np.zeros((4, 200), bool)}, r"membership: model 0 has no training example"),
        ({"seeds": [1, 2]}, r"seeds: expected 4 seeds \(one per model\), got 2"),
        ({"jobs": 0}, r"jobs: expected an int >= 1, got 0"),
        ({"jobs": True}, r"jobs: expected an int >= 1, got True"),
        ({"executor": "dask"}, r"executor: expected 'process' or 'ray', got 'dask'"),
        ({"recipe": object()}, r"recipe: expected an object with spec\(\), train\(\), predict_logits\(\) and n_classes"),
        ({"X": 5}, r"X: expected an array or DataFrame of examples, got int"),
        ({"mp_context": "vfork", "jobs": 2}, r"mp_context: expected 'forkserver', 'spawn' or 'fork', got 'vfork'"),
    ],
)
def test_bad_input(data: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    X, y, m = data
    args: dict[str, Any] = {"recipe": lr_recipe(), "X": X, "y": y, "membership": m, "seeds": model_seeds(0, K), "run_dir": tmp_path, "jobs": 1}
    args.update(kwargs)
    with pytest.raises(InputError, match=match):
        train_models(args.pop("recipe"), args.pop("X"), args.pop("y"), args.pop("membership"), **args)
