"""LM attacks on synthetic statistics where the answer is known; the blind baseline on real text (null and
topic-shifted splits); the stratified rank test against scipy; canary exposure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from miaudit import InputError
from miaudit.attacks.lm import LM_ATTACKS, LmSignals, blind_scores, get_lm_attack, lm_attack_names, sequence_logits
from miaudit.audit.lm import blind_baseline, canary_exposure, excerpt, fold_test, stratified_rank_test
from miaudit.data._text import pydoc_paragraphs
from miaudit.metrics import AuditSettings, evaluate_scores
from miaudit.signals import scaled_logit
from miaudit.training.lm_recipe import K_GRID, STAT_NAMES, make_canaries, stat_index


def _world(n=400, seed=0, shift=0.3):
    rng = np.random.default_rng(seed)
    is_member = rng.permutation(n) < n // 2
    stats = np.full((n, len(STAT_NAMES)), np.nan)
    ll = -3.0 + rng.normal(0, 0.2, n) + shift * is_member
    stats[:, stat_index("logp_mean")] = ll
    stats[:, stat_index("n_tokens")] = 100
    stats[:, stat_index("lower_logp_mean")] = ll - 0.5 * is_member - 0.1  # members lose more when lower-cased
    stats[:, stat_index("recall_logp_mean")] = ll * (1 + 0.2 * is_member)  # and after a non-member prefix
    stats[:, stat_index("dc_pdd")] = rng.normal(0, 1, n) + 2 * is_member
    for k in K_GRID:
        stats[:, stat_index(f"min_k@{k:g}")] = ll - (1 - k)
        stats[:, stat_index(f"min_k_pp@{k:g}")] = rng.normal(0, 1, n) + 2 * is_member
    texts = np.array([f"document {i} " + "x" * (10 + i % 7) for i in range(n)], dtype=object)
    return is_member, stats, texts


def _auc(is_member, scores):
    return evaluate_scores(is_member, scores).auc


def test_every_lm_attack_finds_the_planted_signal_and_ignores_a_null_world():
    mem, stats, texts = _world()
    ref = stats.copy()
    ref[:, stat_index("logp_mean")] = -3.0  # a reference LM that never saw the members
    sig = LmSignals(stats=stats, texts=texts, reference_stats=ref)
    null_mem = np.random.default_rng(9).permutation(mem)
    for name in LM_ATTACKS:
        attack = get_lm_attack(name)
        assert attack.missing(sig) is None, name
        s = attack.fit(sig).score(sig)
        assert s.shape == mem.shape and np.all(np.isfinite(s))
        assert _auc(mem, s) > 0.8, name
        assert 0.35 < _auc(null_mem, s) < 0.65, name


def test_formulas():
    mem, stats, texts = _world(n=20)
    sig = LmSignals(stats=stats, texts=texts)
    ll = stats[:, 0]
    import zlib

    z = np.array([len(zlib.compress(t.encode(), 9)) for t in texts])
    np.testing.assert_allclose(get_lm_attack("zlib").score(sig), ll / z)
    np.testing.assert_allclose(get_lm_attack("lowercase").score(sig), stats[:, 2] / ll)
    np.testing.assert_allclose(get_lm_attack("recall").score(sig), stats[:, 3] / ll)
    np.testing.assert_allclose(get_lm_attack("min_k", {"k": 0.5}).score(sig), stats[:, stat_index("min_k@0.5")])
    np.testing.assert_allclose(get_lm_attack("loss").score(sig), ll)
    # the reference game's logits: the scaled logit of class 1 is the sequence log-likelihood itself
    lg = sequence_logits(stats[None, :, None, :])
    assert lg.shape == (1, 20, 1, 2)
    np.testing.assert_allclose(scaled_logit(lg[0], np.ones((20, 1), dtype=np.int64))[:, 0], ll, atol=1e-9)


def test_attack_errors_and_missing_inputs():
    mem, stats, texts = _world(n=10)
    stats[:, stat_index("recall_logp_mean")] = np.nan
    stats[:, [stat_index(f"min_k_pp@{k:g}") for k in K_GRID]] = np.nan
    sig = LmSignals(stats=stats, texts=texts)
    assert "reference language model" in get_lm_attack("ref_ratio").missing(sig)
    assert "non-member prefixes" in get_lm_attack("recall").missing(sig)
    assert "mean and variance" in get_lm_attack("min_k_pp").missing(sig)
    with pytest.raises(InputError, match=r"k: expected one of 0.05, 0.1"):
        get_lm_attack("min_k", {"k": 0.25})
    with pytest.raises(InputError, match=r"unknown keys \['q'\]"):
        get_lm_attack("min_k_pp", {"q": 1})
    with pytest.raises(InputError, match=r"unknown language-model attack 'neighbour'"):
        get_lm_attack("neighbour")
    assert lm_attack_names()[-4:] == ["lira_online", "lira_offline", "rmia", "rmia_offline"]


def test_stratified_rank_test_matches_mann_whitney_and_is_uniform_under_the_null():
    rng = np.random.default_rng(1)
    m = rng.permutation(60) < 25
    s = np.round(rng.normal(size=60) + 0.5 * m, 1)  # ties on purpose
    z, p = stratified_rank_test(m, s, np.zeros(60))
    ref = mannwhitneyu(s[m], s[~m], alternative="greater", method="asymptotic", use_continuity=False)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)
    ps = [stratified_rank_test(rng.permutation(m), rng.normal(size=60), rng.integers(0, 3, 60))[1] for _ in range(400)]
    assert 0.02 < np.mean(np.array(ps) < 0.05) < 0.09
    assert stratified_rank_test(np.ones(5, bool), np.arange(5.0), np.zeros(5))[1] == 1.0


def test_fold_test_is_bonferroni_over_per_fold_mann_whitney():
    rng = np.random.default_rng(3)
    fold = np.repeat(np.arange(4), 25)
    m = np.concatenate([rng.permutation(25) < 12 for _ in range(4)])
    s = rng.normal(size=100) + 0.4 * m
    ps = [mannwhitneyu(s[(fold == f) & m], s[(fold == f) & ~m], alternative="greater", method="asymptotic",
                       use_continuity=False).pvalue for f in range(4)]
    assert fold_test(m, s, fold) == pytest.approx(min(1.0, 4 * min(ps)), rel=1e-9)
    assert fold_test(m, -s - 10, fold) == 1.0


@pytest.fixture(scope="module")
def paragraphs():
    texts, topics = pydoc_paragraphs()
    return np.asarray(texts, dtype=object), np.asarray(topics)


def test_blind_baseline_null_check_on_random_splits(paragraphs):
    """On random splits of one pool the blind baseline claims a difference no more often than its level."""
    texts, _ = paragraphs
    rng = np.random.default_rng(0)
    settings = AuditSettings(seed=0)
    hits = 0
    n_games = 20
    for g in range(n_games):
        idx = rng.choice(len(texts), 160, replace=False)
        mem = rng.permutation(160) < 80
        hits += blind_baseline(texts[idx], [(g, mem)], settings=settings)["significant"]
    assert hits <= 4  # level 5%: P(Binomial(20, 0.05) >= 5) = 0.3%


def test_blind_baseline_catches_a_topic_split(paragraphs):
    texts, topics = paragraphs
    names = list(dict.fromkeys(topics))
    first = np.flatnonzero(np.isin(topics, names[:20]))[:100]
    last = np.flatnonzero(np.isin(topics, names[-20:]))[-100:]
    docs = np.concatenate([texts[first], texts[last]])
    mem = np.arange(200) < 100
    b = blind_baseline(docs, [(0, mem)], settings=AuditSettings(seed=0))
    assert b["significant"] and b["auc"] > 0.8 and b["auc_interval"][0] > 0.5
    scores, fold = blind_scores(docs, mem, seed=0, n_folds=5)
    assert set(fold) == set(range(5)) and np.all(np.isfinite(scores))
    with pytest.raises(InputError, match=r"blind baseline: expected one membership label per text"):
        blind_scores(docs[:3], mem[:3])


def test_canary_exposure_rank_and_tpr():
    cs = make_canaries(repetitions=[1, 16], per_repetition=3, candidates=99, seed=0)
    n, c = cs.texts.shape
    assert c == 100 and len(set(cs.texts.reshape(-1))) == n * c
    assert all(t.startswith("the access code is ") and len(t) == len("the access code is 7301-4482")
               for t in cs.texts.reshape(-1))
    ll = np.random.default_rng(0).normal(-3.0, 0.1, (n, c))
    ll[cs.repetitions == 16, 0] = 0.0  # the repeated canaries are the likeliest of their candidates
    ll[cs.repetitions == 1, 0] = -10.0  # the others the least likely
    stats = np.zeros((n * c, len(STAT_NAMES)))
    stats[:, stat_index("logp_mean")] = ll.reshape(-1) / 30
    stats[:, stat_index("n_tokens")] = 30
    out = canary_exposure(cs, stats, settings=AuditSettings())
    exp = {r["repetitions"]: [] for r in out["canaries"]}
    for r in out["canaries"]:
        exp[r["repetitions"]].append(r["exposure"])
    np.testing.assert_allclose(exp[16], np.log2(100))  # rank 1 of 100: log2(|R|) - log2(rank |R| / 100)
    np.testing.assert_allclose(exp[1], 0.0)  # rank 100 of 100
    assert out["max_exposure"] == pytest.approx(np.log2(100))
    assert out["by_repetitions"]["16"]["auc"] == 1.0
    assert out["by_repetitions"]["16"]["tpr_at_fpr"]["1%"]["tpr"] == 1.0
    assert out["by_repetitions"]["1"]["tpr_at_fpr"]["1%"]["tpr"] == 0.0
    assert out["by_repetitions"]["1"]["n_nonmembers"] == n * 99


def test_excerpt_escapes_control_characters():
    assert excerpt("a\nb\x1b[31m") == "a\\nb\\x1b[31m"
    assert excerpt("x" * 100).endswith("…") and len(excerpt("x" * 100)) == 81
