"""miaudit.models.lm: per-token log-probabilities of a causal LM, batched, padded, strided; the sequence signals."""

from __future__ import annotations

import numpy as np
import pytest

from miaudit import InputError
from miaudit.models.lm import (
    ByteTokenizer,
    CallableLM,
    _segments,
    dc_pdd_score,
    min_k_pp_score,
    min_k_score,
    resolve_device,
    resolve_dtype,
    token_scores,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.llm

TEXTS = ["hello world", "a" * 10, "the access code is 7301-4482, remember it", "é ü 日本"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=259, n_layer=1, n_head=2, n_embd=32, n_positions=64, bos_token_id=256,
                                  eos_token_id=257, pad_token_id=258)
    return transformers.GPT2LMHeadModel(cfg).eval()


def _reference(model, ids):
    """Brute force: one unpadded forward pass per scored token, on its full context (len(ids) <= window)."""
    out = []
    for t in range(1, len(ids)):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids[:t]])).logits[0, -1].double()
        lsm = torch.log_softmax(logits, -1)
        p = lsm.exp()
        out.append((float(lsm[ids[t]]), float((p * lsm).sum()), float((p * lsm**2).sum() - (p * lsm).sum() ** 2)))
    return np.array(out)


def test_byte_tokenizer_round_trips():
    tok = ByteTokenizer()
    for t in TEXTS:
        ids = tok.encode(t)
        assert max(ids) < 256 and tok.decode(ids) == t
    assert tok.vocab_size == 259 and len({tok.bos_id, tok.eos_id, tok.pad_id}) == 3


def test_scores_match_brute_force_and_batched_equals_one_by_one(model):
    tok = ByteTokenizer()
    batched = token_scores(model, tok, TEXTS, batch_size=4)
    single = [token_scores(model, tok, [t], batch_size=1)[0] for t in TEXTS]
    for t, a, b in zip(TEXTS, batched, single):
        ids = [tok.bos_id] + tok.encode(t)
        assert a.n_tokens == len(ids) - 1 and np.array_equal(a.token_ids, ids[1:])
        np.testing.assert_allclose(a.logp, b.logp, atol=1e-5)
        np.testing.assert_allclose(a.mu, b.mu, atol=1e-5)
        ref = _reference(model, ids)
        np.testing.assert_allclose(a.logp, ref[:, 0], atol=1e-4)
        np.testing.assert_allclose(a.mu, ref[:, 1], atol=1e-4)
        np.testing.assert_allclose(a.var, ref[:, 2], atol=1e-4)
        assert np.all(a.logp <= 0) and np.all(a.var >= 0)


def test_segments_score_every_position_once():
    for n in (2, 5, 31, 32, 33, 100, 257):
        for W, S in ((32, 16), (32, 31), (8, 1), (8, 3)):
            segs = _segments(n, W, S)
            scored = np.concatenate([np.arange(f, e) for s, e, f in segs])
            assert np.array_equal(scored, np.arange(1, n)), (n, W, S)
            assert all(e - s <= W and s < f <= e for s, e, f in segs)
            # every scored token (past the first window) sees at least W - S tokens of context
            assert all(f - s >= min(f, W - S) for s, e, f in segs)


def test_long_documents_are_strided_over_the_window(model):
    tok = ByteTokenizer()
    long = "The quick brown fox jumps over the lazy dog. " * 3  # 135 bytes > 32 positions
    ids = [tok.bos_id] + tok.encode(long)
    (s,) = token_scores(model, tok, [long], window=32, stride=8)
    assert s.n_tokens == len(ids) - 1 and np.all(np.isfinite(s.logp))
    for start, end, first in _segments(len(ids), 32, 8):
        ref = _reference(model, ids[start:end])  # the window's own context, brute force
        got = s.logp[first - 1:end - 1]
        np.testing.assert_allclose(got, ref[first - start - 1:, 0], atol=1e-4)
    (short,) = token_scores(model, tok, ["short text"], window=32, stride=8)
    (whole,) = token_scores(model, tok, ["short text"], window=32, stride=31)
    np.testing.assert_allclose(short.logp, whole.logp, atol=1e-6)
    with pytest.raises(InputError, match=r"window/stride"):
        token_scores(model, tok, [long], window=32, stride=32)


def test_prefix_is_context_not_scored(model):
    tok = ByteTokenizer()
    (plain,) = token_scores(model, tok, ["abc def"])
    (pre,) = token_scores(model, tok, ["abc def"], prefix=tok.encode("zzz "))
    (joined,) = token_scores(model, tok, ["zzz abc def"])
    assert pre.n_tokens == plain.n_tokens
    np.testing.assert_allclose(pre.logp, joined.logp[4:], atol=1e-5)
    assert not np.allclose(pre.logp, plain.logp)


def test_bfloat16_and_device_errors(model):
    tok = ByteTokenizer()
    m16 = transformers.GPT2LMHeadModel(model.config).to(dtype=resolve_dtype("bfloat16"))
    m16.load_state_dict({k: v.to(torch.bfloat16) for k, v in model.state_dict().items()})
    a = token_scores(model, tok, TEXTS[:2])
    b = token_scores(m16, tok, TEXTS[:2])
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.logp, y.logp, atol=0.15)
    assert resolve_device("cpu") == "cpu" and resolve_device("auto") in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match=r"CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(InputError, match=r"expected \"auto\", \"cpu\" or \"cuda\""):
        resolve_device("tpu")
    with pytest.raises(InputError, match=r"float32.*bfloat16"):
        resolve_dtype("float16")


def test_callable_lm():
    lm = CallableLM(lambda text: -np.arange(1, len(text) + 1) / 10)
    (s,) = token_scores(lm, None, ["abcd"])
    np.testing.assert_allclose(s.logp, [-0.1, -0.2, -0.3, -0.4])
    assert np.all(np.isnan(s.mu))
    with pytest.raises(InputError, match=r"log-probabilities <= 0"):
        token_scores(CallableLM(lambda t: [0.5]), None, ["x"])
    with pytest.raises(InputError, match=r"expected a function"):
        CallableLM(3)  # type: ignore[arg-type]


def test_sequence_signals_against_brute_force():
    rng = np.random.default_rng(0)
    logp = -rng.exponential(2.0, size=37)
    for k in (0.05, 0.2, 0.5, 1.0):
        n = max(1, int(np.floor(k * 37)))
        assert min_k_score(logp, k=k) == pytest.approx(np.mean(sorted(logp)[:n]))
    assert min_k_score(logp, k=1.0) == pytest.approx(logp.mean())
    mu, var = -np.full(37, 2.0), np.full(37, 4.0)
    assert min_k_pp_score(logp, mu, var, k=0.2) == pytest.approx(np.mean(sorted((logp + 2.0) / 2.0)[:7]))
    ids = np.array([3, 1, 3, 2, 1])
    lp = np.log([0.5, 0.25, 0.9, 0.1, 0.8])
    freq = np.array([0.1, 0.2, 0.3, 0.4])
    alpha = [-0.5 * np.log(0.4), -0.25 * np.log(0.2), -0.1 * np.log(0.3)]  # first occurrences of 3, 1, 2
    assert dc_pdd_score(lp, ids, freq, max_value=10.0) == pytest.approx(np.mean(alpha))
    assert dc_pdd_score(lp, ids, freq, max_value=0.2) == pytest.approx(np.mean(np.minimum(alpha, 0.2)))
    with pytest.raises(InputError, match=r"k: expected a fraction"):
        min_k_score(logp, k=0.0)


def test_local_tokenizer_folder_trains_and_scores(tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    from miaudit.models.lm import HFTokenizer
    from miaudit.training.lm_recipe import LmRecipe

    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<bos>", "<eos>", "<pad>"],
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["hello world, the quick brown fox"] * 50, trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>",
                                                pad_token="<pad>", unk_token="<unk>")
    fast.save_pretrained(tmp_path / "tok")
    h = HFTokenizer(tmp_path / "tok")
    assert (h.bos_id, h.eos_id, h.pad_id) == (1, 2, 3) and h.decode(h.encode("hello world")) == "hello world"
    docs = np.array(["hello world, the quick brown fox", "the fox says hello"], dtype=object)
    r = LmRecipe(config={"n_layer": 1, "n_head": 1, "n_embd": 8, "n_positions": 16}, tokenizer=str(tmp_path / "tok"))
    m = r.train(docs, None, seed=0)
    assert m.config.vocab_size == h.vocab_size
    (s,) = token_scores(m, h, ["hello world"])
    assert s.n_tokens == len(h.encode("hello world")) and np.all(s.logp < 0)
    with pytest.raises(InputError, match=r"is not a folder"):
        HFTokenizer(tmp_path / "missing")
    with pytest.raises(InputError, match=r"cannot load a tokenizer"):
        HFTokenizer(tmp_path)
