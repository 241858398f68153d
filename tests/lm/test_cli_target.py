"""`miaudit audit` of a user's causal-LM checkpoint with member flags in the jsonl: a topic-shifted split is
flagged by the blind baseline and the verdict (sets_differ); a random split is not; bad inputs exit 2 first."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from miaudit.cli import app
from miaudit.data._text import pydoc_paragraphs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.llm

CFG = """\
[data]
kind = "text"
path = "docs.jsonl"
{extra}
[model]
kind = "causal_lm"
init = "scratch"
config = {{ n_layer = 1, n_head = 2, n_embd = 16, n_positions = 64 }}
tokenizer = "bytes"
epochs = 1
[game]
n_references = 2
[attacks]
names = ["loss", "zlib", "lira_online"]
[output]
dir = "out"
{target}
"""


def _write(tmp_path, *, topic: bool, key: str = "member"):
    from miaudit.training.lm_recipe import LmRecipe

    texts, topics = pydoc_paragraphs()
    names = list(dict.fromkeys(topics))
    if topic:
        mem = [t[:200] for t, k in zip(texts, topics) if k in names[:25]][:50]
        non = [t[:200] for t, k in zip(texts, topics) if k in names[-25:]][-50:]
    else:
        idx = np.random.default_rng(1).permutation(len(texts))[:100]
        mem, non = [texts[i][:200] for i in idx[:50]], [texts[i][:200] for i in idx[50:]]
    recipe = LmRecipe(config={"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 64}, epochs=1)
    recipe.train(np.asarray(mem, dtype=object), np.zeros(len(mem)), seed=0).save_pretrained(tmp_path / "ckpt")
    with open(tmp_path / "docs.jsonl", "w", encoding="utf-8") as fh:
        for t, m in [*((t, True) for t in mem), *((t, False) for t in non)]:
            fh.write(json.dumps({"text": t, key: m}) + "\n")


def _run(tmp_path, target='[target]\nmodel = "ckpt"', extra=""):
    (tmp_path / "a.toml").write_text(CFG.format(target=target, extra=extra), encoding="utf-8")
    return CliRunner().invoke(app, ["audit", str(tmp_path / "a.toml"), "--jobs", "1"])


def test_topic_split_through_the_cli_says_sets_differ(tmp_path):
    _write(tmp_path, topic=True)
    res = _run(tmp_path)
    assert res.exit_code == 0, res.output[-3000:]
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    assert r["baselines"]["blind"]["significant"] is True and r["baselines"]["blind"]["auc"] > 0.8
    assert r["verdict"]["level"] == "sets_differ"
    assert r["game"]["n_members"] == 50 and r["game"]["n_nonmembers"] == 50


def test_random_split_through_the_cli_blind_not_significant(tmp_path):
    _write(tmp_path, topic=False)
    res = _run(tmp_path)
    assert res.exit_code == 0, res.output[-3000:]
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    assert r["baselines"]["blind"]["significant"] is False
    assert r["verdict"]["level"] != "sets_differ"


@pytest.mark.parametrize("case, match", [
    ("missing_folder", r"\[target\] model: .* is not a folder"),
    ("no_weights", r"\[target\] model: .*safetensors"),
    ("no_column", r"\[data\] member_column 'member'.* no 'member' field"),
    ("bad_value", r"\[data\] member_column 'member'.* not a boolean"),
    ("all_members", r"\[data\] member_column .* 0 non-members"),
    ("column_no_target", r"\[data\] member_column: only with a \[target\]"),
])
def test_error_paths_exit_2_before_training(tmp_path, case, match):
    _write(tmp_path, topic=True, key="in_train" if case == "no_column" else "member")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    target, extra = '[target]\nmodel = "ckpt"', ""
    if case == "missing_folder":
        target = '[target]\nmodel = "nowhere"'
    elif case == "no_weights":
        (tmp_path / "empty").mkdir()
        target = '[target]\nmodel = "empty"'
    elif case in ("bad_value", "all_members"):
        rows = [json.loads(x) for x in (tmp_path / "docs.jsonl").read_text().splitlines()]
        for i, row in enumerate(rows):
            row["member"] = "yes" if case == "bad_value" and i == 3 else (True if case == "all_members" else row["member"])
        (tmp_path / "docs.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    elif case == "column_no_target":
        target, extra = "", 'member_column = "member"'
    res = _run(tmp_path, target=target, extra=extra)
    assert res.exit_code == 2, res.output[-2000:]
    import re
    assert re.search(match, res.output), res.output
    assert "Traceback" not in res.output
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"
    assert not (tmp_path / "out" / "cache").exists() and not (tmp_path / "miaudit-report").exists()
