"""report.html: self-contained, escaped, honest about null figures, verdict and sections present."""

from __future__ import annotations

import base64
import html as html_lib
import json
import re

import markupsafe
import numpy as np
import pandas as pd
import pytest

from miaudit.report import AuditResult

from ._builders import make_result

XSS = '<script>alert(1)</script>"\'&'


def _everywhere(text: str) -> AuditResult:
    """A result with ``text`` in every user-controlled string: names, paths, groups, features, reasons."""
    r = make_result(text=text, attacks=("loss", text), n=1200)
    r.slices[text] = pd.DataFrame({text: [text], "auc": [0.5]})
    r.skipped[text] = text
    r.game["dp"] = {"epsilon": 8.0, "delta": 1e-5, "accountant": text}
    r.warnings.append(text)
    return r


@pytest.fixture(scope="module")
def xss_html() -> str:
    return _everywhere(XSS).to_html()


@pytest.fixture(scope="module")
def plain_html() -> str:
    return make_result(n=800, spread=True, targets=4).to_html()  # 400 non-members: 0.1% FPR is null


def test_every_user_string_is_escaped(xss_html: str) -> None:
    assert "<script" not in xss_html.lower()
    assert "alert(1)</script>" not in xss_html
    escaped = str(markupsafe.escape(XSS))
    assert escaped.startswith("&lt;script&gt;")
    assert xss_html.count(escaped) >= 10  # title, model, dataset, path, attack, group, feature, reason, dp ...
    # the injected attack is still named as an attack in the summary and flagged strongest
    assert re.search(r"<tr class=\"strongest\">\s*<td>" + re.escape(escaped), xss_html)


def test_no_network_and_no_script(xss_html: str, plain_html: str) -> None:
    for h in (xss_html, plain_html):
        low = h.lower()
        assert "http://" not in low and "https://" not in low and "//" not in re.sub(r"data:[^\"]*", "", low)
        assert "<script" not in low and "<link" not in low and "@import" not in low and "url(" not in low
        csp = html_lib.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', h).group(1))
        assert csp.startswith("default-src 'none'; img-src data:; style-src 'unsafe-inline'")
        srcs = re.findall(r'src="([^"]*)"', h)
        assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
        for s in srcs:  # valid PNGs
            assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_null_figures_shown_as_na_never_zero(plain_html: str) -> None:
    # 4 targets of 100 non-members: neither 0.1% nor 1% FPR can be measured per target
    assert "n/a (needs ≥ 1,000 non-members per target, has 100)" in plain_html
    cells = re.findall(r'<td class="num na"[^>]*>([^<]*)</td>', plain_html)
    assert len(cells) == 4 and all(c.startswith("n/a (needs") for c in cells)
    assert "These figures are null, not zero." in plain_html


def test_sections_and_numbers(plain_html: str) -> None:
    r = make_result(n=800, spread=True, targets=4)
    for anchor in ("verdict", "game", "summary", "skipped", "roc", "histogram", "slices", "exposures"):
        assert f'id="{anchor}"' in plain_html
    auc = r.metrics["lira_online"].auc
    assert f"{auc:.3f}" in plain_html
    assert "How the verdict is decided" in plain_html and "AUC 0.5" in plain_html
    assert "lira_online" in re.search(r'<tr class="strongest">.*?</tr>', plain_html, re.S).group(0)
    assert "4 targets" in plain_html and "±" in plain_html  # spread across targets
    assert "pooled over all target models" in plain_html
    assert "Generalisation gap" in plain_html and "7.0 points" in plain_html
    assert len(plain_html.encode()) < 2_000_000


def test_report_without_ground_truth(fast_plots: None) -> None:
    r = make_result(n=300)
    r2 = AuditResult(game=r.game, settings=r.settings, metrics={}, scores=r.scores.drop(columns="is_member"))
    h = r2.to_html()
    assert "No leakage figures" in h and 'id="roc"' not in h and "No attack could be evaluated" in h


def test_verdict_no_leakage_on_null_game(fast_plots: None) -> None:
    from miaudit.metrics import AuditSettings, decide_leakage, evaluate_scores

    rng = np.random.default_rng(5)
    n = 2000
    is_member = rng.permutation(np.r_[np.ones(n // 2, bool), np.zeros(n // 2, bool)])
    s = rng.normal(size=n)
    r = AuditResult(
        game={"dataset": "null"}, settings=AuditSettings(), metrics={"loss": evaluate_scores(is_member, s)},
        decision=decide_leakage(is_member, {"loss": s}),
        scores=pd.DataFrame({"is_member": is_member, "loss": s}),
    )
    h = r.to_html()
    assert "No membership leakage detected" in h and "not a proof of privacy" in h
    assert 'class="verdict none_detected"' in h
    assert "is shown to find at most" in h  # quotes the population upper bound


def test_dp_section_and_contradiction(fast_plots: None) -> None:
    ok = make_result(n=1200, dp={"epsilon": 8.0, "delta": 1e-5, "noise_multiplier": 1.1}).to_html()
    assert 'id="dp"' in ok and "ε = 8" in ok and "noise_multiplier" in ok
    assert "Gaussian DP" in ok and "consistent with the guarantee" in ok and "add/remove one example" in ok
    bad = make_result(n=1200, dp={"epsilon": 0.1, "delta": 1e-5}).to_html()
    assert "is contradicted" in bad and "exceeds what the guarantee allows in this game" in bad
    broken = make_result(n=1200, dp={"epsilon": "lots"}).to_html()
    assert "DP description is incomplete" in broken
    none = make_result(n=1200, dp={"epsilon": float("inf"), "delta": 1e-5}).to_html()
    assert "without differential privacy (ε = ∞)" in none


def test_report_of_real_metrics_layer_output(tmp_path) -> None:
    """End to end with miaudit.metrics: typed figures of three pooled targets render and save."""
    from miaudit.metrics import AuditSettings, decide_leakage, evaluate_scores, slice_metrics, summarize_spread

    rng = np.random.default_rng(11)
    n = 1500
    is_member = rng.permutation(np.r_[np.ones(n // 2, bool), np.zeros(n - n // 2, bool)])
    target = np.arange(n) % 3
    strong = rng.normal(size=n) + 1.2 * is_member
    weak = rng.normal(size=n) + 0.05 * is_member
    metrics, spread = {}, {}
    for name, s in (("weak", weak), ("strong", strong)):
        metrics[name] = evaluate_scores(is_member, s, strata=target)
        spread[name] = summarize_spread([evaluate_scores(is_member[target == t], s[target == t]) for t in range(3)])
    scores = pd.DataFrame({"target": target, "index": np.arange(n), "label": target, "is_member": is_member,
                           "weak": weak, "strong": strong})
    r = AuditResult(
        game={"source": "audit", "dataset": "synthetic", "n_targets": 3, "dp": {"epsilon": 50.0, "delta": 1e-5}},
        settings=AuditSettings(), metrics=metrics, scores=scores, spread=spread,
        decision=decide_leakage(is_member, {"weak": weak, "strong": strong}, groups=target),
        slices={"class": slice_metrics(is_member, strong, target)},
    )
    table = r.metrics_table()
    assert table.loc["strong", "auc"] == pytest.approx(metrics["strong"].auc)
    assert table.loc["strong", "n_strata"] == 3 and list(table.index) == ["strong", "weak"]
    h = r.to_html()
    assert '<tr class="strongest">' in h and "strong ★" in h and "3 targets" in h and "<details><summary>threshold</summary>" in h
    assert "Measurable membership leakage" in h or "High membership risk" in h
    assert "n/a (needs ≥ 1,000 non-members per target, has 250)" in h  # 250 per target cannot resolve 0.1%
    slices = h[h.index('id="slices"'):]
    assert "<th>TPR @ 1% FPR</th>" in slices and "<th>AUC</th>" in slices and "_ci_low" not in slices
    assert re.search(r'<td>0\.\d{3}<span class="ci">\[0\.\d{3}, [01]\.\d{3}\]</span></td>', slices)  # AUC + CI
    paths = r.save(tmp_path)
    back = json.loads(paths["results"].read_text())
    assert back["attacks"]["strong"]["tpr_at_fpr"]["0.001"] is None
    assert back["slices"]["class"][0]["group"] == 0
    assert back["verdict"]["leakage_detected"] is True and back["verdict"]["attack"] == "strong"


def test_report_is_deterministic() -> None:
    a = make_result(n=400, attacks=("x",), strength=(1.0,)).to_html()
    b = make_result(n=400, attacks=("x",), strength=(1.0,)).to_html()
    assert a == b  # PNGs without metadata, fixed timestamp: byte-identical
