"""Causal language-model recipe: train a GPT-2-shaped model from scratch or fine-tune a local checkpoint
(full, or LoRA via peft), and query it for the sequence-level statistics the LM attacks need.

Optional extras: ``llm`` (transformers, tokenizers, torch), ``lora`` (peft). Config shape (``[model]``)::

    kind = "causal_lm"
    init = "scratch"              # or a local checkpoint folder (AutoModelForCausalLM.from_pretrained)
    config = { n_layer = 2, n_head = 2, n_embd = 128, n_positions = 128 }   # GPT2Config keys (scratch)
    tokenizer = "bytes"           # or a local tokenizer folder
    epochs = 20
    learning_rate = 1e-3
    batch_size = 16
    lora = { r = 8, alpha = 16 }  # optional: train LoRA adapters only (fine-tuning a checkpoint)

Training (seeded: torch's generator and the batch order come from the model's seed; on CPU two runs with the
same seed give identical weights): each document is ``[bos] + tokens + [eos]`` cut into blocks of at most
``max_length`` (default: the context window) tokens; AdamW, gradient norm clipped at 1, next-token cross-entropy.

:meth:`LmRecipe.predict_logits` returns not logits but one row of sequence statistics per document
(:data:`STAT_NAMES`; shape (N, 1, F)), so the game's runner, cache and executors work unchanged: the
mean token log-probability, the token count, the same for the lower-cased text (Carlini et al. 2021), for the
text after a non-member prefix (ReCaLL, Xie et al. 2024), the DC-PDD score (Zhang et al. 2024) and Min-K% /
Min-K%++ at every k of :data:`K_GRID` (:mod:`miaudit.attacks.lm` turns them into attack scores).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .._errors import ConfigError, import_optional
from ..models.lm import (
    dc_pdd_score,
    load_tokenizer,
    min_k_pp_score,
    min_k_score,
    resolve_device,
    resolve_dtype,
    token_scores,
)

__all__ = ["CanarySet", "K_GRID", "LmRecipe", "STAT_NAMES", "lm_statistics", "make_canaries", "stat_index",
           "token_frequencies"]

#: The k (fraction of tokens) at which Min-K% and Min-K%++ are kept.
K_GRID: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Columns of :meth:`LmRecipe.predict_logits` (query axis of length 1).
STAT_NAMES: tuple[str, ...] = (
    "logp_mean", "n_tokens", "lower_logp_mean", "recall_logp_mean", "dc_pdd",
    *(f"min_k@{k:g}" for k in K_GRID), *(f"min_k_pp@{k:g}" for k in K_GRID),
)

_KEYS = ("init", "config", "tokenizer", "epochs", "learning_rate", "batch_size", "max_length", "lora", "device",
         "dtype", "weight_decay", "eval_batch_size", "stride", "dc_pdd_max", "canaries")
_CANARY_KEYS = ("repetitions", "per_repetition", "candidates", "template", "seed")
DEFAULT_CANARY_TEMPLATE = "the access code is {secret}"


def stat_index(name: str) -> int:
    """Column of ``name`` in :data:`STAT_NAMES`."""
    return STAT_NAMES.index(name)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class LmRecipe:
    """Train and query a causal LM (see the module docstring). ``prefix``: non-member texts put before every
    document for ReCaLL (set by the audit from documents it holds out of the pool)."""

    kind = "causal_lm"
    n_queries = 1

    def __init__(self, *, init: str = "scratch", config: Mapping[str, Any] | None = None, tokenizer: str = "bytes",
                 epochs: int = 1, learning_rate: float = 1e-3, batch_size: int = 16, max_length: int | None = None,
                 lora: Mapping[str, Any] | None = None, device: str = "cpu", dtype: str = "float32",
                 weight_decay: float = 0.0, eval_batch_size: int = 16, stride: int | None = None,
                 dc_pdd_max: float = 1.0, canaries: Mapping[str, Any] | None = None,
                 prefix: Sequence[str] = (), lowercase: bool = True) -> None:
        problems = []
        if canaries is not None:
            problems += _check_canaries(canaries)
        if not isinstance(init, str) or not init:
            problems.append(f"[model] init: expected \"scratch\" or a local checkpoint folder, got {init!r}")
        if config is not None and not isinstance(config, Mapping):
            problems.append(f"[model] config: expected a table of GPT2Config keys such as {{ n_layer = 2 }}, got {config!r}")
        if init != "scratch" and config:
            problems.append("[model] config: only for init = \"scratch\"; a checkpoint brings its own config")
        if not isinstance(tokenizer, str) or not tokenizer:
            problems.append(f"[model] tokenizer: expected \"bytes\" or a local tokenizer folder, got {tokenizer!r}")
        for key, v in (("epochs", epochs), ("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if not _is_int(v) or v < 1:
                problems.append(f"[model] {key}: expected an integer >= 1, got {v!r}")
        for key, w in (("max_length", max_length), ("stride", stride)):
            if w is not None and (not _is_int(w) or w < 2):
                problems.append(f"[model] {key}: expected an integer >= 2, got {w!r}")
        if not _num(learning_rate) or not learning_rate > 0:
            problems.append(f"[model] learning_rate: expected a number > 0, got {learning_rate!r}")
        if not _num(weight_decay) or weight_decay < 0:
            problems.append(f"[model] weight_decay: expected a number >= 0, got {weight_decay!r}")
        if not _num(dc_pdd_max) or not dc_pdd_max > 0:
            problems.append(f"[model] dc_pdd_max: expected a number > 0, got {dc_pdd_max!r}")
        if device not in ("auto", "cpu") and not (isinstance(device, str) and device.split(":")[0] == "cuda"):
            problems.append(f"[model] device: expected \"auto\", \"cpu\" or \"cuda\", got {device!r}")
        if dtype not in ("float32", "bfloat16"):
            problems.append(f"[model] dtype: expected \"float32\" or \"bfloat16\", got {dtype!r}")
        if lora is not None:
            if not isinstance(lora, Mapping) or set(lora) - {"r", "alpha", "dropout", "target_modules"}:
                problems.append(f"[model] lora: expected a table with r, alpha, dropout, target_modules, got {lora!r}")
            elif init == "scratch":
                problems.append("[model] lora: LoRA fine-tunes a checkpoint; set init to a local checkpoint folder")
        if problems:
            raise ConfigError("; ".join(problems))
        self.init = init
        self.config = dict(config or {})
        self.tokenizer = tokenizer
        self.epochs = int(epochs)
        self.learning_rate = float(learning_rate)
        self.batch_size = int(batch_size)
        self.max_length = max_length
        self.lora = None if lora is None else dict(lora)
        self.device = device
        self.dtype = dtype
        self.weight_decay = float(weight_decay)
        self.eval_batch_size = int(eval_batch_size)
        self.stride = stride
        self.dc_pdd_max = float(dc_pdd_max)
        self.prefix = [str(p) for p in prefix]
        self.lowercase = bool(lowercase)
        self.canaries: dict[str, Any] | None = None if canaries is None else {
            "repetitions": [int(r) for r in canaries.get("repetitions", [1, 4, 16])],
            "per_repetition": int(canaries.get("per_repetition", 4)),
            "candidates": int(canaries.get("candidates", 200)),
            "template": str(canaries.get("template", DEFAULT_CANARY_TEMPLATE)),
            "seed": int(canaries.get("seed", 0)),
        }
        self.n_classes = len(STAT_NAMES)
        self._tok: Any = None

    # ------------------------------------------------------------------ protocol
    def spec(self) -> dict[str, Any]:
        return {"kind": "causal_lm", "init": self.init, "config": dict(self.config), "tokenizer": self.tokenizer,
                "epochs": self.epochs, "learning_rate": self.learning_rate, "batch_size": self.batch_size,
                "max_length": self.max_length, "lora": self.lora, "device": self.device, "dtype": self.dtype,
                "weight_decay": self.weight_decay, "eval_batch_size": self.eval_batch_size, "stride": self.stride,
                "dc_pdd_max": self.dc_pdd_max, "canaries": self.canaries, "prefix": list(self.prefix),
                "lowercase": self.lowercase, "stats": list(STAT_NAMES)}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> LmRecipe:
        s = dict(spec)
        s.pop("kind", None)
        s.pop("n_classes", None)
        s.pop("stats", None)
        if "queries" in s:
            raise ConfigError("[game] queries: not available for kind = \"causal_lm\" (a document is queried once)")
        unknown = sorted(set(s) - set(_KEYS) - {"prefix", "lowercase"})
        if unknown:
            raise ConfigError(f"[model] unknown keys {', '.join(map(repr, unknown))} for kind 'causal_lm'; valid keys: "
                              f"kind, {', '.join(_KEYS)}")
        return cls(**s)

    def with_scoring(self, *, prefix: Sequence[str], lowercase: bool) -> LmRecipe:
        """The same recipe with ReCaLL's non-member prefix texts and whether the lower-cased texts are scored
        (set by the audit from the attacks it runs: each costs one more pass over the documents)."""
        return LmRecipe.from_spec({**self.spec(), "prefix": list(prefix), "lowercase": bool(lowercase)})

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_tok"] = None
        return d

    def __repr__(self) -> str:
        return f"LmRecipe(init={self.init!r}, config={self.config!r}, epochs={self.epochs})"

    @property
    def tok(self) -> Any:
        if self._tok is None:
            self._tok = load_tokenizer(self.tokenizer)
        return self._tok

    def preload_modules(self) -> list[str]:
        return ["torch", "transformers"]

    # ------------------------------------------------------------------ model
    def build(self, *, seed: int) -> Any:
        """A fresh model (scratch: random init from ``seed``; checkpoint: its weights, LoRA adapters from ``seed``)."""
        torch = import_optional("torch", "llm")
        transformers = import_optional("transformers", "llm")
        torch.manual_seed(int(seed))
        tok = self.tok
        if self.init == "scratch":
            kw = {"n_layer": 2, "n_head": 2, "n_embd": 128, "n_positions": 128, **self.config}
            try:
                cfg = transformers.GPT2Config(vocab_size=tok.vocab_size, bos_token_id=tok.bos_id,
                                              eos_token_id=tok.eos_id, pad_token_id=tok.pad_id, **kw)
                model = transformers.GPT2LMHeadModel(cfg)
            except Exception as exc:  # noqa: BLE001 - a bad config key or value is the user's
                raise ConfigError(f"[model] config: cannot build a GPT-2 model from {self.config!r} "
                                  f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None
        else:
            try:
                model = transformers.AutoModelForCausalLM.from_pretrained(self.init, local_files_only=True)
            except Exception as exc:  # noqa: BLE001
                raise ConfigError(f"[model] init: cannot load a causal LM from {self.init!r} ({type(exc).__name__}: "
                                  f"{' '.join(str(exc).split())[:160]}); save one there with model.save_pretrained"
                                  ) from None
            emb = model.get_input_embeddings().weight.shape[0]
            if emb < tok.vocab_size:
                raise ConfigError(f"[model] tokenizer: {self.tokenizer!r} has {tok.vocab_size} tokens but the checkpoint "
                                  f"{self.init!r} embeds {emb}; use the checkpoint's own tokenizer folder")
            if self.lora is not None:
                peft = import_optional("peft", "lora")
                lcfg = peft.LoraConfig(r=int(self.lora.get("r", 8)), lora_alpha=int(self.lora.get("alpha", 16)),
                                       lora_dropout=float(self.lora.get("dropout", 0.0)),
                                       target_modules=self.lora.get("target_modules"), task_type="CAUSAL_LM")
                model = peft.get_peft_model(model, lcfg)
        return model.to(device=resolve_device(self.device), dtype=resolve_dtype(self.dtype))

    def window(self, model: Any) -> int:
        from ..models.lm import context_window

        return context_window(getattr(model, "base_model", model) if self.lora else model)

    def _blocks(self, texts: Sequence[str], length: int) -> list[list[int]]:
        tok = self.tok
        out: list[list[int]] = []
        for t in texts:
            ids = ([tok.bos_id] if tok.bos_id is not None else []) + tok.encode(str(t))
            ids += [tok.eos_id] if tok.eos_id is not None else []
            for s in range(0, max(1, len(ids) - 1), length):
                block = ids[s:s + length]
                if len(block) >= 2:
                    out.append(block)
        return out

    def canary_set(self) -> CanarySet | None:
        """The canaries of this recipe (None without ``canaries``), drawn from their own seed."""
        c = self.canaries
        if c is None:
            return None
        return make_canaries(repetitions=c["repetitions"], per_repetition=c["per_repetition"],
                             candidates=c["candidates"], template=c["template"], seed=c["seed"])

    def train(self, X: Any, y: np.ndarray, *, seed: int) -> Any:
        torch = import_optional("torch", "llm")
        texts = [str(t) for t in np.asarray(X, dtype=object).reshape(-1)]
        cs = self.canary_set()
        if cs is not None:  # every model of the game trains on the same inserted canaries
            texts += cs.inserted_texts()
        model = self.build(seed=seed)
        device = next(model.parameters()).device
        length = int(self.max_length or self.window(model))
        blocks = self._blocks(texts, length)
        rng = np.random.default_rng(int(seed))
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=self.weight_decay)
        pad = int(self.tok.pad_id)
        model.train()
        for _ in range(self.epochs):
            order = rng.permutation(len(blocks))
            for b in range(0, len(order), self.batch_size):
                batch = [blocks[i] for i in order[b:b + self.batch_size]]
                L = max(len(x) for x in batch)
                inp = torch.full((len(batch), L), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), L), dtype=torch.long)
                for r, x in enumerate(batch):
                    inp[r, :len(x)] = torch.tensor(x, dtype=torch.long)
                    mask[r, :len(x)] = 1
                labels = inp.masked_fill(mask == 0, -100)
                out = model(input_ids=inp.to(device), attention_mask=mask.to(device), labels=labels.to(device))
                opt.zero_grad(set_to_none=True)
                out.loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
        model.eval()
        return model

    def predict_logits(self, model: Any, X: Any) -> np.ndarray:
        """Sequence statistics (N, 1, len(STAT_NAMES)) of ``model`` on the documents ``X`` (not logits; see
        the module docstring). DC-PDD's token frequencies are counted over ``X`` itself (the whole pool, the
        same for every model and independent of who is a member)."""
        texts = [str(t) for t in np.asarray(X, dtype=object).reshape(-1)]
        device = str(next(model.parameters()).device)
        W = self.window(model)
        kw: dict[str, Any] = {"batch_size": self.eval_batch_size, "device": device, "window": W,
                              "stride": self.stride}
        return lm_statistics(
            token_scores(model, self.tok, texts, **kw),
            lower=token_scores(model, self.tok, [t.lower() for t in texts], **kw) if self.lowercase else None,
            recall=(token_scores(model, self.tok, texts, prefix=self.prefix_ids(W), **kw) if self.prefix else None),
            frequencies=token_frequencies([self.tok.encode(t) for t in texts], self.tok.vocab_size),
            dc_pdd_max=self.dc_pdd_max,
        )[:, None, :]

    def prefix_ids(self, window: int) -> list[int]:
        """ReCaLL's prefix: the prefix texts' tokens, joined by blank lines, the last ``window // 2`` of them
        (the model can only see that far back)."""
        ids: list[int] = []
        for p in self.prefix:
            ids += self.tok.encode(p + "\n\n")
        return ids[-(window // 2):]


def token_frequencies(docs: Sequence[Sequence[int]], vocab_size: int) -> np.ndarray:
    """Laplace-smoothed token frequencies ``(count + 1) / (total + V)`` over ``docs`` (DC-PDD's reference
    distribution, Zhang et al. 2024, Sec. 3.2)."""
    counts = np.zeros(int(vocab_size), dtype=np.float64)
    for d in docs:
        np.add.at(counts, np.asarray(d, dtype=np.int64), 1.0)
    out: np.ndarray = (counts + 1.0) / (counts.sum() + vocab_size)
    return out


def lm_statistics(scores: Sequence[Any], *, lower: Sequence[Any] | None = None, recall: Sequence[Any] | None = None,
                  frequencies: np.ndarray | None = None, dc_pdd_max: float = 1.0) -> np.ndarray:
    """The :data:`STAT_NAMES` row of each document (N, F) float64 from its :class:`~miaudit.models.lm.TokenScores`
    (and those of its lower-cased text and of the text after ReCaLL's prefix); NaN where not computed."""
    out = np.full((len(scores), len(STAT_NAMES)), np.nan)
    for i, s in enumerate(scores):
        out[i, 0] = float(np.mean(s.logp))
        out[i, 1] = float(s.n_tokens)
        if lower is not None:
            out[i, 2] = float(np.mean(lower[i].logp))
        if recall is not None:
            out[i, 3] = float(np.mean(recall[i].logp))
        if frequencies is not None and np.all(s.token_ids >= 0):
            out[i, 4] = dc_pdd_score(s.logp, s.token_ids, frequencies, max_value=dc_pdd_max)
        for j, k in enumerate(K_GRID):
            out[i, 5 + j] = min_k_score(s.logp, k=k)
            if np.all(np.isfinite(s.mu)) and np.all(np.isfinite(s.var)):
                out[i, 5 + len(K_GRID) + j] = min_k_pp_score(s.logp, s.mu, s.var, k=k)
    return out


# ------------------------------------------------------------------------------------------ canaries


def _check_canaries(c: Any) -> list[str]:
    if not isinstance(c, Mapping):
        return [f"[model] canaries: expected a table such as {{ repetitions = [1, 4, 16] }}, got {c!r}"]
    out = []
    unknown = sorted(set(c) - set(_CANARY_KEYS))
    if unknown:
        out.append(f"[model] canaries: unknown keys {unknown}; valid keys: {', '.join(_CANARY_KEYS)}")
    reps = c.get("repetitions", [1, 4, 16])
    if not isinstance(reps, list) or not reps or not all(_is_int(r) and r >= 1 for r in reps):
        out.append(f"[model] canaries.repetitions: expected a list of integers >= 1, got {reps!r}")
    for key, low in (("per_repetition", 1), ("candidates", 10), ("seed", 0)):
        v = c.get(key, low)
        if not _is_int(v) or v < low:
            out.append(f"[model] canaries.{key}: expected an integer >= {low}, got {v!r}")
    t = c.get("template", DEFAULT_CANARY_TEMPLATE)
    if not isinstance(t, str) or t.count("{secret}") != 1:
        out.append(f"[model] canaries.template: expected a string with one {{secret}}, got {t!r}")
    return out


class CanarySet:
    """Canaries (Carlini et al. 2019, "The Secret Sharer", Sec. 3-4): ``template`` with a random secret
    ``dddd-dddd`` (the secret space R has 10^8 elements). ``texts`` (n_canaries, 1 + candidates): column 0 the
    inserted secret, the rest secrets drawn uniformly from R (not inserted, the true one excluded);
    ``repetitions`` (n_canaries,) how many times each is inserted into the training data."""

    SPACE = 10**8

    def __init__(self, texts: np.ndarray, repetitions: np.ndarray) -> None:
        self.texts = texts
        self.repetitions = repetitions

    @property
    def n_canaries(self) -> int:
        return int(self.texts.shape[0])

    def inserted_texts(self) -> list[str]:
        return [str(t) for t, r in zip(self.texts[:, 0], self.repetitions) for _ in range(int(r))]

    def all_texts(self) -> np.ndarray:
        return self.texts.reshape(-1)


def _secret(v: int) -> str:
    s = f"{int(v):08d}"
    return f"{s[:4]}-{s[4:]}"


def make_canaries(*, repetitions: Sequence[int] = (1, 4, 16), per_repetition: int = 4, candidates: int = 200,
                  template: str = DEFAULT_CANARY_TEMPLATE, seed: int = 0) -> CanarySet:
    """Draw ``per_repetition`` canaries for each repetition count, each with ``candidates`` alternatives."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xCA7A]))
    reps = np.repeat(np.asarray(list(repetitions), dtype=np.int64), int(per_repetition))
    secrets = rng.choice(CanarySet.SPACE, size=reps.shape[0], replace=False)
    rows = []
    for s in secrets:
        drawn = rng.choice(CanarySet.SPACE, size=int(candidates) + 8, replace=False)
        alt = [int(a) for a in drawn if a != s][: int(candidates)]
        rows.append([template.replace("{secret}", _secret(v)) for v in [int(s), *alt]])
    texts = np.empty((len(rows), int(candidates) + 1), dtype=object)
    texts[:] = rows
    return CanarySet(texts, reps)
