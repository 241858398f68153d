"""Start-up cost and phase timings: what an audit imports, and results.json ``run``.

Importing scipy.stats takes about half a second, scikit-learn's ensembles (with the rest of scikit-learn)
more, and an audit that runs neither a trained attack nor a scikit-learn model needs none of them. Each
check runs in a fresh interpreter (a subprocess), so modules other tests imported do not count.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from miaudit._timing import PHASES, RunClock, phase, process_age

#: Runs the CLI's entry point in this interpreter, then prints which of the watched modules got imported.
DRIVER = """
import json, sys
from miaudit.cli import main
sys.argv = ["miaudit", *sys.argv[1:]]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
watched = {watched!r}
print(json.dumps({{"exit": code, "imported": sorted(m for m in watched if m in sys.modules)}}))
"""

HEAVY = ("sklearn", "sklearn.ensemble", "scipy.stats", "scipy.optimize", "pandas", "matplotlib")


def _run(code: str, *args: str, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _config(tmp_path: Path, model: str) -> Path:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    X = (rng.normal(size=(240, 6)) + y[:, None]).astype(np.float32)
    np.savez(tmp_path / "pool.npz", X=X, y=y)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"""attacks = ["rmia", "lira_online"]
[data]
kind = "npz"
path = "pool.npz"
[model]
{model}
[game]
n_references = 4
n_targets = 1
seed = 0
[output]
dir = "out"
""")
    return cfg


def _check_run(results: dict) -> None:
    run = results["run"]
    timings = run["timings_s"]
    assert set(timings) == set(PHASES)
    assert all(isinstance(v, float) and v >= 0.0 for v in timings.values()), timings
    assert sum(timings.values()) <= run["total_s"], run
    assert run["startup_from"] in ("process_start", "miaudit_import")
    assert timings["startup"] > 0.0 and timings["train"] > 0.0 and timings["report"] > 0.0, timings


def test_importing_the_cli_and_the_audit_layers_imports_no_unused_heavy_module(tmp_path: Path) -> None:
    code = ("import json, sys\nimport miaudit.cli, miaudit.audit, miaudit.attacks, miaudit.metrics, miaudit.report, "
            f"miaudit.training, miaudit.data, miaudit.config\nwatched = {HEAVY!r}\n"
            "print(json.dumps({'imported': sorted(m for m in watched if m in sys.modules)}))")
    # pandas is needed: AuditResult.scores is a DataFrame and scores.csv is written by pandas
    assert _run(code, cwd=tmp_path)["imported"] == ["pandas"]


def test_cli_alone_imports_none_of_them(tmp_path: Path) -> None:
    code = f"import json, sys\nimport miaudit.cli\nprint(json.dumps({{'imported': [m for m in {HEAVY!r} if m in sys.modules]}}))"
    assert _run(code, cwd=tmp_path)["imported"] == []


def test_an_audit_of_a_logistic_regression_imports_no_ensemble_and_times_its_phases(tmp_path: Path) -> None:
    """A scikit-learn model needs scikit-learn (which itself imports scipy.stats and pandas), but rmia and
    lira_online need no attack classifier: sklearn.ensemble stays unimported."""
    cfg = _config(tmp_path, 'kind = "sklearn"\nestimator = "sklearn.linear_model.LogisticRegression"\n'
                            "params = { max_iter = 200 }")
    out = _run(DRIVER.format(watched=HEAVY), "audit", str(cfg), "--jobs", "1", cwd=tmp_path)
    assert out["exit"] == 0
    assert "sklearn" in out["imported"] and "sklearn.ensemble" not in out["imported"], out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(results["attacks"]) == {"rmia", "lira_online"}
    _check_run(results)
    assert list(results)[:4] == ["schema_version", "miaudit_version", "created", "run"]


@pytest.mark.torch
def test_an_audit_of_a_torch_model_imports_neither_scikit_learn_nor_scipy_stats(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    cfg = _config(tmp_path, 'kind = "torch"\nmodel = "mlp"\nmodel_kwargs = { hidden = [8] }\nepochs = 2\n'
                            "batch_size = 64\nstack = true")
    out = _run(DRIVER.format(watched=HEAVY), "audit", str(cfg), "--jobs", "1", cwd=tmp_path)
    assert out["exit"] == 0
    assert not {"sklearn", "sklearn.ensemble", "scipy.stats", "scipy.optimize"} & set(out["imported"]), out
    _check_run(json.loads((tmp_path / "out" / "results.json").read_text()))


def test_phases_add_up_and_do_nothing_without_a_clock() -> None:
    with phase("train"):  # no active clock: a no-op
        pass
    clock = RunClock()
    with clock.active():
        for name in ("load", "train", "load"):
            with phase(name):
                sum(range(1000))
    with phase("score"):  # the clock is no longer active
        pass
    d = clock.to_dict()
    assert set(d["timings_s"]) == set(PHASES) and d["timings_s"]["score"] == 0.0
    assert d["timings_s"]["load"] > 0.0 and d["timings_s"]["train"] > 0.0
    assert sum(d["timings_s"].values()) <= d["total_s"]
    age, origin = process_age()
    assert math.isfinite(age) and age >= 0.0 and origin in ("process_start", "miaudit_import")
