"""``miaudit dp-audit`` end to end on tiny settings, and every config error before any training (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("opacus")

from miaudit._errors import ConfigError  # noqa: E402
from miaudit.audit.dp_audit import parse_dp_audit  # noqa: E402
from miaudit.cli import app  # noqa: E402

BASE = """
[data]
kind = "digits"
max_examples = 120
[model]
kind = "torch"
model = "mlp"
model_kwargs = { hidden = [8] }
epochs = 2
batch_size = 120
lr = 0.5
momentum = 0.0
"""


def _write(tmp_path: Path, dp: str, base: str = BASE) -> Path:
    p = tmp_path / "dp.toml"
    p.write_text(base + "[dp_audit]\n" + dp)
    return p


def _run(args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("dp,expect_exit", [
    ('claimed_epsilon = 8.0\nthreat = "gradient_canary"\nruns = 40\n', 0),
    ('claimed_epsilon = 1.0\nnoise_multiplier = 0.05\nthreat = "gradient_canary"\nruns = 60\n', 1),
    ('claimed_epsilon = 4.0\nthreat = "input_canary"\nruns = 12\ncanary = "ood"\n', 0),
    ('claimed_epsilon = 4.0\nthreat = "whitebox"\nruns = 12\n', 0),
    ('claimed_epsilon = 4.0\ndesign = "one_run"\ncanaries = 40\nguesses = 10\n', 0),
    ('claimed_epsilon = 4.0\ndesign = "one_run"\nthreat = "input_canary"\ncanaries = 10\nguesses = 4\n', 0),
])
def test_dp_audit_end_to_end(tmp_path, dp, expect_exit):
    cfg = _write(tmp_path, dp)
    out = tmp_path / "out"
    res = _run(["dp-audit", cfg, "--out", out])
    assert res.exit_code == expect_exit, res.output
    doc = json.loads((out / "results.json").read_text())["dp_audit"]
    for key in ("claimed_epsilon", "accountant_epsilon", "delta", "noise_multiplier", "threat", "runs", "canaries",
                "bounds", "claim_contradicted", "neighbouring"):
        assert key in doc
    assert doc["neighbouring"] == "add_remove"
    for b in doc["bounds"].values():
        assert {"epsilon_lower", "confidence", "ceiling"} <= set(b)
        assert b["epsilon_lower"] <= b["ceiling"] + 1e-9
    assert doc["claim_contradicted"] == (expect_exit == 1)
    assert "<html" in (out / "report.html").read_text()
    # an earlier run is kept unless --overwrite
    again = _run(["dp-audit", cfg, "--out", out])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_too_little_noise_is_caught_and_honest_claim_is_not(tmp_path):
    """Full batch, 200 runs: a tenth of the noise epsilon 1 needs is contradicted; the honest claim is not.
    (A quarter needs about 1,000 runs: benchmarks/results/dp_audit.md.)"""
    out = tmp_path / "o"
    cfg = _write(tmp_path, 'claimed_epsilon = 1.0\nruns = 200\n')
    res = _run(["dp-audit", cfg, "--out", out])
    doc = json.loads((out / "results.json").read_text())["dp_audit"]
    assert res.exit_code == 0 and doc["bounds"]["clopper_pearson"]["epsilon_lower"] <= 1.0
    sigma = doc["noise_multiplier"]
    cfg = _write(tmp_path, f'claimed_epsilon = 1.0\nruns = 200\nnoise_multiplier = {sigma / 10}\n')
    res = _run(["dp-audit", cfg, "--out", out, "--overwrite"])
    doc = json.loads((out / "results.json").read_text())["dp_audit"]
    assert res.exit_code == 1, res.output
    assert doc["claim_contradicted"] and doc["claim_noise_multiplier"] == pytest.approx(sigma)


def test_isolated_canaries_end_to_end(tmp_path):
    """canaries_per_run auto on digits: several isolated canaries per run, pooled; the ceiling is the pooled one."""
    out = tmp_path / "o"
    res = _run(["dp-audit", _write(tmp_path, 'claimed_epsilon = 8.0\nruns = 40\n'), "--out", out])
    assert res.exit_code == 0, res.output
    assert "isolated coordinates" in res.output
    doc = json.loads((out / "results.json").read_text())["dp_audit"]
    m = doc["canaries_per_run"]
    assert doc["isolated"] is True and 8 * 3 <= m <= 64 and doc["canaries"] == m
    t = doc["trials_per_side"]
    cp = doc["bounds"]["clopper_pearson"]
    assert t["in"] + t["out"] == 40 * m == cp["details"]["n_in"] + cp["details"]["n_out"]
    assert cp["ceiling"] > 5.0  # one canary per run (20 per side) could not certify more than about 2.5
    assert "exactly independent, pooled" in (out / "report.html").read_text()
    assert len((out / "scores.csv").read_text().splitlines()) == 1 + 40 * m
    # one canary per run: the old design
    res = _run(["dp-audit", _write(tmp_path, 'claimed_epsilon = 8.0\nruns = 40\ncanaries_per_run = 1\n'), "--out",
                out, "--overwrite"])
    doc = json.loads((out / "results.json").read_text())["dp_audit"]
    assert res.exit_code == 0 and doc["canaries_per_run"] == 1 and doc["isolated"] is False
    assert doc["trials_per_side"]["in"] + doc["trials_per_side"]["out"] == 40
    # an explicit count
    res = _run(["dp-audit", _write(tmp_path, 'claimed_epsilon = 8.0\nruns = 40\ncanaries_per_run = 5\n'), "--out",
                out, "--overwrite"])
    doc = json.loads((out / "results.json").read_text())["dp_audit"]
    assert res.exit_code == 0 and doc["canaries_per_run"] == 5 and doc["isolated"] is True


def test_too_many_isolated_canaries_is_an_input_error(tmp_path):
    res = _run(["dp-audit", _write(tmp_path, 'claimed_epsilon = 8.0\nruns = 40\ncanaries_per_run = 5000\n'),
                "--out", tmp_path / "o"])
    assert res.exit_code == 2
    assert "canaries_per_run: 5000 requested" in " ".join(res.output.split())
    assert not (tmp_path / "o" / "results.json").exists()


def test_no_zero_feature_falls_back_to_one_canary(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["a,b,c,label"] + [f"{rng.normal():.4f},{rng.normal():.4f},{rng.normal():.4f},{i % 2}" for i in range(60)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    base = BASE.replace('kind = "digits"\nmax_examples = 120', 'kind = "csv"\npath = "d.csv"\nlabel = "label"'
                        ).replace("batch_size = 120", "batch_size = 60")
    out = tmp_path / "o"
    res = _run(["dp-audit", _write(tmp_path, 'claimed_epsilon = 8.0\nruns = 20\n', base=base), "--out", out])
    assert res.exit_code == 0, res.output
    assert "1 per run (fallback: no isolated coordinate" in " ".join(res.output.split())
    doc = json.loads((out / "results.json").read_text())["dp_audit"]
    assert doc["isolated"] is False and doc["canaries_per_run"] == 1
    assert "no input feature is exactly zero" in doc["isolation_note"]
    assert "not isolated" in (out / "report.html").read_text()


@pytest.mark.parametrize("dp,match", [
    ("claimed_epsilon = 2.0\ncanaries_per_run = 0\n", "canaries_per_run: expected \"auto\" or an integer >= 1"),
    ('claimed_epsilon = 2.0\ncanaries_per_run = "all"\n', "canaries_per_run: expected"),
    ('claimed_epsilon = 2.0\nthreat = "input_canary"\ncanaries_per_run = 4\n', "canaries_per_run: only for"),
    ('claimed_epsilon = 2.0\ndesign = "one_run"\ncanaries_per_run = 4\n', "canaries_per_run: only for"),
    ("delta = 1e-5\n", "claimed_epsilon: required"),
    ("claimed_epsilon = 2.0\nrnus = 10\n", "unknown key 'rnus'"),
    ('claimed_epsilon = 2.0\nthreat = "blackbox"\n', "threat: expected one of"),
    ('claimed_epsilon = 2.0\ndesign = "many"\n', "design: expected one of"),
    ("claimed_epsilon = -1.0\n", "claimed_epsilon: expected a number > 0"),
    ("claimed_epsilon = 2.0\ncanaries = 10\n", "canaries: only for design = 'one_run'"),
    ('claimed_epsilon = 2.0\ndesign = "one_run"\nruns = 10\n', "runs: only for design = 'runs'"),
    ('claimed_epsilon = 2.0\ndesign = "one_run"\ncanaries = 10\nguesses = 20\n', "guesses: expected at most"),
    ("claimed_epsilon = 2.0\ndelta = 2\n", "delta: expected"),
    ("claimed_epsilon = 2.0\nnoise_multiplier = 0\n", "noise_multiplier: expected"),
])
def test_config_errors_exit_2_before_training(tmp_path, dp, match):
    res = _run(["dp-audit", _write(tmp_path, dp), "--out", tmp_path / "o"])
    assert res.exit_code == 2
    assert match in " ".join(res.output.split())
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("base,match", [
    (BASE.replace('kind = "torch"', 'kind = "sklearn"').replace('model = "mlp"\n', "").replace(
        "model_kwargs = { hidden = [8] }\n", "").split("epochs")[0], "dp-audit trains DP-SGD with torch"),
    (BASE + "dp = { epsilon = 1.0 }\n", "[model] dp: not used by dp-audit"),
    (BASE + "[game]\nseed = 1\n", "section [game] is not used"),
    (BASE.replace("momentum = 0.0", "momentum = 0.0\nweight_decay = 0.1"), "weight_decay = 0"),
    (BASE.replace("epochs = 2", "epochs = 0"), "epochs"),
])
def test_section_errors(tmp_path, base, match):
    res = _run(["dp-audit", _write(tmp_path, "claimed_epsilon = 2.0\n", base=base), "--out", tmp_path / "o"])
    assert res.exit_code == 2
    assert match in " ".join(res.output.split())


def test_missing_table_and_config_file(tmp_path):
    with pytest.raises(ConfigError, match="missing or not a table"):
        parse_dp_audit(None)
    res = _run(["dp-audit", tmp_path / "nope.toml"])
    assert res.exit_code == 2


def test_report_escapes_user_strings():
    from miaudit.report._dp_audit import render_dp_audit

    rec = {"claimed_epsilon": 2.0, "delta": 1e-5, "neighbouring_text": "add/remove", "noise_multiplier": 1.0,
           "noise_source": "config", "claim_noise_multiplier": 1.0, "sample_rate": 1.0, "steps": 2,
           "max_grad_norm": 1.0, "accountant": "rdp", "accountant_epsilon": 2.0, "threat": "<b>x</b>",
           "threat_text": "t", "design": "runs", "runs": 10, "canaries": 1, "guesses": None, "confidence": 0.95,
           "claim_contradicted": False, "decided_by": ["clopper_pearson"], "claim_gdp_mu": 0.5,
           "bounds": {"clopper_pearson": {"epsilon_lower": 0.5, "ceiling": 2.0, "assumption": None,
                                          "details": {"fpr_upper": 0.1, "fnr_upper": 0.5}}}}
    page = render_dp_audit(rec, title="<script>alert(1)</script>")
    assert "<script>" not in page and "&lt;script&gt;" in page and "<b>x</b>" not in page
