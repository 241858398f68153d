"""The report's visuals read as intended (issue 11): ROC grouped by family with identical curves merged and
the strongest marked, a histogram whose bins all hold data, a per-class table with one note naming its
attack, readable labels in the game table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from miaudit.report._plots import attack_family, merge_identical, roc_legend, score_densities, score_percentiles

from .._worlds import leaky_world


def _curves() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from miaudit.metrics import roc_curve

    rng = np.random.default_rng(0)
    m = np.repeat([True, False], 500)
    base = rng.normal(size=1000) + 0.8 * m
    out = {}
    for name, s in [("lira_online", base + rng.normal(size=1000)), ("lira_offline", base),
                    ("rmia", base + 0.3 * rng.normal(size=1000)), ("loss", -np.exp(-base)),
                    ("confidence", base), ("scaled_logit", 3 * base + 1), ("trained_lr", rng.normal(size=1000))]:
        c = roc_curve(m, s)
        out[name] = (np.asarray(c.fpr), np.asarray(c.tpr))
    return out


def test_identical_roc_curves_are_drawn_once_under_all_their_names() -> None:
    groups = merge_identical(_curves())
    names = [g[0] for g in groups]
    # loss is monotone in the base score, so are confidence and scaled_logit: one curve; lira_offline too
    assert ["lira_offline", "loss", "confidence", "scaled_logit"] in names
    assert sum(len(n) for n in names) == 7 and len(groups) == 4


def test_roc_legend_grouped_by_family_with_the_strongest_marked() -> None:
    legend = roc_legend(_curves(), highlight="rmia")
    assert legend == ["LiRA", "lira_online", "lira_offline = loss = confidence = scaled_logit",
                      "RMIA", "\u2605 rmia (strongest)", "trained attack model", "trained_lr"]
    assert [attack_family(n) for n in ("lira_online", "rmia_offline", "attack_r", "calibrated_loss", "shokri",
                                       "trained_gb", "entropy", "label_only_x")] == [
        "LiRA", "RMIA", "calibrated by references", "calibrated by references", "trained attack model",
        "trained attack model", "threshold on the output", "other attacks"]


def test_score_histogram_bins_all_hold_data_despite_heavy_tails() -> None:
    rng = np.random.default_rng(1)
    m = np.repeat([True, False], 1000)
    scores = np.where(rng.random(2000) < 0.02, -300.0, 1.0) * np.abs(rng.normal(size=2000)) + 0.3 * m
    edges, dens = score_densities(scores, m, bins=20)
    pooled = (dens[0] * (~m).sum() + dens[1] * m.sum()) / 20  # examples per bin
    assert np.all(pooled > 0.8 * len(scores) / 20) and np.all(pooled < 1.2 * len(scores) / 20)
    # the old linear bins on [q0.5%, q99.5%]: almost everything in two bins
    lo, hi = np.quantile(scores, [0.005, 0.995])
    old, _ = np.histogram(np.clip(scores, lo, hi), bins=np.linspace(lo, hi, 51))
    assert np.sort(old)[-2:].sum() > 0.5 * len(scores)
    null = score_densities(rng.normal(size=4000), np.repeat([True, False], 2000), bins=10)[1]
    assert np.allclose(null, 1.0, atol=0.25)  # no leakage: flat at 1
    assert score_percentiles(np.array([3.0, 1.0, 2.0, 2.0])).tolist() == [100.0, 25.0, 62.5, 62.5]
    assert edges[0] == 0 and edges[-1] == 100


@pytest.fixture(scope="module")
def real_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    from miaudit.audit import evaluate_bundle
    from miaudit.data import load_bundle

    path = tmp_path_factory.mktemp("b") / "b.npz"
    np.savez(path, **leaky_world(n=600, k=8, shift=2.0))
    result = evaluate_bundle(load_bundle(str(path)), attacks=["loss", "confidence", "lira_online"],
                             game={"pool_size": 600, "strongest_attack": "x", "bundle_path": "b.npz"})
    return result.to_html()


def test_per_class_table_names_its_attack_and_says_the_note_once(real_html: str) -> None:
    section = real_html.split('id="slices"', 1)[1].split("</section>", 1)[0]
    assert "By class: scores of lira_online (the strongest attack)" in section
    assert "<th>attack</th>" not in section and "<th>note</th>" not in section
    assert section.count("needs at least") == 0 and section.count("too few non-members in the slice") == 1
    assert "at 0.1% FPR at least 1,000 non-members" in section
    assert "<th>class</th>" in section  # the slice column named after the slice, not 'group'


def test_game_table_labels_are_readable(real_html: str) -> None:
    game = real_html.split('id="game"', 1)[1].split("</section>", 1)[0]
    for raw in ("setting:", "strongest_attack", "pool_size", "member_prior", "fprs", "bundle_path"):
        assert raw not in game, raw
    for label in ("Pool size", "Strongest attack", "Signal bundle", "δ of the ε lower bound",
                  "False-positive rates reported", "0.1%, 1%, 10%"):
        assert label in game, label


def test_report_roc_and_histogram_render(real_html: str, tmp_path: Path) -> None:
    assert real_html.count("data:image/png;base64,") >= 3
