"""The ray executor on a REAL Ray cluster on this machine (issue 12): no fake ``ray`` module.

One two-node cluster for the module (``ray.cluster_utils.Cluster``: a head without CPUs, so every task runs
on a worker node, plus one worker node of one CPU), all on 127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``),
shut down at the end of the module; a test that removes a node adds one first. Checked here:

* a small audit's models (and, through the CLI, its scores.csv) are identical to the process executor's;
* the data go to the object store once (a spy on the real ``ray.put``);
* outputs travel to the driver: every model's file is in the driver's cache, written by the driver;
* a worker node removed while tasks run: the run completes, identical results, every model cached;
* a recipe that fails on its own fails the run at once with the recipe's error (no retries, the rest
  cancelled), the finished models cached, and a re-run with a good recipe trains only the missing ones;
* ``miaudit audit CONFIG --executor ray --address ADDR`` end to end: the driver killed mid-run resumes from
  its cache, then a worker node is removed mid-run; scores.csv equals the process executor's;
* LiRA's reference pass as Ray tasks over shards of examples gives the unsharded scores exactly;
* ``num_gpus`` is requested from Ray (a node declaring a GPU runs the tasks with ``CUDA_VISIBLE_DEVICES``
  set; there is no real GPU here), and requests no node can meet are an input error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from miaudit import InputError, TrainingError
from miaudit.training import Execution, SklearnRecipe, TrainingProgress, model_seeds, train_models

from ._helpers import LR, FailOnSeed, SlowRecipe, balanced, digits, lr_recipe

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
N, K = 160, 6

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Head (0 CPUs) + one worker node (1 CPU) on loopback; every Ray process stopped at the end."""
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # worker processes unpickle the test recipes: they import miaudit and tests.* like this process
    mp.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    mp.setenv("RAY_DEDUP_LOGS", "0")
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "node_ip_address": "127.0.0.1",
        # notice a removed node within seconds (the defaults wait about half a minute)
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 1000,
                           "health_check_failure_threshold": 3},
    })
    try:
        c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        c.wait_for_nodes()
        yield c
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
        mp.undo()


def _alive_workers(c: Cluster) -> list[Any]:
    return [n for n in c.worker_nodes if n.remaining_processes_alive()]


def _ensure_two_workers(c: Cluster) -> None:
    while len(_alive_workers(c)) < 2:
        c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    c.wait_for_nodes()


def _remove_one_worker(c: Cluster) -> None:
    node = _alive_workers(c)[0]
    c.remove_node(node, allow_graceful=False)


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y = digits(N)
    return X, y, balanced(N, K, seed=3)


def test_ray_cluster_models_identical_to_processes_data_put_once(cluster: Cluster, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    X, y, m = _data()
    seeds = model_seeds(5, K)
    ref = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path / "proc", jobs=2, executor="process")
    puts: list[type] = []
    real_put = ray.put

    def spy(obj: Any, **kw: Any) -> Any:
        puts.append(type(obj))
        return real_put(obj, **kw)

    monkeypatch.setattr(ray, "put", spy)
    out = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path / "ray", jobs=2,
                       executor=Execution(executor="ray", address=cluster.address))
    assert out.logits.tobytes() == ref.logits.tobytes() and out.n_trained == K
    assert [t.__name__ for t in puts] == ["WorkState"]  # the recipe and the pool, once for all tasks
    files = sorted(p.stem for p in (tmp_path / "ray" / "models").glob("*.npz"))
    assert files == sorted(out.keys)
    for key in out.keys:  # written by this process (the driver), trained by a Ray worker process
        meta = json.loads(str(np.load(tmp_path / "ray" / "models" / f"{key}.npz")["meta"]))
        assert meta["pid"] != os.getpid()
    assert not ray.is_initialized()  # the executor disconnects what it connected


def test_worker_node_removed_mid_run_then_identical_and_all_cached(cluster: Cluster, tmp_path: Path) -> None:
    _ensure_two_workers(cluster)
    X, y, m = _data()
    seeds = model_seeds(6, K)
    ref = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path / "proc", jobs=1)
    removed_at: list[int] = []

    def progress(p: TrainingProgress) -> None:
        if p.n_done >= 1 and not removed_at:  # the first result is in: tasks run on both nodes
            removed_at.append(p.n_done)
            _remove_one_worker(cluster)

    slow = SlowRecipe(LR, {"max_iter": 200}, n_classes=10, delay=0.8)
    out = train_models(slow, X, y, m, seeds=seeds, run_dir=tmp_path / "ray", jobs=2, progress=progress,
                       executor=Execution(executor="ray", address=cluster.address, max_retries=3))
    assert removed_at and removed_at[0] < K  # the node went away while models were still to train
    assert len(_alive_workers(cluster)) == 1
    assert out.logits.tobytes() == ref.logits.tobytes()
    assert sorted(p.stem for p in (tmp_path / "ray" / "models").glob("*.npz")) == sorted(out.keys)


def test_recipe_error_fails_the_run_at_once_then_resume(cluster: Cluster, tmp_path: Path) -> None:
    X, y, m = _data()
    seeds = model_seeds(7, K)
    run = tmp_path / "ray"
    bad = FailOnSeed(LR, {"max_iter": 200}, n_classes=10, fail_seed=seeds[0])
    ex = Execution(executor="ray", address=cluster.address, max_retries=3)
    t0 = time.perf_counter()
    with pytest.raises(TrainingError, match=r"model 0 \(seed \d+\) failed: ValueError: boom on seed"):
        train_models(bad, X, y, m, seeds=seeds, run_dir=run, jobs=2, executor=ex)
    failed_after = time.perf_counter() - t0
    n_cached = len(list((run / "models").glob("*.npz")))
    assert n_cached < K  # the run stopped: not every other model was trained first
    good = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=run, jobs=2, executor=ex)
    assert good.n_cached == n_cached and good.n_trained == K - n_cached
    ref = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path / "proc", jobs=1)
    assert good.logits.tobytes() == ref.logits.tobytes()
    assert failed_after < 60


def test_gpu_request_on_a_cluster_without_gpus_is_an_input_error(cluster: Cluster, tmp_path: Path) -> None:
    X, y, m = _data()
    with pytest.raises(InputError, match=r"num_gpus: each model asks for 0.5 GPU but no node of the Ray cluster has one"):
        train_models(lr_recipe(), X, y, m, seeds=model_seeds(0, K), run_dir=tmp_path, jobs=2,
                     executor=Execution(executor="ray", address=cluster.address, num_gpus=0.5))
    with pytest.raises(InputError, match=r"num_cpus: each model asks for 4 CPUs but the largest node"):
        train_models(lr_recipe(), X, y, m, seeds=model_seeds(0, K), run_dir=tmp_path, jobs=2,
                     executor=Execution(executor="ray", address=cluster.address, num_cpus=4))
    assert not ray.is_initialized()


class GpuEnvRecipe(SklearnRecipe):
    """Records the GPUs Ray gave the task (``CUDA_VISIBLE_DEVICES``) next to the model's seed."""

    def __init__(self, *a: Any, log_dir: str, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.log_dir = log_dir

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        Path(self.log_dir, f"{seed}.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
        return super().train(X, y, seed=seed)


def test_num_gpus_is_requested_from_ray(cluster: Cluster, tmp_path: Path) -> None:
    """A node that declares one GPU (Ray does not check it: there is no GPU here) runs tasks asking for
    ``num_gpus = 0.5`` two at a time, with ``CUDA_VISIBLE_DEVICES`` set by Ray; results unchanged."""
    gpu_node = cluster.add_node(num_cpus=2, num_gpus=1, node_ip_address="127.0.0.1")
    try:
        cluster.wait_for_nodes()
        X, y, m = _data()
        seeds = model_seeds(8, K)
        logs = tmp_path / "logs"
        logs.mkdir()
        rec = GpuEnvRecipe(LR, {"max_iter": 200}, n_classes=10, log_dir=str(logs))
        out = train_models(rec, X, y, m, seeds=seeds, run_dir=tmp_path / "ray", jobs=2,
                           executor=Execution(executor="ray", address=cluster.address, num_gpus=0.5))
        assert sorted(p.read_text() for p in logs.iterdir()) == ["0"] * K  # every task got the GPU
        ref = train_models(lr_recipe(), X, y, m, seeds=seeds, run_dir=tmp_path / "proc", jobs=1)
        assert out.logits.tobytes() == ref.logits.tobytes()
    finally:
        cluster.remove_node(gpu_node)


def test_bad_address_is_an_input_error(tmp_path: Path) -> None:
    X, y, m = _data()
    with pytest.raises(InputError, match=r"--address 127.0.0.1:9: cannot connect to a Ray cluster"):
        train_models(lr_recipe(), X, y, m, seeds=model_seeds(0, K), run_dir=tmp_path, jobs=2,
                     executor=Execution(executor="ray", address="127.0.0.1:9"))
    assert not ray.is_initialized()


SLOW_ESTIMATOR = '''\
import time

from sklearn.linear_model import LogisticRegression


class SlowLR(LogisticRegression):
    """LogisticRegression that takes most of a second to fit (so a node can die while models train)."""

    def fit(self, X, y, sample_weight=None):
        time.sleep(0.7)
        return super().fit(X, y, sample_weight=sample_weight)
'''

CLI_CONFIG = """\
attacks = ["loss", "lira_online", "rmia"]

[data]
kind = "digits"
max_examples = 160

[model]
estimator = "slow_estimator.SlowLR"
params = {{ max_iter = 200 }}
preprocessing = "none"

[game]
n_references = 4
n_targets = 2
seed = 3

[output]
dir = "{out}"
"""


def test_cli_audit_executor_ray_address_survives_a_node_loss(cluster: Cluster, tmp_path: Path) -> None:
    """The issue's "done" check, fast: the driver is killed (SIGKILL) once a model is in its cache and
    re-run, which resumes from the cache; a worker node dies once the resumed run has cached another model;
    scores.csv equals --executor process's and all K models end up in the driver's cache."""
    _ensure_two_workers(cluster)
    (tmp_path / "slow_estimator.py").write_text(SLOW_ESTIMATOR)
    for name in ("proc", "ray"):
        (tmp_path / f"{name}.toml").write_text(CLI_CONFIG.format(out=name))
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

    def audit(name: str, *extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "miaudit", "audit", str(tmp_path / f"{name}.toml"), *extra],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    models = tmp_path / "ray" / "cache" / "models"

    def wait_for_models(proc: subprocess.Popen[bytes], n: int) -> int:
        deadline = time.monotonic() + 150
        while len(list(models.glob("*.npz"))) < n and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        return len(list(models.glob("*.npz")))

    ray_args = ("--executor", "ray", "--address", cluster.address)
    first = audit("ray", *ray_args)
    n_killed = wait_for_models(first, 1)
    first.kill()  # the driver dies mid-run (SIGKILL): its tasks die with it, its cache stays
    first.communicate(timeout=60)
    assert 1 <= n_killed < 6 and not list(models.glob("*.tmp-*"))
    proc = audit("ray", *ray_args, "--overwrite")
    n_before = wait_for_models(proc, n_killed + 1)
    _remove_one_worker(cluster)
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out.decode()[-3000:]
    assert n_before < 6  # 4 references + 2: the node died while models were still training
    ref = audit("proc", "--executor", "process", "--jobs", "2")
    ref_out, _ = ref.communicate(timeout=180)
    assert ref.returncode == 0, ref_out.decode()[-3000:]
    assert (tmp_path / "ray" / "scores.csv").read_bytes() == (tmp_path / "proc" / "scores.csv").read_bytes()
    assert len(list(models.glob("*.npz"))) == 6

def test_lira_scored_as_ray_tasks_over_shards_equals_unsharded(cluster: Cluster) -> None:
    from miaudit.attacks import get_attack
    from miaudit.attacks._sharded import sharded_fit_score

    from ..attacks.test_reference import gaussian_world

    bundle, _, _ = gaussian_world(400, 8, seed=2, n_queries=2, population=20)
    whole = get_attack("lira_online").fit_score(bundle)
    sharded = sharded_fit_score(get_attack("lira_online", chunk_size=50), bundle, n_shards=4, executor="ray",
                                address=cluster.address)
    assert np.array_equal(whole, sharded) and not ray.is_initialized()
