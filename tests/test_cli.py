"""The command line end to end on tiny data, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
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


def test_attacks_of_another_access_are_one_line_not_one_each(bundle_path, tmp_path):
    """A logits bundle cannot run the label-only and raw-score attacks: the terminal says so once."""
    proc = run_cli("score", str(bundle_path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    skipped = json.loads((tmp_path / "o" / "results.json").read_text())["skipped"]
    assert {"gap", "label_augment", "max_score"} <= set(skipped)  # results.json keeps every reason
    assert "skipped gap" not in proc.stdout and "skipped max_score" not in proc.stdout
    lines = [x for x in proc.stdout.splitlines() if "need another access" in x]
    assert len(lines) == 1, proc.stdout  # one line, however wide the terminal
    assert "gap" in lines[0] and "max_score" in lines[0] and "miaudit attacks" in lines[0]


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
    for name in ["loss", "trained_lr", "lira_online", "rmia", "base", "base_offline", "attack_r", "shokri"]:
        assert name in proc.stdout


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("miaudit ")
    helptext = run_cli("demo", "--help").stdout
    assert "--fail-above" in helptext and "--model" in helptext


# ------------------------------------------------------------------------------------ issue 11: bad runs end early

AUDIT_CONFIG = """\
attacks = ["loss", "rmia"]
[data]
kind = "digits"
max_examples = 160
[model]
estimator = "{estimator}"
params = {{ max_iter = 100 }}
[game]
n_references = 2
n_targets = 1
[metrics]
fprs = [0.01, 0.1]
[output]
dir = "out"
"""

LEVERS_SECTION = """
[levers.values]
"model.params.C" = [0.01, 100.0]
"""


def write_audit_config(root: Path, *, estimator: str = "sklearn.linear_model.LogisticRegression",
                       levers: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / ("levers.toml" if levers else "audit.toml")
    cfg.write_text(AUDIT_CONFIG.format(estimator=estimator) + (LEVERS_SECTION if levers else ""))
    return cfg


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with its bytes (None for folders): equal snapshots = nothing written."""
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): (p.read_bytes() if p.is_file() else None)
            for p in sorted(folder.rglob("*"))}


def one_error_line(proc: subprocess.CompletedProcess, *, progress: bool = False) -> str:
    """The one line of stderr (with ``progress``: the one ``error:`` line after a training progress bar)."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    if progress:
        lines = [ln for ln in lines if ln.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _command(kind: str, root: Path, bundle: Path, out: Path) -> list[str]:
    """The CLI arguments of ``kind`` writing into ``out`` (tiny inputs)."""
    if kind == "demo":
        return ["demo", "--model", "logreg", "--references", "2", "--jobs", "1", "--out", str(out)]
    if kind == "score":
        return ["score", str(bundle), "--out", str(out)]
    if kind == "audit":
        return ["audit", str(write_audit_config(root / "cfg")), "--jobs", "1", "--out", str(out)]
    return ["levers", str(write_audit_config(root / "cfg", levers=True)), "--jobs", "1", "--out", str(out)]


def _bad_out(case: str, kind: str, tmp_path: Path) -> tuple[Path, str]:
    """An unusable --out and a word its error message must contain."""
    if case == "file":
        p = tmp_path / "taken"
        p.write_text("a file\n")
        return p, "not a folder"
    if case == "under_a_file":
        (tmp_path / "taken").write_text("a file\n")
        return tmp_path / "taken" / "sub", "is a file"
    if case == "output_is_a_folder":
        p = tmp_path / "out"
        (p / ("levers.html" if kind == "levers" else "results.json")).mkdir(parents=True)
        (p / "keep.txt").write_text("mine\n")
        return p, "not a file"
    if case == "earlier_run":
        p = tmp_path / "out"
        p.mkdir()
        (p / ("levers.html" if kind == "levers" else "report.html")).write_text("<p>earlier</p>\n")
        return p, "--overwrite"
    # read-only: a folder nobody may write to (root writes anywhere: then a read-only kernel folder)
    if os.geteuid() == 0:
        if not Path("/sys").is_dir():
            pytest.skip("root writes anywhere and there is no read-only /sys here")
        return Path("/sys"), "not writable"
    p = tmp_path / "ro"
    p.mkdir()
    (p / "keep.txt").write_text("mine\n")
    p.chmod(0o555)
    return p, "not writable"


@pytest.mark.parametrize("kind", ["demo", "score", "audit", "levers"])
@pytest.mark.parametrize("case", ["file", "under_a_file", "output_is_a_folder", "earlier_run", "read_only"])
def test_unusable_out_exit_2_before_any_work(tmp_path, bundle_path, kind, case):
    out, word = _bad_out(case, kind, tmp_path)
    args = _command(kind, tmp_path, bundle_path, out)
    before = snapshot(out) if out.is_dir() and out != Path("/sys") else None
    started = time.perf_counter()
    try:
        proc = run_cli(*args)
    finally:
        if case == "read_only" and out != Path("/sys"):
            out.chmod(0o755)  # so that pytest can clean up
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    line = one_error_line(proc)
    assert "--out" in line and word in line, line
    assert time.perf_counter() - started < 20  # refused before training or scoring
    if before is not None:
        assert snapshot(out) == before  # nothing written, no cache folder either
    assert not (tmp_path / "cfg" / "out").exists()  # the config's own output folder was not used either


def test_earlier_run_refused_unless_overwrite_and_a_cache_alone_is_no_earlier_run(tmp_path):
    cfg = write_audit_config(tmp_path)
    out = tmp_path / "out"
    first = run_cli("audit", str(cfg), "--jobs", "1")
    assert first.returncode == 0, first.stderr
    assert {"results.json", "scores.csv", "report.html", "cache"} <= {p.name for p in out.iterdir()}

    before = snapshot(out)
    again = run_cli("audit", str(cfg), "--jobs", "1")
    assert again.returncode == 2
    line = one_error_line(again)
    assert "earlier run" in line and "--overwrite" in line and "results.json" in line
    assert snapshot(out) == before  # files untouched

    for name in ("results.json", "scores.csv", "report.html"):  # only the model cache is left
        (out / name).unlink()
    cached = run_cli("audit", str(cfg), "--jobs", "1")
    assert cached.returncode == 0, cached.stderr

    forced = run_cli("audit", str(cfg), "--jobs", "1", "--overwrite")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((out / "results.json").read_text())["game"]["source"] == "audit"


def test_score_refuses_to_overwrite_then_overwrites(bundle_path, tmp_path):
    out = tmp_path / "out"
    assert run_cli("score", str(bundle_path), "--out", str(out), "-a", "loss").returncode == 0
    before = snapshot(out)
    refused = run_cli("score", str(bundle_path), "--out", str(out), "-a", "loss")
    assert refused.returncode == 2 and "--overwrite" in one_error_line(refused)
    assert snapshot(out) == before
    assert run_cli("score", str(bundle_path), "--out", str(out), "-a", "loss", "--overwrite").returncode == 0


# ------------------------------------------------------------------------------------------------ exit codes


BROKEN_MODULE = '''\
from sklearn.linear_model import LogisticRegression


class Broken(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        raise RuntimeError("this estimator always fails")
'''


def test_exit_3_when_training_fails(tmp_path):
    name = f"broken_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(BROKEN_MODULE)
    cfg = write_audit_config(tmp_path, estimator=f"{name}.Broken")
    proc = run_cli("audit", str(cfg), "--jobs", "1")
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert "always fails" in one_error_line(proc, progress=True)
    assert not (tmp_path / "out" / "results.json").exists()


def test_exit_4_on_a_crash_traceback_only_with_debug(bundle_path, tmp_path, monkeypatch):
    import miaudit.audit

    def boom(*a, **k):
        raise ZeroDivisionError("deliberate")

    monkeypatch.setattr(miaudit.audit, "evaluate_bundle", boom)
    monkeypatch.delenv("MIAUDIT_DEBUG", raising=False)
    plain = run_cli("score", str(bundle_path), "--out", str(tmp_path / "a"))
    assert plain.returncode == 4
    line = one_error_line(plain)
    assert "bug" in line and "ZeroDivisionError: deliberate" in line and "--debug" in line
    debug = run_cli("--debug", "score", str(bundle_path), "--out", str(tmp_path / "b"))
    assert debug.returncode == 4 and "Traceback" in debug.stderr and "deliberate" in debug.stderr
    monkeypatch.setenv("MIAUDIT_DEBUG", "1")
    from typer.testing import CliRunner

    from miaudit.cli import app

    res = CliRunner().invoke(app, ["score", str(bundle_path), "--out", str(tmp_path / "c")])
    assert res.exit_code == 4 and "Traceback" in res.stderr


def test_exit_codes_documented_in_help_and_readme():
    helptext = run_cli("--help").stdout
    for text in ("Exit codes", "0 success", "1 a privacy budget", "2 bad input", "3 a training", "4 an unexpected"):
        assert text in " ".join(helptext.split()), text
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Command line", 1)[1].split("\n## ", 1)[0]
    for code in ("`0`", "`1`", "`2`", "`3`", "`4`"):
        assert code in section, code


# --------------------------------------------------------------------------------- budgets, --fpr, --attack


@pytest.mark.parametrize("kind", ["demo", "score", "audit", "levers"])
def test_fail_above_at_an_fpr_not_computed_exit_2_at_once(tmp_path, bundle_path, kind):
    out = tmp_path / "new"
    started = time.perf_counter()
    proc = run_cli(*_command(kind, tmp_path, bundle_path, out), "--fail-above", "tpr@0.05=0.1")
    assert proc.returncode == 2
    line = one_error_line(proc)
    assert "tpr@0.05" in line and "not among the computed FPRs" in line
    assert ("--fpr 0.05" if kind in ("demo", "score") else "[metrics] fprs") in line
    assert time.perf_counter() - started < 20
    assert not out.exists() and not (tmp_path / "cfg" / "out").exists()


def test_score_fpr_adds_fprs_and_the_budget_on_it(bundle_path, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("score", str(bundle_path), "--out", str(out), "-a", "loss", "--fpr", "0.05", "--fpr", "0.2",
                   "--fail-above", "tpr@0.05=1.0")
    assert proc.returncode == 0, proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert set(results["attacks"]["loss"]["tpr_at_fpr"]) == {"0.05", "0.2"}
    bad = run_cli("score", str(bundle_path), "--out", str(tmp_path / "o2"), "--fpr", "1.5")
    assert bad.returncode == 2 and "--fpr" in one_error_line(bad)
    assert not (tmp_path / "o2").exists()


def test_audit_attack_overrides_the_config(tmp_path):
    cfg = write_audit_config(tmp_path)
    proc = run_cli("audit", str(cfg), "--jobs", "1", "--attack", "loss")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads((tmp_path / "out" / "results.json").read_text())["attacks"]) == {"loss"}
    bad = run_cli("audit", str(cfg), "--attack", "nope", "--overwrite")
    assert bad.returncode == 2 and "unknown attack 'nope'" in one_error_line(bad)


def test_audit_runs_base_and_base_offline(tmp_path):
    """A tiny audit with the BASE attacks only (list form), then with their parameters set in the table form."""
    cfg = write_audit_config(tmp_path)
    cfg.write_text(cfg.read_text().replace('attacks = ["loss", "rmia"]', 'attacks = ["base", "base_offline"]'))
    proc = run_cli("audit", str(cfg), "--jobs", "1")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    results = json.loads((out / "results.json").read_text())
    assert set(results["attacks"]) == {"base", "base_offline"}
    for name in ("base", "base_offline"):
        assert 0.0 <= results["attacks"][name]["auc"] <= 1.0
    header = (out / "scores.csv").read_text().splitlines()[0].split(",")
    assert "base" in header and "base_offline" in header
    first = np.loadtxt(out / "scores.csv", delimiter=",", skiprows=1, usecols=header.index("base_offline"))
    table = cfg.read_text().replace('attacks = ["base", "base_offline"]\n', "").replace(
        "[metrics]", '[attacks]\nnames = ["base_offline"]\n[attacks.params.base_offline]\nscale = 1.0\n'
        "temperature = 1.0\n[metrics]")
    cfg.write_text(table)
    proc = run_cli("audit", str(cfg), "--jobs", "1", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads((out / "results.json").read_text())["attacks"]) == {"base_offline"}
    header = (out / "scores.csv").read_text().splitlines()[0].split(",")
    second = np.loadtxt(out / "scores.csv", delimiter=",", skiprows=1, usecols=header.index("base_offline"))
    assert first.shape == second.shape and not np.allclose(first, second)  # the parameters reached the attack
    cfg.write_text(table.replace("scale = 1.0", "scale = 0.0"))
    bad = run_cli("audit", str(cfg), "--jobs", "1", "--overwrite")
    assert bad.returncode == 2 and "scale must be a finite number > 0" in one_error_line(bad, progress=True)


def test_levers_fail_above(tmp_path):
    cfg = write_audit_config(tmp_path, levers=True)
    leaky = run_cli("levers", str(cfg), "--jobs", "1", "--fail-above", "auc=0.0")
    assert leaky.returncode == 1, (leaky.stdout, leaky.stderr)
    assert "every one of the 2 points" in " ".join(leaky.stderr.split())
    met = run_cli("levers", str(cfg), "--jobs", "1", "--fail-above", "auc=1.0", "--overwrite")
    assert met.returncode == 0, met.stderr
    assert "privacy budget met" in met.stdout and "2 of 2 points" in met.stdout
    helptext = " ".join(run_cli("levers", "--help").stdout.split())
    assert "--fail-above" in helptext and "every point" in helptext


# ------------------------------------------------------------------------------------------ inputs explained


@pytest.mark.parametrize("name", ["outputs.npz", "outputs.csv", "outputs.parquet"])
def test_audit_of_a_bundle_points_to_score(tmp_path, bundle_path, name):
    path = tmp_path / name
    path.write_bytes(bundle_path.read_bytes())
    for command in ("audit", "levers"):
        proc = run_cli(command, str(path))
        assert proc.returncode == 2
        line = one_error_line(proc)
        assert "signal bundle" in line and "miaudit score" in line, line


def _table_without_membership(tmp_path: Path) -> Path:
    import pandas as pd

    world = leaky_world(n=200)
    df = pd.DataFrame({f"logit_{c}": world["target_logits"][:, c] for c in range(3)})
    df["label"] = world["labels"]
    df["member"] = world["is_member"]
    path = tmp_path / "outputs.csv"
    df.to_csv(path, index=False)
    return path


def test_table_without_membership_column_says_why(tmp_path):
    path = _table_without_membership(tmp_path)
    proc = run_cli("score", str(path), "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    err = " ".join(proc.stderr.split())
    assert "no membership column" in err and "'member'" in err and "'logit_0'" in err
    assert "ground truth" in err and "--member-column" in err
    assert "AUC [95% CI]" not in proc.stdout  # no empty table
    named = run_cli("score", str(path), "--out", str(tmp_path / "o2"), "--member-column", "is_in")
    assert named.returncode == 2
    line = one_error_line(named)
    assert "'is_in'" in line and "'member'" in line
    assert not (tmp_path / "o2").exists()
    found = run_cli("score", str(path), "--out", str(tmp_path / "o3"), "--member-column", "member")
    assert found.returncode == 0 and "no membership column" not in found.stderr
    gate = run_cli("score", str(path), "--out", str(tmp_path / "o4"), "--fail-above", "auc=0.6")
    assert gate.returncode == 2 and "ground truth" in one_error_line(gate)


# ------------------------------------------------------------------------------------------- help, reference


def test_levers_help_reads_plainly():
    text = run_cli("levers", "--help").stdout
    flat = " ".join(text.split())
    assert "[levers] section" in flat
    assert "<list[str]>" not in text and "{config}" not in text
    assert "config-help" in flat and "docs/config.md" not in flat
    assert "config-help" in " ".join(run_cli("audit", "--help").stdout.split())


@pytest.mark.parametrize("command", ["demo", "score", "audit", "levers", "dp-audit", "attacks", "config-help"])
def test_help_names_values_by_their_metavars_only(command: str):
    """No type column of typer's own (<bool> beside --help, <path> beside CONFIG), no {CONFIG} in the usage."""
    text = run_cli(command, "--help").stdout
    assert text.strip(), f"{command} --help printed nothing"
    assert re.search(r"<[a-z]", text) is None, text
    assert re.search(r"\{[A-Za-z]", text) is None, text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    if command in ("audit", "levers", "dp-audit"):
        assert usage.rstrip().endswith("CONFIG"), usage
    if command == "score":
        assert "BUNDLE" in usage


def test_config_help_prints_the_reference():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text(encoding="utf-8")
    proc = run_cli("config-help")
    assert proc.returncode == 0
    assert proc.stdout == docs


def test_packaged_config_reference_matches_docs():
    from importlib import resources

    root = Path(__file__).resolve().parents[1]
    packaged = resources.files("miaudit").joinpath("_config_reference.md").read_text(encoding="utf-8")
    assert packaged == (root / "docs" / "config.md").read_text(encoding="utf-8"), (
        "src/miaudit/_config_reference.md is out of date: cp docs/config.md src/miaudit/_config_reference.md"
    )
    assert "_config_reference.md" in (root / "pyproject.toml").read_text(encoding="utf-8")  # shipped


# ------------------------------------------------------------------------------ an estimator next to the config


OWN_MODULE = '''\
import os

from sklearn.linear_model import LogisticRegression


class MyEstimator(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        with open(os.path.join(os.path.dirname(__file__), "fitted_by.txt"), "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        return super().fit(X, y, sample_weight=sample_weight)
'''


def test_estimator_module_next_to_the_config_imports_without_pythonpath(tmp_path):
    name = f"mymodule_{uuid.uuid4().hex[:8]}"
    project = tmp_path / "project"
    project.mkdir()
    (project / f"{name}.py").write_text(OWN_MODULE)
    cfg = write_audit_config(project, estimator=f"{name}.MyEstimator")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env_path = os.environ.get("PYTHONPATH", "")
    assert str(project) not in env_path
    proc = run_cli_subprocess("audit", str(cfg), "--jobs", "2", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (project / "out" / "results.json").exists()
    assert len((project / "fitted_by.txt").read_text().split()) == 4  # 2 references + 2 models


def test_worker_processes_import_the_config_folder_too(tmp_path):
    from miaudit._imports import config_folder_on_path
    from miaudit.audit import balanced_membership
    from miaudit.training import SklearnRecipe, model_seeds, train_models

    name = f"mymodule_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(OWN_MODULE)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 4)), rng.integers(0, 2, size=80)
    with config_folder_on_path(tmp_path):
        recipe = SklearnRecipe(f"{name}.MyEstimator", {"max_iter": 50}, n_classes=2)
        trained = train_models(recipe, X, y, balanced_membership(80, 2, seed=1), seeds=model_seeds(0, 2),
                               run_dir=tmp_path / "run", jobs=2, local_worker=False)
    assert str(tmp_path) not in sys.path  # removed again
    pids = {int(p) for p in (tmp_path / "fitted_by.txt").read_text().split()}
    assert trained.logits.shape[0] == 2 and os.getpid() not in pids  # trained in worker processes


def test_npz_without_membership_and_a_budget_exit_2_before_scoring(tmp_path):
    world = leaky_world(n=200)
    world.pop("is_member")
    path = tmp_path / "no_truth.npz"
    np.savez(path, **world)
    proc = run_cli("score", str(path), "--out", str(tmp_path / "o"), "--fail-above", "auc=0.6")
    assert proc.returncode == 2 and "ground truth" in one_error_line(proc)
    assert not (tmp_path / "o").exists()
    plain = run_cli("score", str(path), "--out", str(tmp_path / "o"))
    assert plain.returncode == 0 and "AUC [95% CI]" not in plain.stdout
    assert "no attack was evaluated" in plain.stdout


def test_demo_options_checked_before_any_work(tmp_path):
    out = tmp_path / "demo"
    proc = run_cli("demo", "--model", "nope", "--out", str(out))
    assert proc.returncode == 2 and "--model" in one_error_line(proc)
    odd = run_cli("demo", "--model", "logreg", "--references", "3", "--out", str(out))
    assert odd.returncode == 2 and "--references" in one_error_line(odd)
    assert not out.exists()


def test_bad_estimator_param_value_exit_2_before_any_training(tmp_path):
    cfg = tmp_path / "audit.toml"
    cfg.write_text(AUDIT_CONFIG.format(estimator="sklearn.neural_network.MLPClassifier").replace(
        "params = { max_iter = 100 }", 'params = { activation = "sigmoid", max_iter = 5 }'))
    started = time.monotonic()
    proc = run_cli("audit", str(cfg), "--jobs", "1")
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    line = one_error_line(proc)  # one line: no progress bar, so nothing was trained
    assert "[model] params" in line and "'activation'" in line and "'sigmoid'" in line, line
    assert "MLPClassifier" in line and "relu" in line, line
    assert not (tmp_path / "out").exists()
    assert time.monotonic() - started < 30


CSV_AUDIT_CONFIG = """\
attacks = ["loss"]
[data]
kind = "csv"
path = "no/such/folder/table.csv"
label = "y"
[model]
estimator = "sklearn.linear_model.LogisticRegression"
[game]
n_references = 2
n_targets = 1
[output]
dir = "out"
"""


def test_audit_data_overrides_the_config_path_relative_to_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    cfg = tmp_path / "cfg" / "audit.toml"
    cfg.write_text(CSV_AUDIT_CONFIG)
    rng = np.random.default_rng(0)
    here = tmp_path / "here"
    here.mkdir()
    rows = ["a,b,y"] + [f"{x:.4f},{rng.normal():.4f},{int(x > 0)}" for x in rng.normal(size=120)]
    (here / "table.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(here)
    as_written = run_cli("audit", str(cfg), "--jobs", "1")
    assert as_written.returncode == 2 and "[data] path" in one_error_line(as_written)
    missing = run_cli("audit", str(cfg), "--jobs", "1", "--data", "nope.csv")
    assert missing.returncode == 2 and "--data: 'nope.csv' does not exist" in one_error_line(missing)
    assert not (tmp_path / "cfg" / "out").exists()
    proc = run_cli("audit", str(cfg), "--jobs", "1", "--data", "table.csv")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    assert (tmp_path / "cfg" / "out" / "results.json").is_file()  # the config's own path does not exist
    from miaudit.config import load_config

    assert load_config(cfg, data_path="table.csv").data.spec()["path"] == str(here / "table.csv")
    assert "--data" in " ".join(run_cli("audit", "--help").stdout.split())


@pytest.mark.parametrize("name", ["adult.yaml", "mnist.toml"])
def test_examples_say_where_the_data_comes_from_and_how_to_pass_it(name):
    head = (Path(__file__).parents[1] / "examples" / name).read_text().split("\n[", 1)[0].split("\ndata:", 1)[0]
    assert f"miaudit audit examples/{name} --data " in head
    assert ("Salary" in head and "archive.ics.uci.edu" in head) if name == "adult.yaml" else \
        ("t10k-images-idx3-ubyte" in head and "t10k-labels-idx1-ubyte" in head)


def test_levers_table_headers_whole_at_80_columns_and_small_numbers_readable(tmp_path):
    import pandas as pd
    from rich.console import Console
    from typer.testing import CliRunner

    from miaudit.cli import app, fmt_number, fmt_percent, levers_table

    cfg = write_audit_config(tmp_path, levers=True)  # tests/test_levers.py's tiny sweep, C down to 1e-4
    cfg.write_text(cfg.read_text().replace("[0.01, 100.0]", "[0.0001, 100.0]")
                   .replace("max_examples = 160", "max_examples = 400").replace("n_targets = 1", "n_targets = 2"))
    res = CliRunner().invoke(app, ["levers", str(cfg), "--jobs", "1"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    table = res.stdout.split("miaudit levers:", 1)[1].split("report:", 1)[0]
    assert "…" not in table and "..." not in table, table
    for header in ("model.params.C", "test acc", "gap", "AUC", "TPR@1%", "eps LB", "pareto"):
        assert header in table, (header, table)
    assert "tpr@" not in table and max(len(line) for line in table.splitlines()) <= 80, table
    assert " 0.0001 " in " ".join(table.split()), table  # the lever value, not 0.000
    assert "%" in table.split("TPR@1%", 1)[1]  # TPRs as percents

    every = pd.DataFrame({"lever:model.params.C": [1e-4, 100.0], "test_accuracy": [0.09, 0.9],
                          "generalisation_gap": [1e-4, 0.1], "auc": [0.5, 0.7], "tpr@0.001": [1e-4, 0.02],
                          "tpr@0.01": [0.0, 0.07], "epsilon_lower_bound": [0.0, 1.2],
                          "accountant_epsilon": [float("nan"), 8.0], "pareto": [True, False]})
    console = Console(width=80, record=True)
    console.print(levers_table(every, title="t"))
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80, text
    for header in ("model.params.C", "test acc", "gap", "AUC", "TPR@0.1%", "TPR@1%", "eps LB", "acct eps", "pareto"):
        assert header in text, (header, text)
    first = " ".join(text.splitlines()[3].split())
    assert first == "0.0001 0.090 0.0001 0.500 0.01% 0.0% 0.000 n/a yes", text
    assert fmt_number(1e-4) == "0.0001" and fmt_number(0.1234) == "0.123" and fmt_number(0.0) == "0.000"
    assert fmt_percent(1e-4) == "0.01%" and fmt_percent(0.0234) == "2.3%" and fmt_percent(float("nan")) == "n/a"
