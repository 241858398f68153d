"""Membership attacks on causal language models: sequence-level scores from per-document statistics.

Each attack reads the statistics the LM recipe stores per model (:data:`miaudit.training.lm_recipe.STAT_NAMES`)
and returns one score per document, higher = more likely a member. Like every attack they are small classes
with ``fit`` / ``score`` (``fit`` learns nothing for these: they are calibrated by construction), found by
name in :data:`LM_ATTACKS` (explicit, in this order):

==============  ===========================================================================================
name            score (``LL`` = mean token log-probability of the document, i.e. minus its loss)
==============  ===========================================================================================
``loss``        ``LL`` (Yeom et al. 2018)
``zlib``        ``LL / zlib(text)``: minus the ratio of log-perplexity to zlib entropy, bytes of the compressed
                UTF-8 text (Carlini et al. 2021, Sec. 5.2)
``lowercase``   ``LL(lower(text)) / LL(text)``: the ratio of the log-perplexities of the lower-cased and the
                original text (Carlini et al. 2021, Sec. 5.2)
``ref_ratio``   ``LL_target - LL_reference`` with a reference LM the user names (Carlini et al. 2021)
``min_k``       Min-K% Prob at ``k`` (Shi et al. 2024; default k = 0.2)
``min_k_pp``    Min-K%++ at ``k`` (Zhang et al. 2024; default k = 0.2)
``recall``      ``LL(text | P) / LL(text)`` with non-member prefix ``P`` (ReCaLL, Xie et al. 2024, Eq. 1):
                members lose more likelihood after a non-member prefix
``dc_pdd``      DC-PDD (Zhang et al. 2024): token probabilities calibrated by token frequencies in a reference
                corpus, first occurrences, clipped
==============  ===========================================================================================

``k`` must be one of :data:`~miaudit.training.lm_recipe.K_GRID` (the statistics are stored per model at
those k, so changing k never retrains a model). The reference-model game (LiRA, RMIA on the sequence-level
log-likelihood) runs the classifier attacks of :mod:`miaudit.attacks.registry` on it
(:func:`sequence_logits`).

:func:`blind_scores` is not an attack: a cross-fitted text classifier that never sees the model (bag of words
and character n-grams, liblinear logistic regression), the baseline every LM audit reports (Das, Zhang & Tramer 2024; Meeus et al. 2024).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._errors import InputError
from ..training.lm_recipe import K_GRID, stat_index

__all__ = ["LM_ATTACKS", "REFERENCE_GAME_ATTACKS", "LmSignals", "LmAttack", "blind_scores", "get_lm_attack",
           "lm_attack_names", "sequence_logits", "zlib_bytes"]

#: Classifier attacks that run on the sequence-level log-likelihood of K reference LMs (the reference game).
REFERENCE_GAME_ATTACKS = ("lira_online", "lira_offline", "rmia", "rmia_offline")


@dataclass(frozen=True, eq=False)
class LmSignals:
    """What the LM attacks read about one target: ``stats`` (N, F) in :data:`STAT_NAMES` order, the ``texts``
    (N,), and ``reference_stats`` (N, F) of the user's reference LM (None without one)."""

    stats: np.ndarray
    texts: np.ndarray
    reference_stats: np.ndarray | None = None

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.stats[:, stat_index(name)], dtype=np.float64)


def zlib_bytes(texts: Sequence[str] | np.ndarray) -> np.ndarray:
    """Length in bytes of each text's zlib compression (level 9) of its UTF-8 encoding."""
    return np.array([len(zlib.compress(str(t).encode("utf-8"), 9)) for t in texts], dtype=np.float64)


class LmAttack:
    """Base: ``fit`` (nothing to learn) then ``score``; :meth:`missing` says why the signals cannot be scored."""

    name = ""
    description = ""
    column = "logp_mean"

    def fit(self, signals: LmSignals) -> LmAttack:
        return self

    def missing(self, signals: LmSignals) -> str | None:
        if not np.all(np.isfinite(signals.column(self.column))):
            return f"the model's statistics lack {self.column!r}"
        return None

    def score(self, signals: LmSignals) -> np.ndarray:
        return signals.column(self.column)


class LossLm(LmAttack):
    name = "loss"
    description = "mean token log-probability (minus the loss)"


class ZlibLm(LmAttack):
    name = "zlib"
    description = "log-likelihood over zlib entropy (Carlini et al. 2021)"

    def score(self, signals: LmSignals) -> np.ndarray:
        out: np.ndarray = signals.column("logp_mean") / zlib_bytes(signals.texts)
        return out


class LowercaseLm(LmAttack):
    name = "lowercase"
    description = "log-perplexity of the lower-cased text over the original's (Carlini et al. 2021)"
    column = "lower_logp_mean"

    def score(self, signals: LmSignals) -> np.ndarray:
        out: np.ndarray = signals.column("lower_logp_mean") / np.minimum(signals.column("logp_mean"), -1e-12)
        return out


class RefRatioLm(LmAttack):
    name = "ref_ratio"
    description = "target minus reference-LM log-likelihood"

    def missing(self, signals: LmSignals) -> str | None:
        if signals.reference_stats is None:
            return ("needs a reference language model: set [attacks.params.ref_ratio] model = \"<local checkpoint "
                    "folder>\" (and tokenizer)")
        return None

    def score(self, signals: LmSignals) -> np.ndarray:
        assert signals.reference_stats is not None
        out: np.ndarray = signals.column("logp_mean") - np.asarray(signals.reference_stats[:, stat_index("logp_mean")],
                                                                    dtype=np.float64)
        return out


class _KAttack(LmAttack):
    prefix = "min_k"

    def __init__(self, k: float = 0.2) -> None:
        if not any(abs(float(k) - g) < 1e-9 for g in K_GRID):
            raise InputError(f"[attacks.params.{self.name}] k: expected one of {', '.join(f'{g:g}' for g in K_GRID)} "
                             f"(the fractions stored per model), got {k!r}")
        self.k = float(k)
        self.column = f"{self.prefix}@{self.k:g}"


class MinKLm(_KAttack):
    name = "min_k"
    description = "mean log-probability of the k% least likely tokens (Shi et al. 2024)"
    prefix = "min_k"


class MinKppLm(_KAttack):
    name = "min_k_pp"
    description = "Min-K% of tokens standardised by the next-token distribution (Zhang et al. 2024)"
    prefix = "min_k_pp"

    def missing(self, signals: LmSignals) -> str | None:
        if not np.all(np.isfinite(signals.column(self.column))):
            return "needs the mean and variance of log p over the vocabulary (a model that returns only token log-probs has none)"
        return None


class RecallLm(LmAttack):
    name = "recall"
    description = "log-likelihood after a non-member prefix over that alone (ReCaLL, Xie et al. 2024)"
    column = "recall_logp_mean"

    def missing(self, signals: LmSignals) -> str | None:
        if not np.all(np.isfinite(signals.column(self.column))):
            return "needs non-member prefixes: set [attacks.params.recall] n_prefix >= 1 (documents held out of the pool)"
        return None

    def score(self, signals: LmSignals) -> np.ndarray:
        out: np.ndarray = signals.column("recall_logp_mean") / np.minimum(signals.column("logp_mean"), -1e-12)
        return out


class DcPddLm(LmAttack):
    name = "dc_pdd"
    description = "token probabilities calibrated by corpus frequencies (DC-PDD, Zhang et al. 2024)"
    column = "dc_pdd"


#: The LM attacks by name, in report order.
LM_ATTACKS: dict[str, type[LmAttack]] = {
    "loss": LossLm, "zlib": ZlibLm, "lowercase": LowercaseLm, "ref_ratio": RefRatioLm, "min_k": MinKLm,
    "min_k_pp": MinKppLm, "recall": RecallLm, "dc_pdd": DcPddLm,
}


def lm_attack_names() -> list[str]:
    """Every attack name of an LM audit: :data:`LM_ATTACKS` then :data:`REFERENCE_GAME_ATTACKS`."""
    return [*LM_ATTACKS, *REFERENCE_GAME_ATTACKS]


def get_lm_attack(name: str, params: Mapping[str, Any] | None = None) -> LmAttack:
    """An LM attack by name with its parameters (``k`` for min_k / min_k_pp; attack-level options such as
    ref_ratio's ``model`` or recall's ``n_prefix`` are the audit's and are not passed here)."""
    if name not in LM_ATTACKS:
        raise InputError(f"unknown language-model attack {name!r}; expected one of: {', '.join(lm_attack_names())}")
    kw = dict(params or {})
    cls = LM_ATTACKS[name]
    if issubclass(cls, _KAttack):
        unknown = set(kw) - {"k"}
        if unknown:
            raise InputError(f"[attacks.params.{name}] unknown keys {sorted(unknown)}; valid: k")
        return cls(**kw)
    return cls()


def sequence_logits(stats: np.ndarray) -> np.ndarray:
    """Models' statistics (K, N, 1, F) -> two-class logits (K, N, 1, 2) ``[0, LL]`` with label 1, so that the
    classifier attacks' scaled logit ``log p_1 - log p_0`` is the sequence log-likelihood ``LL`` itself
    (LiRA's Gaussians are fitted to it) and ``p_1 = sigmoid(LL)`` (close to the geometric-mean token
    probability ``exp(LL)`` for RMIA's likelihood ratios)."""
    ll = np.asarray(stats, dtype=np.float64)[..., stat_index("logp_mean")]
    return np.stack([np.zeros_like(ll), ll], axis=-1)


def blind_scores(texts: Sequence[str] | np.ndarray, is_member: np.ndarray, *, seed: int = 0,
                 n_folds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Cross-fitted scores of a classifier that sees only the texts (never the model): TF-IDF of word 1-2-grams
    and character 2-4-grams (vocabulary and idf from all texts, no labels), logistic regression; each document is scored by the model fitted on the other
    folds (stratified, shuffled with ``seed``). Returns ``(scores, fold)``; higher = looks like a member.
    On a random split it sits at chance; when members and non-members differ in topic, time or style it
    separates them without any access to the model (Das, Zhang & Tramer 2024; Meeus et al. 2024)."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(is_member, dtype=bool)
    docs = [str(t) for t in texts]
    n_min = int(min(y.sum(), (~y).sum()))
    if len(docs) != y.shape[0] or n_min < 2:
        raise InputError(f"blind baseline: expected one membership label per text and >= 2 of each, got {len(docs)} "
                         f"texts and {int(y.sum())} members / {int((~y).sum())} non-members")
    folds = min(int(n_folds), n_min)
    scores = np.zeros(len(docs))
    fold = np.zeros(len(docs), dtype=np.int64)
    # The features use no label (vocabulary and idf over every text), so fitting them once on all texts keeps
    # the cross-fitting honest: only the classifier learns from labels, and only on the other folds.
    words = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=20000, sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, max_features=20000, sublinear_tf=True)
    X = hstack([words.fit_transform(docs), chars.fit_transform(docs)]).tocsr()
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=int(seed) % (2**32))
    for f, (tr, te) in enumerate(splitter.split(np.zeros(len(docs)), y)):
        clf = LogisticRegression(C=1.0, solver="liblinear")
        clf.fit(X[tr], y[tr])
        scores[te] = clf.decision_function(X[te])
        fold[te] = f
    return scores, fold


