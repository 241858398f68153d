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


# ------------------------------------------------------------------------- the examples from a fresh copy

ROOT = Path(__file__).resolve().parents[1]
ADULT_HEADER = ("age, workclass, fnlwgt, education, education-num, marital-status, occupation, relationship, race, "
                "sex, capital-gain, capital-loss, hours-per-week, native-country, Salary")


def tiny_adult(path: Path, n: int = 300, seed: int = 0) -> Path:
    """A CSV in the UCI Adult layout (header, ', '-separated, label Salary) with made-up rows."""
    rng = np.random.default_rng(seed)
    pick = lambda *xs: xs[rng.integers(len(xs))]  # noqa: E731
    rows = [ADULT_HEADER]
    for _ in range(n):
        age = int(rng.integers(17, 90))
        rows.append(", ".join(map(str, [
            age, pick("Private", "State-gov", "?"), int(rng.integers(10_000, 500_000)), pick("Bachelors", "HS-grad"),
            int(rng.integers(1, 17)), pick("Never-married", "Divorced"), pick("Sales", "Exec-managerial"),
            pick("Husband", "Not-in-family"), pick("White", "Black"), pick("Male", "Female"),
            int(rng.integers(0, 5000)), 0, int(rng.integers(10, 60)), pick("United-States", "India"),
            pick("<=50K", ">50K", ">50K."),
        ])))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


def tiny_mnist(folder: Path, n: int = 200, seed: int = 0) -> Path:
    """The two t10k IDX files (gzipped) with ``n`` random 28x28 images."""
    import gzip
    import struct

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    with gzip.open(folder / "t10k-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">IIII", 0x803, n, 28, 28) + images.tobytes())
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(struct.pack(">II", 0x801, n) + labels.tobytes())
    return folder


def fresh_copy(tmp: Path) -> Path:
    """The repository's examples/ in a folder of its own, with no shared data folder anywhere above it."""
    import shutil

    repo = tmp / "clone"
    shutil.copytree(ROOT / "examples", repo / "examples", ignore=shutil.ignore_patterns("data"))
    return repo


def _shrunk(text: str, edits: dict[str, str]) -> str:
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


SHRINK = {  # the same example with a smaller game, so it runs in seconds on made-up data
    "adult.yaml": {"  pool_size: 10000": "  # pool_size", "n_references: 16": "n_references: 2",
                   "n_targets: 4": "n_targets: 1", "max_iter: 100": "max_iter: 5"},
    "mnist.toml": {"pool_size = 5000": "# pool_size", "n_references = 16": "n_references = 2",
                   "n_targets = 4": "n_targets = 1", "max_iter = 30": "max_iter = 3"},
}


def test_every_example_runs_from_a_fresh_copy_without_the_shared_data(tmp_path: Path, monkeypatch) -> None:
    from miaudit.config import load_config

    examples = sorted(p.name for p in (ROOT / "examples").iterdir() if p.suffix in (".toml", ".yaml", ".yml"))
    assert examples == ["adult.yaml", "digits_mlp.toml", "mnist.toml"]  # a new example needs a line below
    repo = fresh_copy(tmp_path)
    data = {"adult.yaml": tiny_adult(tmp_path / "dl" / "adult.csv"), "mnist.toml": tiny_mnist(tmp_path / "dl" / "mnist")}
    monkeypatch.chdir(repo)
    for name in examples:  # no path of an example points outside the repository
        text = (repo / "examples" / name).read_text()
        assert "shared/data" not in text and "/work" not in text, name
        cfg = load_config(repo / "examples" / name, data_path=data.get(name))
        for out in (cfg.output.dir, cfg.output.run_dir):
            assert out is None or Path(out).resolve().is_relative_to(repo), (name, out)
    for name, path in data.items():
        missing = run_cli("audit", f"examples/{name}")  # as a new user first runs it: says how to pass the data
        line = one_error_line(missing)
        assert missing.returncode == 2 and "[data] path" in line and "--data PATH" in line, line
        (repo / "examples" / f"small_{name}").write_text(_shrunk((repo / "examples" / name).read_text(), SHRINK[name]))
        proc = run_cli("audit", f"examples/small_{name}", "--data", str(path), "--jobs", "1", "--attack", "loss")
        assert proc.returncode == 0, proc.stderr[-2000:]
    proc = run_cli("audit", "examples/digits_mlp.toml", "--jobs", "2", "--attack", "loss")
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = sorted(str(p.relative_to(repo)) for p in (repo / "miaudit-runs").glob("*/results.json"))
    assert written == ["miaudit-runs/adult/results.json", "miaudit-runs/digits/results.json",
                       "miaudit-runs/mnist/results.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clone", "dl"]  # nothing written beside the copy


# ------------------------------------------------------------------------------------------------ scores.csv


def test_scores_csv_columns_say_what_they_hold(tmp_path: Path) -> None:
    import json

    import pandas as pd

    from miaudit import signals

    world = leaky_world(n=300, k=4, shift=2.0)
    path = tmp_path / "b.npz"
    np.savez(path, **world)
    names = ["loss", "entropy", "modified_entropy", "calibrated_loss", "confidence", "lira_online"]
    proc = run_cli("score", str(path), "--out", str(tmp_path / "o"), *[a for n in names for a in ("-a", n)])
    assert proc.returncode == 0, proc.stderr
    csv = pd.read_csv(tmp_path / "o" / "scores.csv")
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    columns = {n: res["attacks"][n]["scores_column"] for n in names}
    assert columns == {"loss": "neg_loss", "entropy": "neg_entropy", "modified_entropy": "neg_modified_entropy",
                       "calibrated_loss": "neg_calibrated_loss", "confidence": "confidence",
                       "lira_online": "lira_online"}
    assert "loss" not in csv.columns and set(columns.values()) <= set(csv.columns)
    loss = signals.loss(world["target_logits"][:, None, :], world["labels"][:, None]).mean(axis=1)
    np.testing.assert_allclose(csv["neg_loss"], -loss, rtol=1e-12)  # it holds minus the loss, as it says
    assert (csv["neg_loss"] <= 0).all()
    schema = (ROOT / "docs" / "results-schema.md").read_text()
    assert "`neg_loss`" in schema and "`scores_column`" in schema


# ------------------------------------------------------------------------- first run: matplotlib's font cache

FONT_CHILD = """
import sys
from miaudit.report._fonts import font_cache_exists, wait_font_cache, warm_font_cache
assert not font_cache_exists()
assert warm_font_cache() and not warm_font_cache()  # started once, in another process
assert "matplotlib.font_manager" not in sys.modules  # this process scanned nothing
wait_font_cache()
assert font_cache_exists()
import time
t = time.perf_counter()
import matplotlib.font_manager  # reads the cache the background process wrote
print(time.perf_counter() - t)
"""


def test_font_cache_is_built_in_the_background_once(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl")}
    proc = subprocess.run([sys.executable, "-c", FONT_CHILD], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "mpl").glob("fontlist-v*.json"))


def test_demo_on_a_fresh_font_cache_builds_it_and_writes_the_report(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "mpl"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "miaudit", "demo", "-k", "2", "--attack", "loss", "--jobs", "1",
                           "--out", str(tmp_path / "o")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "mpl").glob("fontlist-v*.json")) and (tmp_path / "o" / "report.html").is_file()


# ------------------------------------------------------------------------------- README's metrics_table()


def test_readme_metrics_table_line_prints_every_column_it_selects() -> None:
    """The README's print(result.metrics_table()[[...]].round(3)) at pandas' default 80-column display."""
    import re

    import pandas as pd

    from .report._builders import make_result

    readme = (ROOT / "README.md").read_text()
    line = next(ln for ln in readme.splitlines() if "metrics_table()" in ln and ln.startswith("print("))
    selected = re.search(r"metrics_table\(\)\[(\[.*?\])\]", line)
    assert selected, line
    columns = eval(selected.group(1))  # noqa: S307 - a list literal from our own README
    result = make_result(attacks=("loss", "lira_online", "rmia_offline", "calibrated_loss"),
                         strength=(0.2, 1.5, 1.0, 0.8))
    expr = line.removeprefix("print(").removesuffix(")").strip()
    with pd.option_context("display.width", 80, "display.max_columns", 20):
        text = str(eval(expr, {"result": result}))  # noqa: S307 - the README's own line
    assert "..." not in text, text
    for c in columns:
        assert c in text, (c, text)
    assert max(len(ln) for ln in text.splitlines()) <= 80, text
