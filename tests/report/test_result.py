"""AuditResult: metrics_table, to_json (strict, deterministic), atomic save, input errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miaudit import InputError
from miaudit.report import SCHEMA_VERSION, AuditResult, atomic_write, json_safe

from ._builders import FPRS, make_result


def test_metrics_table_columns_and_values(result: AuditResult) -> None:
    table = result.metrics_table()
    assert list(table.index) == ["lira_online", "loss"]  # strongest first (rank_attacks)
    assert table.index.name == "attack"
    expected = ["auc", "auc_low", "auc_high"]
    for f in ("0.1%", "1%", "10%"):
        expected += [f"tpr@{f}", f"tpr@{f}_low", f"tpr@{f}_high"]
    expected += ["epsilon_lower_bound", "n_members", "n_nonmembers", "n_strata"]
    assert list(table.columns) == expected
    assert (table.dtypes == "float64").all()
    m = result.metrics["lira_online"]
    assert table.loc["lira_online", "auc"] == m.auc
    assert table.loc["lira_online", "auc_high"] == m.auc_ci[1]
    assert table.loc["lira_online", "tpr@1%"] == m.at(0.01).tpr
    assert table.loc["lira_online", "tpr@0.1%_low"] == m.at(0.001).target_ci_low
    assert table.loc["lira_online", "n_nonmembers"] == 1500
    assert table.loc["lira_online", "epsilon_lower_bound"] == m.epsilon.value
    # the strong attack really is stronger than the weak one at every level
    cols = ["tpr@0.1%", "tpr@1%", "tpr@10%"]
    assert (table.loc["lira_online", cols].to_numpy() > table.loc["loss", cols].to_numpy()).all()


def test_metrics_table_null_figures_are_nan_not_zero() -> None:
    table = make_result(n=800).metrics_table()  # 400 non-members: 0.1% FPR cannot be measured
    assert table["tpr@0.1%"].isna().all()
    assert table["tpr@0.1%_low"].isna().all()
    assert table["tpr@1%"].notna().all()


def test_metrics_table_readable_as_printed() -> None:
    """What the README prints: every column fits in pandas' default 80-column display without '...'."""
    import pandas as pd

    table = make_result().metrics_table()
    with pd.option_context("display.width", 200):
        text = table[["auc", "tpr@0.1%", "tpr@1%", "epsilon_lower_bound"]].round(3).to_string()
    assert "..." not in text and "tpr@0.1%" in text


def test_metrics_table_empty_without_ground_truth() -> None:
    r = make_result()
    r2 = AuditResult(game=r.game, settings=r.settings, metrics={}, scores=r.scores.drop(columns="is_member"))
    table = r2.metrics_table()
    assert len(table) == 0 and "auc" in table.columns and "tpr@0.1%" in table.columns


def test_to_json_schema_and_strictness(result: AuditResult) -> None:
    result.game["odd"] = {"nan": float("nan"), "inf": np.inf, "np": np.float32(0.5), "i": np.int64(3),
                          "b": np.bool_(True), "arr": np.arange(3), "tuple": (1, 2), "path": Path("/x"),
                          1.5: "float key"}
    d = result.to_json()
    assert list(d) == ["schema_version", "miaudit_version", "created", "verdict", "warnings", "game", "settings",
                       "attacks", "ranking", "dp_check", "skipped", "slices"]
    assert d["schema_version"] == SCHEMA_VERSION == 2
    text = json.dumps(d, allow_nan=False)  # raises on NaN/inf
    back = json.loads(text)
    assert back["game"]["odd"] == {"1.5": "float key", "arr": [0, 1, 2], "b": True, "i": 3, "inf": None,
                                   "nan": None, "np": 0.5, "path": "/x", "tuple": [1, 2]}
    att = back["attacks"]["lira_online"]
    for key in ("auc", "auc_ci", "tpr_at_fpr", "tpr_at_fpr_ci", "tpr_at_fpr_detail", "epsilon_lower_bound",
                "n_members", "n_nonmembers", "ppv_at_fpr", "ppv_lower_at_fpr", "n_strata"):
        assert key in att
    assert set(att["tpr_at_fpr"]) == {"0.001", "0.01", "0.1"}
    assert back["skipped"] == {"rmia": "needs reference models (digits)"}
    assert back["slices"]["class"][2] == {"auc": None, "class": 2, "n": 1000}  # NaN -> null
    assert back["settings"]["fprs"] == list(FPRS)
    v = back["verdict"]
    assert v["leakage_detected"] is True and v["level"] in ("high", "measurable")
    assert v["attack"] == "lira_online" and v["figure"] in ("auc", "tpr@0.001", "tpr@0.01", "tpr@0.1")
    assert v["interval"][0] > v["chance"] and v["n_nonmembers"] == 750  # the certification half
    assert v["sentence"].startswith("Leakage detected: lira_online")
    assert back["ranking"] == ["lira_online", "loss"] and back["game"]["strongest_attack"] == "lira_online"


def test_results_json_bytes_are_deterministic() -> None:
    a = make_result(seed=3)
    b = make_result(seed=3)
    # same content built in a different insertion order must give the same bytes
    b.game = dict(reversed(list(b.game.items())))
    assert a.to_json_bytes() == b.to_json_bytes()
    assert b"NaN" not in a.to_json_bytes() and b"Infinity" not in a.to_json_bytes()


def test_created_defaults_to_now_utc() -> None:
    r = make_result(created=None)
    created = r.to_json()["created"]
    assert created.endswith("+00:00") and created[:2] == "20"


def test_json_safe_nested_dataframe() -> None:
    df = pd.DataFrame({"b": [1.0, np.nan], "a": ["x", None]})
    assert json_safe({"t": df}) == {"t": [{"a": "x", "b": 1.0}, {"a": None, "b": None}]}


def test_save_writes_three_files_and_keeps_others(tmp_path: Path, result: AuditResult) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "report.html").write_text("old report")
    paths = result.save(out)
    assert set(paths) == {"results", "scores", "report"}
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "report.html", "results.json", "scores.csv"]
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert json.loads((out / "results.json").read_text())["attacks"].keys() == result.metrics.keys()
    back = pd.read_csv(out / "scores.csv")
    assert list(back.columns) == list(result.scores.columns)
    np.testing.assert_allclose(back["lira_online"], result.scores["lira_online"], rtol=0, atol=0)
    assert back["is_member"].dtype == bool


def test_save_creates_nested_folder(tmp_path: Path, fast_plots: None, result: AuditResult) -> None:
    paths = result.save(tmp_path / "a" / "b")
    assert all(p.is_file() for p in paths.values())


def test_save_is_atomic_on_failure(tmp_path: Path, fast_plots: None, result: AuditResult, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "report.html").write_text("previous")
    real_replace = os.replace

    def failing_replace(src, dst):  # the report's rename fails mid-save
        if str(dst).endswith("report.html"):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        result.save(tmp_path)
    assert (tmp_path / "report.html").read_text() == "previous"  # never half-written
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # temp file cleaned up


def test_save_renders_before_writing(tmp_path: Path, result: AuditResult, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(self):
        raise RuntimeError("render failed")

    monkeypatch.setattr(AuditResult, "to_html", boom)
    with pytest.raises(RuntimeError, match="render failed"):
        result.save(tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written when rendering fails


def test_atomic_write_roundtrip(tmp_path: Path) -> None:
    p = atomic_write(tmp_path / "x.bin", b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01" and len(list(tmp_path.iterdir())) == 1


def test_save_parquet(tmp_path: Path, fast_plots: None, result: AuditResult) -> None:
    pytest.importorskip("pyarrow")
    paths = result.save(tmp_path, scores_format="parquet")
    assert paths["scores"].name == "scores.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(paths["scores"]), result.scores)


def test_save_errors(tmp_path: Path, fast_plots: None, result: AuditResult) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(InputError, match=r"out_dir: expected a folder, got the existing file .*file"):
        result.save(f)
    with pytest.raises(InputError, match=r"scores_format: expected 'csv' or 'parquet', got 'xlsx'"):
        result.save(tmp_path, scores_format="xlsx")
    assert f.read_text() == "x"


def _kw(r: AuditResult, **over):
    kw = dict(game=r.game, settings=r.settings, metrics=r.metrics, scores=r.scores, skipped=r.skipped,
              slices=r.slices, exposures=r.exposures)
    kw.update(over)
    return kw


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"scores": [1, 2]}, r"AuditResult.scores: expected a pandas DataFrame, got list"),
        ({"metrics": {"loss": 0.5}}, r"AuditResult.metrics\['loss'\]: expected the attack's AttackMetrics .*got float"),
        ({"metrics": [1]}, r"AuditResult.metrics: expected a dict, got list"),
        ({"game": None}, r"AuditResult.game: expected a dict, got NoneType"),
        ({"slices": {"class": [1]}}, r"AuditResult.slices\['class'\]: expected a pandas DataFrame, got list"),
        ({"exposures": {"a": 1}}, r"AuditResult.exposures: expected a pandas DataFrame or None, got dict"),
        ({"scores": pd.DataFrame({"is_member": [True, None]})}, r"is_member'\]: expected True/False .*missing"),
    ],
)
def test_constructor_errors(result: AuditResult, over, match) -> None:
    with pytest.raises(InputError, match=match):
        AuditResult(**_kw(result, **over))


def test_saved_files_get_ordinary_permissions(tmp_path: Path, fast_plots: None, result: AuditResult) -> None:
    old = os.umask(0o022)
    try:
        paths = result.save(tmp_path)
    finally:
        os.umask(old)
    assert all((p.stat().st_mode & 0o777) == 0o644 for p in paths.values())
    paths["report"].chmod(0o600)  # an existing file keeps its mode
    result.save(tmp_path)
    assert paths["report"].stat().st_mode & 0o777 == 0o600
