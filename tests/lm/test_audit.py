"""LM audits end to end: the issue's config through `miaudit audit` on real text (pydoc_data.topics), a user's
target on a topic-shifted split (the verdict must say the sets differ), the recipes (seeded, scratch, a local
checkpoint, LoRA), and the config's refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from miaudit import ConfigError
from miaudit.cli import app
from miaudit.config import AuditConfig
from miaudit.data._text import pydoc_paragraphs

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.llm

TINY = {"n_layer": 1, "n_head": 2, "n_embd": 16, "n_positions": 64}

CONFIG = """\
[data]
kind = "text"
path = "docs.jsonl"
[model]
kind = "causal_lm"
init = "scratch"
config = {{ n_layer = 1, n_head = 2, n_embd = 16, n_positions = 64 }}
tokenizer = "bytes"
epochs = 1
stride = 56
canaries = {{ repetitions = [1, 8], per_repetition = 1, candidates = 20 }}
[game]
n_references = 2
n_targets = 1
[attacks]
names = ["loss", "zlib", "min_k", "min_k_pp", "recall", "dc_pdd", "ref_ratio", "lira_online", "rmia"]
params = {{ recall = {{ n_prefix = 1 }}, min_k = {{ k = 0.2 }}, ref_ratio = {{ model = "ref" }} }}
[output]
dir = "out"
{show}
"""


def _docs(tmp_path, n=120):
    texts, _ = pydoc_paragraphs()
    idx = np.random.default_rng(0).choice(len(texts), n, replace=False)
    with open(tmp_path / "docs.jsonl", "w", encoding="utf-8") as fh:
        for i in sorted(idx):
            fh.write(json.dumps({"text": texts[i][:240]}) + "\n")


def test_issue_config_end_to_end_through_the_cli(tmp_path, monkeypatch):
    _docs(tmp_path)
    torch.manual_seed(0)  # a reference LM the user names: here an untrained local checkpoint
    transformers.GPT2LMHeadModel(transformers.GPT2Config(vocab_size=259, **TINY)).save_pretrained(tmp_path / "ref")
    (tmp_path / "audit.toml").write_text(CONFIG.format(show="show_text = true"), encoding="utf-8")
    monkeypatch.chdir(tmp_path.parent)  # the reference model's path is relative to the config file
    res = CliRunner().invoke(app, ["audit", str(tmp_path / "audit.toml"), "--jobs", "1"])
    assert res.exit_code == 0, res.output[-3000:]
    assert "blind baseline" in res.output
    r = json.loads((tmp_path / "out" / "results.json").read_text())
    assert set(r["attacks"]) == {"loss", "zlib", "min_k", "min_k_pp", "recall", "dc_pdd", "ref_ratio", "lira_online",
                                 "rmia"}
    for m in r["attacks"].values():
        lo, hi = m["auc_interval"] if "auc_interval" in m else m["auc_ci"]
        assert lo <= m["auc"] <= hi
    blind = r["baselines"]["blind"]
    assert 0 <= blind["auc"] <= 1 and len(blind["auc_interval"]) == 2 and blind["significant"] is False
    assert r["verdict"]["level"] in ("none_detected", "measurable", "high")
    g = r["game"]
    assert g["n_models"] == 4 and g["n_prefix_documents"] == 1 and g["n_members"] + g["n_nonmembers"] == 119
    assert g["fit_seconds_per_model"] > 0
    c = r["canaries"]
    assert c["candidates"] == 20 and len(c["canaries"]) == 2 and set(c["by_repetitions"]) == {"1", "8"}
    assert all(0 <= x["exposure"] <= c["max_exposure"] + 1e-9 for x in c["canaries"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert "feature:text" in html and "Blind baseline (the texts alone" in html and "id=\"canaries\"" in html
    assert "mean token log-probability" in html  # the LM attacks' own descriptions
    # the same run again comes from the cache; without show_text no document text is shown
    (tmp_path / "audit.toml").write_text(CONFIG.format(show=""), encoding="utf-8")
    res = CliRunner().invoke(app, ["audit", str(tmp_path / "audit.toml"), "--jobs", "1", "--overwrite"])
    assert res.exit_code == 0, res.output[-3000:]
    assert "feature:text" not in (tmp_path / "out" / "report.html").read_text()
    r2 = json.loads((tmp_path / "out" / "results.json").read_text())
    assert r2["attacks"]["loss"]["auc"] == r["attacks"]["loss"]["auc"]


def test_topic_split_is_flagged_by_the_verdict(tmp_path):
    """Members from the first topics, non-members from the last: the blind baseline separates them without the
    model and the verdict refuses to call the model leaky on that evidence."""
    from miaudit.audit.lm import run_lm_audit_with_target
    from miaudit.training.lm_recipe import LmRecipe

    texts, topics = pydoc_paragraphs()
    names = list(dict.fromkeys(topics))
    first = [t[:200] for t, k in zip(texts, topics) if k in names[:25]][:60]
    last = [t[:200] for t, k in zip(texts, topics) if k in names[-25:]][-60:]
    recipe = LmRecipe(config=TINY, epochs=1, stride=56, lowercase=False)
    target = recipe.train(np.array(first, dtype=object), None, seed=123)
    res = run_lm_audit_with_target(recipe, target, first, last, n_references=2, run_dir=tmp_path / "cache", jobs=1,
                                   attacks=["loss", "min_k", "lira_offline"])
    v = res.verdict()
    assert res.baselines["blind"]["significant"]
    assert v.level == "sets_differ" and not v.leakage_detected
    assert "differ without the model" in v.sentence
    d = res.to_json()
    assert d["baselines"]["blind"]["auc"] > 0.8 and d["verdict"]["leakage_detected"] is False


def test_recipe_is_seeded_and_fine_tunes_a_local_checkpoint(tmp_path):
    from miaudit.training.lm_recipe import STAT_NAMES, LmRecipe

    docs = np.array([t[:150] for t in pydoc_paragraphs()[0][:24]], dtype=object)
    r = LmRecipe(config=TINY, epochs=1, batch_size=8)
    a, b, c = r.train(docs, None, seed=1), r.train(docs, None, seed=1), r.train(docs, None, seed=2)
    sa, sb, sc = (list(m.state_dict().values()) for m in (a, b, c))
    assert all(torch.equal(x, y) for x, y in zip(sa, sb))
    assert not all(torch.equal(x, y) for x, y in zip(sa, sc))
    stats = r.predict_logits(a, docs)
    assert stats.shape == (24, 1, len(STAT_NAMES)) and np.all(np.isfinite(stats[:, 0, 0]))
    # save it as a local checkpoint; full fine-tuning and LoRA start from its weights
    a.save_pretrained(tmp_path / "ckpt")
    full = LmRecipe(init=str(tmp_path / "ckpt"), epochs=1, batch_size=8, learning_rate=1e-2)
    tuned = full.train(docs, None, seed=0)
    assert not torch.equal(tuned.state_dict()["transformer.wte.weight"], a.state_dict()["transformer.wte.weight"])
    pytest.importorskip("peft")
    lora = LmRecipe(init=str(tmp_path / "ckpt"), epochs=1, batch_size=8, learning_rate=1e-2,
                    lora={"r": 2, "alpha": 4, "target_modules": ["c_attn"]})
    lm = lora.train(docs, None, seed=0)
    trainable = {n for n, p in lm.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    base = {n.replace("base_model.model.", "").replace("base_layer.", ""): p for n, p in lm.named_parameters()
            if "lora_" not in n}
    assert torch.equal(base["transformer.wte.weight"], a.state_dict()["transformer.wte.weight"])
    s1 = lora.predict_logits(lm, docs)
    assert np.all(np.isfinite(s1[:, 0, 0])) and not np.allclose(s1[:, 0, 0], stats[:, 0, 0])


def _cfg(**model):
    return {"data": {"kind": "pydoc_topics"}, "model": {"kind": "causal_lm", **model}}


@pytest.mark.parametrize(
    ("model", "extra", "match"),
    [
        ({"epochs": 0}, {}, r"\[model\] epochs: expected an integer >= 1, got 0"),
        ({"lora": {"r": 4}}, {}, r"\[model\] lora: LoRA fine-tunes a checkpoint"),
        ({"dtype": "float16"}, {}, r"\[model\] dtype: expected \"float32\" or \"bfloat16\""),
        ({"device": "tpu"}, {}, r"\[model\] device"),
        ({"colour": 1}, {}, r"\[model\] unknown keys 'colour'"),
        ({"canaries": {"template": "no secret"}}, {}, r"canaries.template: expected a string with one \{secret\}"),
        ({"canaries": {"repetitions": [0]}}, {}, r"canaries.repetitions"),
        ({}, {"attacks": ["shokri"]}, r"'shokri' is not an attack for \[model\] kind = 'causal_lm'"),
        ({}, {"attacks": ["neighbourhood"]}, r"unknown attack 'neighbourhood'"),
    ],
)
def test_config_refusals(model, extra, match):
    with pytest.raises(ConfigError, match=match):
        AuditConfig.from_dict({**_cfg(**model), **extra})


def test_classifier_configs_refuse_lm_attacks_and_text_needs_a_path():
    with pytest.raises(ConfigError, match=r"'zlib' is not an attack for \[model\] kind = 'sklearn'"):
        AuditConfig.from_dict({"data": {"kind": "digits"}, "attacks": ["zlib"]})
    with pytest.raises(ConfigError, match=r"\[data\] path: missing for kind 'text'"):
        AuditConfig.from_dict({"data": {"kind": "text"}, "model": {"kind": "causal_lm"}})
    cfg = AuditConfig.from_dict({**_cfg(config=TINY, epochs=2), "output": {"show_text": True}})
    assert cfg.output.show_text and cfg.model.kind == "causal_lm"
    assert AuditConfig.from_dict(cfg.to_dict()).output.show_text


ISSUE_CONFIG = """\
[data]
kind = "text"
path = "docs.jsonl"
[model]
kind = "causal_lm"
init = "scratch"                 # or a local checkpoint folder
config = { n_layer = 2, n_head = 2, n_embd = 128, n_positions = 128 }
tokenizer = "bytes"              # or a local tokenizer folder
epochs = 20
[game]
n_references = 4
n_targets = 1
"""


def test_the_issue_config_as_written_loads_and_builds(tmp_path):
    from miaudit.config import load_config
    from miaudit.training.lm_recipe import LmRecipe

    _docs(tmp_path, n=10)
    (tmp_path / "audit.toml").write_text(ISSUE_CONFIG, encoding="utf-8")
    cfg = load_config(tmp_path / "audit.toml")
    recipe = cfg.model.build(n_classes=1)
    assert isinstance(recipe, LmRecipe) and recipe.epochs == 20 and recipe.config["n_embd"] == 128
    assert cfg.game.n_models() == 6 and cfg.game.effective_n_targets == 1
    model = recipe.build(seed=0)
    assert model.config.n_positions == 128 and model.config.vocab_size == 259
