"""Causal language models -> per-token log-probabilities (optional extra ``llm``: transformers, tokenizers).

:func:`token_scores` runs a Hugging Face causal LM (``AutoModelForCausalLM`` or any ``torch.nn.Module``
``model(input_ids=..., attention_mask=...)`` returning ``.logits``) on documents and returns, per document,
the log-probability of every token given the tokens before it, and the mean ``mu_t = E_{z~p}[log p(z)]``
and variance ``E_{z~p}[(log p(z))^2] - mu_t^2`` of the log-probability under the model's next-token
distribution at each position (what Min-K%++ needs, Zhang et al. 2024, Sec. 3).

* Documents are ``[bos] + tokens`` (the byte tokenizer has a bos id; a tokenizer without one leaves the first
  token unscored). Batches are right-padded with an attention mask, so a document's scores do not depend on
  what it is batched with (tested against one-by-one).
* A document longer than the context window is scored by striding (windows of ``window`` tokens starting
  every ``stride`` tokens; each token is scored once, in the first window that predicts it with the most context
  of that window's tokens), the standard sliding-window evaluation of perplexity.
* ``prefix``: token ids put before every document (ReCaLL's non-member prefix); only the document's tokens
  are returned.

Any other model: :class:`CallableLM` wraps ``fn(text) -> log-probs`` (or ``(logp, mu, var)``), e.g. a model behind
an API; then ``mu``/``var`` may be missing (NaN) and Min-K%++ cannot run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import InputError, import_optional

__all__ = ["ByteTokenizer", "CallableLM", "HFTokenizer", "TokenScores", "context_window", "dc_pdd_score",
           "load_tokenizer", "min_k_pp_score", "min_k_score", "resolve_device", "resolve_dtype", "token_scores"]


class ByteTokenizer:
    """A byte-level tokenizer: ids 0..255 are the UTF-8 bytes, then ``bos`` (256), ``eos`` (257), ``pad`` (258)."""

    vocab_size = 259
    bos_id = 256
    eos_id = 257
    pad_id = 258

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")

    def spec(self) -> str:
        return "bytes"


class HFTokenizer:
    """A Hugging Face tokenizer loaded from a local folder (never a hub download)."""

    def __init__(self, folder: str | Path) -> None:
        transformers = import_optional("transformers", "llm")
        p = Path(folder).expanduser()
        if not p.is_dir():
            raise InputError(f"[model] tokenizer: {str(p)!r} is not a folder; pass \"bytes\" or a local tokenizer folder")
        try:
            self._tok = transformers.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - whatever transformers raises, the folder is the user's
            raise InputError(f"[model] tokenizer: cannot load a tokenizer from {str(p)!r} ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:160]}); save one there with tokenizer.save_pretrained") from None
        self.folder = str(p)
        self.vocab_size = int(len(self._tok))
        self.bos_id = self._tok.bos_token_id
        self.eos_id = self._tok.eos_token_id
        pad = self._tok.pad_token_id
        self.pad_id = int(pad if pad is not None else (self.eos_id if self.eos_id is not None else 0))

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids)))

    def spec(self) -> str:
        return self.folder


def load_tokenizer(spec: str) -> ByteTokenizer | HFTokenizer:
    """``"bytes"`` -> :class:`ByteTokenizer`; a folder path -> :class:`HFTokenizer`."""
    if spec == "bytes":
        return ByteTokenizer()
    return HFTokenizer(spec)


def resolve_device(device: str) -> str:
    """``"auto"`` (cuda if available), ``"cpu"``, ``"cuda"`` / ``"cuda:N"`` (an error if CUDA is unavailable)."""
    torch = import_optional("torch", "llm")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if isinstance(device, str) and device.split(":")[0] == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"[model] device: {device!r} was asked for but CUDA is not available on this machine; "
                             "use device = \"cpu\" or \"auto\"")
        return device
    raise InputError(f"[model] device: expected \"auto\", \"cpu\" or \"cuda\", got {device!r}")


def resolve_dtype(dtype: str) -> Any:
    torch = import_optional("torch", "llm")
    table = {"float32": torch.float32, "bfloat16": torch.bfloat16}
    if dtype not in table:
        raise InputError(f"[model] dtype: expected \"float32\" or \"bfloat16\", got {dtype!r}")
    return table[dtype]


@dataclass(frozen=True)
class TokenScores:
    """Per-token statistics of one document: ``token_ids`` (T,) the scored tokens, ``logp`` (T,) their
    log-probabilities, ``mu`` and ``var`` (T,) the mean and variance of log p under the next-token
    distribution (NaN where unknown)."""

    token_ids: np.ndarray
    logp: np.ndarray
    mu: np.ndarray
    var: np.ndarray

    @property
    def n_tokens(self) -> int:
        return int(self.logp.shape[0])


def context_window(model: Any, default: int = 1024) -> int:
    """The model's maximum sequence length (``n_positions`` / ``max_position_embeddings``)."""
    cfg = getattr(model, "config", None)
    for key in ("n_positions", "max_position_embeddings", "n_ctx"):
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 1:
            return v
    return default


def _segments(n: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows ``(start, end, first_scored)`` over a sequence of ``n`` ids: the window covers ``[start, end)``
    and scores the ids at positions ``first_scored..end-1`` (each id from position 1 on exactly once)."""
    out: list[tuple[int, int, int]] = []
    scored_to = 1  # the next position to score
    start = 0
    while scored_to < n:
        end = min(start + window, n)
        if end > scored_to:
            out.append((start, end, max(scored_to, start + 1)))
            scored_to = end
        if end == n:
            break
        start += stride
    return out


class CallableLM:
    """Any model as a function of one text: ``fn(text)`` returns per-token log-probabilities (T,), or a tuple
    ``(logp, mu, var)`` (or ``(token_ids, logp, mu, var)``) of arrays (T,)."""

    def __init__(self, fn: Callable[[str], Any]) -> None:
        if not callable(fn):
            raise InputError(f"CallableLM: expected a function text -> log-probabilities, got {type(fn).__name__}")
        self.fn = fn

    def score(self, text: str) -> TokenScores:
        out = self.fn(text)
        if isinstance(out, tuple):
            arrays = [np.asarray(a, dtype=np.float64).reshape(-1) for a in out]
            if len(arrays) == 3:
                logp, mu, var = arrays
                ids = np.full(logp.shape, -1, dtype=np.int64)
            elif len(arrays) == 4:
                ids, logp, mu, var = arrays[0].astype(np.int64), arrays[1], arrays[2], arrays[3]
            else:
                raise InputError(f"CallableLM: expected logp or (logp, mu, var), got a tuple of {len(arrays)}")
        else:
            logp = np.asarray(out, dtype=np.float64).reshape(-1)
            mu = var = np.full(logp.shape, np.nan)
            ids = np.full(logp.shape, -1, dtype=np.int64)
        if not (logp.shape == mu.shape == var.shape == ids.shape):
            raise InputError("CallableLM: logp, mu and var must have the same length")
        if logp.size == 0 or not np.all(np.isfinite(logp)) or np.any(logp > 1e-6):
            raise InputError(f"CallableLM: expected finite log-probabilities <= 0 for {text[:40]!r}, got "
                             f"{logp[:5].tolist()}...")
        return TokenScores(token_ids=ids, logp=logp, mu=mu, var=var)


def token_scores(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    *,
    batch_size: int = 8,
    device: str = "cpu",
    window: int | None = None,
    stride: int | None = None,
    prefix: Sequence[int] = (),
) -> list[TokenScores]:
    """Per-token log-probabilities (and ``mu``, ``var``) of ``model`` on each of ``texts``.

    ``model`` is a torch causal LM or a :class:`CallableLM`; ``window`` defaults to the model's context
    length, ``stride`` to half of it. ``prefix`` (token ids) is prepended to every document and not scored.
    """
    if isinstance(model, CallableLM):
        return [model.score(t) for t in texts]
    torch = import_optional("torch", "llm")
    if batch_size < 1:
        raise InputError(f"batch_size: expected an integer >= 1, got {batch_size}")
    W = int(window or context_window(model))
    S = int(stride or max(1, W // 2))
    if W < 2 or not 1 <= S <= W - 1:
        raise InputError(f"window/stride: expected window >= 2 and 1 <= stride < window, got {W} and {S}")
    bos = getattr(tokenizer, "bos_id", None)
    pad = int(getattr(tokenizer, "pad_id", 0) or 0)
    docs: list[list[int]] = []
    starts: list[int] = []  # position of the document's first token in its id sequence
    for t in texts:
        head = ([int(bos)] if bos is not None else []) + [int(i) for i in prefix]
        ids = tokenizer.encode(t)
        if not ids:
            raise InputError(f"document {t[:40]!r}: no tokens; remove empty documents")
        docs.append(head + ids)
        starts.append(max(len(head), 1))
    # every (doc, window) segment; results written per position
    segs = [(d, s, e, f) for d, ids in enumerate(docs) for (s, e, f) in _segments(len(ids), W, S)]
    segs.sort(key=lambda x: x[2] - x[1])  # similar lengths together: less padding
    logp = [np.full(len(ids), np.nan) for ids in docs]
    mu = [np.full(len(ids), np.nan) for ids in docs]
    var = [np.full(len(ids), np.nan) for ids in docs]
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        with torch.no_grad():
            for b in range(0, len(segs), batch_size):
                chunk = segs[b:b + batch_size]
                L = max(e - s for _, s, e, _ in chunk)
                inp = torch.full((len(chunk), L), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), L), dtype=torch.long)
                for r, (d, s, e, _) in enumerate(chunk):
                    inp[r, : e - s] = torch.tensor(docs[d][s:e], dtype=torch.long)
                    mask[r, : e - s] = 1
                out = model(input_ids=inp.to(device), attention_mask=mask.to(device))
                logits = out.logits if hasattr(out, "logits") else out
                lsm = torch.log_softmax(logits.float(), dim=-1)  # (B, L, V), float32 whatever the model's dtype
                p = lsm.exp()
                m = (p * lsm).sum(-1)[:, :-1]  # row j predicts the id at j + 1
                v = ((p * lsm.square()).sum(-1)[:, :-1] - m.square()).clamp_min(0)
                nxt = inp[:, 1:].to(lsm.device)
                lp = lsm[:, :-1].gather(-1, nxt[..., None])[..., 0]
                lp_np, m_np, v_np = (a.double().cpu().numpy() for a in (lp, m, v))
                for r, (d, s, e, f) in enumerate(chunk):
                    pos = np.arange(f, e)  # positions scored in this window; predicted from row position - 1
                    rows = pos - s - 1
                    logp[d][pos] = lp_np[r, rows]
                    mu[d][pos] = m_np[r, rows]
                    var[d][pos] = v_np[r, rows]
    finally:
        if was_training:
            model.train()
    out_list = []
    for d, ids in enumerate(docs):
        a = starts[d]
        out_list.append(TokenScores(token_ids=np.asarray(ids[a:], dtype=np.int64), logp=logp[d][a:], mu=mu[d][a:],
                                    var=var[d][a:]))
    return out_list


# ------------------------------------------------------------------------------------------ sequence signals
# Pure functions of one document's per-token arrays (the attacks of miaudit.attacks.lm use them; they live
# here so that the LM recipe, one layer below the attacks, can store them per model).


def _lowest(values: np.ndarray, k: float) -> np.ndarray:
    if not 0 < k <= 1:
        raise InputError(f"k: expected a fraction of tokens in (0, 1], got {k!r}")
    v = np.sort(np.asarray(values, dtype=np.float64))
    return v[: max(1, int(np.floor(k * v.shape[0])))]


def min_k_score(logp: np.ndarray, *, k: float = 0.2) -> float:
    """Min-K% Prob (Shi et al. 2024, Sec. 3): the mean log-probability of the ``k`` fraction of tokens with the
    lowest log-probability (at least one token). Higher = more likely a member."""
    return float(np.mean(_lowest(logp, k)))


def min_k_pp_score(logp: np.ndarray, mu: np.ndarray, var: np.ndarray, *, k: float = 0.2) -> float:
    """Min-K%++ (Zhang et al. 2024, Eq. 4-5): per token ``(log p(x_t) - mu_t) / sigma_t`` with ``mu_t`` and
    ``sigma_t^2`` the mean and variance of ``log p(z)`` for ``z`` drawn from the model's next-token
    distribution, then the mean of the lowest ``k`` fraction. Higher = more likely a member."""
    z = (np.asarray(logp, dtype=np.float64) - np.asarray(mu, dtype=np.float64)) / np.sqrt(
        np.maximum(np.asarray(var, dtype=np.float64), 1e-12))
    return float(np.mean(_lowest(z, k)))


def dc_pdd_score(logp: np.ndarray, token_ids: np.ndarray, frequencies: np.ndarray, *, max_value: float = 1.0) -> float:
    """DC-PDD (Zhang et al. 2024, "Pretraining Data Detection for LLMs: A Divergence-based Calibration
    Method", Sec. 3): per token ``alpha_t = -p(x_t) * log f(x_t)`` with ``f`` the token's frequency in a
    reference corpus, clipped at ``max_value``, averaged over the first occurrence of each distinct token.
    Higher = more likely a member."""
    ids = np.asarray(token_ids, dtype=np.int64)
    _, first = np.unique(ids, return_index=True)
    first = np.sort(first)
    f = np.asarray(frequencies, dtype=np.float64)[ids[first]]
    alpha = -np.exp(np.asarray(logp, dtype=np.float64)[first]) * np.log(f)
    return float(np.mean(np.minimum(alpha, max_value)))
