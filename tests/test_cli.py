"""The command line end to end on tiny data, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ._worlds import leaky_world


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI in-process (fast) with the same exit code and output streams as a user sees."""
    from typer.testing import CliRunner

    from miaudit.cli import app

    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return subprocess.CompletedProcess(args, res.exit_code, res.stdout, res.stderr)


def run_cli_subprocess(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "miaudit", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**__import__("os").environ, "COLUMNS": "200"},
    )


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "outputs.npz"
    np.savez(path, **leaky_world(n=600, k=8, shift=2.0))
    return path


def test_score_writes_the_three_outputs(bundle_path, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("score", str(bundle_path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert {"results.json", "scores.csv", "report.html"} <= {p.name for p in out.iterdir()}
    results = json.loads((out / "results.json").read_text())
    lira = results["attacks"]["lira_online"]
    assert {"auc", "tpr_at_fpr", "epsilon_lower_bound", "auc_ci", "n_nonmembers"} <= set(lira)
    assert set(lira["tpr_at_fpr"]) == {"0.001", "0.01", "0.1"}
    assert lira["auc"] > 0.8
    assert "lira_online" in proc.stdout  # summary table


def test_score_selected_attacks_only(bundle_path, tmp_path):
    proc = run_cli("score", str(bundle_path), "--out", str(tmp_path), "-a", "loss", "-a", "rmia")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["attacks"]) == {"loss", "rmia"}


def test_privacy_gate_exit_codes(bundle_path, tmp_path):
    leaky = run_cli("score", str(bundle_path), "-o", str(tmp_path), "-a", "lira_online", "--fail-above", "auc=0.6")
    assert leaky.returncode == 1
    assert "privacy budget exceeded" in leaky.stderr
    ok = run_cli("score", str(bundle_path), "-o", str(tmp_path), "-a", "lira_online", "--fail-above", "auc=1.0",
                 "--overwrite")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(
    "make_input, args, message, runner",
    [
        (lambda d: d / "missing.npz", [], "does not exist", run_cli_subprocess),
        (lambda d: d, [], "directory", run_cli),
        (lambda d: (d / "junk.npz").write_bytes(b"not a zip file") and d / "junk.npz", [], "junk.npz", run_cli_subprocess),
        (lambda d: d / "x.npz", ["--fail-above", "tpr<0.1"], "--fail-above", run_cli),
        (lambda d: d / "x.npz", ["--attack", "nope"], "unknown attack 'nope'", run_cli),
    ],
)
def test_bad_input_one_line_exit_2_and_out_untouched(tmp_path, bundle_path, make_input, args, message, runner):
    work = tmp_path / "work"
    work.mkdir()
    (work / "x.npz").write_bytes(bundle_path.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    keep = out / "results.json"
    keep.write_text('{"earlier": true}')
    target = make_input(work)
    proc = runner("score", str(target), "--out", str(out), "--overwrite", *args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert message in proc.stderr
    assert keep.read_text() == '{"earlier": true}'


def test_bundle_errors_are_one_line(tmp_path):
    world = leaky_world(n=100)
    world["labels"][0] = 7  # outside [0, C)
    path = tmp_path / "bad.npz"
    np.savez(path, **world)
    proc = run_cli("score", str(path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "labels" in lines[0], proc.stderr


def test_csv_table_bundle(tmp_path):
    import pandas as pd

    world = leaky_world(n=400)
    df = pd.DataFrame({f"logit_{c}": world["target_logits"][:, c] for c in range(3)})
    df["label"] = world["labels"]
    df["is_member"] = world["is_member"]
    df["site"] = np.where(np.arange(400) % 2, "<b>north</b>", "south")
    path = tmp_path / "outputs.csv"
    df.to_csv(path, index=False)
    proc = run_cli("score", str(path), "--out", str(tmp_path / "o"), "--group-column", "site")
    assert proc.returncode == 0, proc.stderr
    html = (tmp_path / "o" / "report.html").read_text()
    assert "<b>north</b>" not in html


def test_demo_end_to_end_small(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--model", "logreg", "--references", "2", "--jobs", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["game"]["source"] == "demo"
    assert results["game"]["n_examples"] == 1797
    assert "lira_online" in results["attacks"] and "loss" in results["attacks"]
    assert (out / "report.html").stat().st_size > 10_000


def test_attacks_command_lists_registry():
    proc = run_cli("attacks")
    assert proc.returncode == 0
    for name in ["loss", "trained_lr", "lira_online", "rmia", "attack_r", "shokri"]:
        assert name in proc.stdout


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("miaudit ")
    helptext = run_cli("demo", "--help").stdout
    assert "--fail-above" in helptext and "--model" in helptext
