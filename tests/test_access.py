"""Audits at the access a user has: a raw confidence table without labels (issue 10, section 1).

The article's own experiment end to end through the CLI (the command of ``benchmarks/bench_article_table.py``),
the same through the Python API, and the bad inputs of that path: one line, exit 2, naming the CLI flag
under the CLI and the keyword in the API.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from miaudit._errors import InputError
from miaudit.api import audit_bundle
from miaudit.cli import app

from ._worlds import article_table

ARTICLE_ARGS = ["--outputs", "p_cat,p_dog", "--outputs-kind", "scores", "--member-column", "member"]


def _write_article(path: Path, n: int = 1000) -> Path:
    scores, is_member = article_table(n)
    pd.DataFrame({"p_cat": scores[:, 0], "p_dog": scores[:, 1], "member": is_member.astype(int)}).to_csv(
        path, index=False)
    return path


def _cli(*args: str):
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res


@pytest.fixture(scope="module")
def article_csv(tmp_path_factory) -> Path:
    return _write_article(tmp_path_factory.mktemp("article") / "T.csv")


def test_article_table_end_to_end(article_csv, tmp_path):
    """``miaudit score T.csv --outputs p_cat,p_dog --outputs-kind scores --member-column member``: the best attack
    finds at least 40% of the members at FPR 0.1% (the optimum, any score outside [0.2, 0.8], finds 43.75%)."""
    out = tmp_path / "o"
    res = _cli("score", str(article_csv), *ARTICLE_ARGS, "--out", str(out))
    assert res.exit_code == 0, res.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["game"]["n_nonmembers"] == 1000  # 1000 non-members resolve FPR 0.1%
    tprs = {name: m["tpr_at_fpr"]["0.001"] for name, m in results["attacks"].items()}
    best = max((t for t in tprs.values() if t is not None), default=0.0)
    assert best >= 0.40, tprs
    assert tprs["score_extremity"] >= 0.40
    assert {"max_score", "score_spread", "trained_lr", "trained_gb"} <= set(results["attacks"])
    assert results["verdict"]["leakage_detected"]
    # attacks that need labels or logits are skipped with the reason, naming the CLI flags
    assert results["skipped"]["loss"] == "needs the true labels (--label-column)"
    assert "--outputs-kind scores" in results["skipped"]["entropy"]
    scores = pd.read_csv(out / "scores.csv")
    assert "label" not in scores.columns and len(scores) == 2000


def test_article_table_through_the_api(tmp_path):
    path = _write_article(tmp_path / "T.csv", n=300)
    result = audit_bundle(str(path), outputs="p_*", outputs_kind="scores", member_column="member",
                          attacks=["score_extremity", "max_score", "score_spread"])
    # 300 non-members cannot resolve FPR 0.1%; at FPR 1% (3 false positives allowed) the optimum is 43.75%
    assert result.metrics["score_extremity"].at(0.01).tpr >= 0.35
    assert result.metrics["score_extremity"].auc > result.metrics["max_score"].auc
    default = audit_bundle(str(path), outputs="p_cat,p_dog", outputs_kind="scores", member_column="member")
    assert default.skipped["loss"] == "needs the true labels (labels in the bundle, label_column=... for tables)"
    assert "outputs_kind='scores'" in default.skipped["entropy"]


def test_scores_with_labels_run_the_label_attacks_that_read_scores(tmp_path):
    scores, is_member = article_table(200)
    df = pd.DataFrame({"p_cat": scores[:, 0], "p_dog": scores[:, 1], "member": is_member,
                       "y": (scores[:, 1] > scores[:, 0]).astype(int)})
    df.to_csv(tmp_path / "T.csv", index=False)
    result = audit_bundle(str(tmp_path / "T.csv"), outputs="p_*", outputs_kind="scores", member_column="member",
                          label_column="y")
    assert {"trained_lr", "trained_gb", "score_extremity"} <= set(result.metrics)
    assert "loss" in result.skipped and "labels" not in result.skipped["loss"]  # it needs logits, not labels
    assert list(result.scores["label"]) == list(df["y"])


#: (edit of the table, extra CLI options, message under the CLI, message in the API)
BAD_INPUTS = [
    (lambda d: d.assign(p_dog=[np.nan] + list(d["p_dog"][1:])), [], r"p_dog: empty or NaN cell at row 0",
     r"p_dog: empty or NaN cell at row 0"),
    (lambda d: d.assign(y=[2] + [0] * (len(d) - 1)), ["--label-column", "y"],
     r"y: expected class indices 0\.\.1 \(one per output column p_cat,p_dog\), found 2 at row 0 \(--label-column\)",
     r"\(label_column=\.\.\.\)"),
    (lambda d: d, ["--outputs-kind", "odds"], r"--outputs-kind: expected 'logits', 'probs' or 'scores', got 'odds'",
     r"outputs_kind: expected 'logits', 'probs' or 'scores', got 'odds'; pass outputs_kind='scores'"),
    (lambda d: d, ["--outputs", "p_cat,p_cow"], r"output column 'p_cow' not found \(--outputs\)",
     r"output column 'p_cow' not found \(outputs=\.\.\.\)"),
    (lambda d: d, ["--outputs", "q_*"], r"no output columns match 'q_\*' \(--outputs\)", r"\(outputs=\.\.\.\)"),
    (lambda d: d, ["--label-column", "y"], r"label column 'y' not found.*pass --label-column",
     r"pass label_column=\.\.\."),
    (lambda d: d, ["--member-column", "in_training"], r"membership column 'in_training' not found.*--member-column",
     r"member_column=\.\.\."),
]


def _cli_args(extra: list[str]) -> list[str]:
    """The article's options, with ``extra`` replacing an option of the same name."""
    args = list(ARTICLE_ARGS)
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    return args


def _api_kwargs(args: list[str]) -> dict[str, str]:
    return {flag[2:].replace("-", "_"): value for flag, value in zip(args[::2], args[1::2])}


@pytest.mark.parametrize(("edit", "extra", "cli_message", "api_message"), BAD_INPUTS,
                         ids=["nan", "label-outside", "kind", "columns", "pattern", "label-column", "member-column"])
def test_bad_inputs(tmp_path, edit, extra, cli_message, api_message):
    scores, is_member = article_table(50)
    df = pd.DataFrame({"p_cat": scores[:, 0], "p_dog": scores[:, 1], "member": is_member.astype(int)})
    edit(df).to_csv(tmp_path / "T.csv", index=False)
    args = _cli_args(extra)
    out = tmp_path / "o"
    res = _cli("score", str(tmp_path / "T.csv"), *args, "--out", str(out))
    assert res.exit_code == 2
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: T.csv: "), res.stderr
    assert re.search(cli_message, lines[0]), lines[0]
    assert not out.exists()
    with pytest.raises(InputError, match=api_message) as info:
        audit_bundle(str(tmp_path / "T.csv"), **_api_kwargs(args))
    assert "\n" not in str(info.value) and "--" not in str(info.value)


def test_outputs_kind_is_asked_for(article_csv, tmp_path):
    res = _cli("score", str(article_csv), "--outputs", "p_cat,p_dog", "--member-column", "member",
               "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    assert "--outputs-kind: cannot tell what the columns p_cat,p_dog hold; pass --outputs-kind logits" in res.stderr
    res = _cli("score", str(article_csv), "--member-column", "member", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "name them with --outputs" in res.stderr and "--outputs-kind" in res.stderr
    with pytest.raises(InputError, match=r"name them with outputs= .*outputs_kind="):
        audit_bundle(str(article_csv), member_column="member")


def test_npz_scores_bundle_through_the_cli(tmp_path):
    scores, is_member = article_table(300)
    np.savez(tmp_path / "s.npz", target_scores=scores, is_member=is_member)
    res = _cli("score", str(tmp_path / "s.npz"), "--attack", "score_extremity", "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.stderr
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["attacks"]["score_extremity"]["tpr_at_fpr"]["0.01"] >= 0.35
    res = _cli("score", str(tmp_path / "s.npz"), "--outputs-kind", "scores", "--out", str(tmp_path / "o2"))
    assert res.exit_code == 2 and "--outputs and --outputs-kind apply to tables" in res.stderr
    res = _cli("score", str(tmp_path / "s.npz"), "--attack", "loss", "--out", str(tmp_path / "o3"))
    assert res.exit_code == 2 and "attack 'loss' cannot run on this data: needs the true labels (--label-column)" in (
        " ".join(res.stderr.split()))
