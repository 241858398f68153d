"""Trained attack models, cross-fitted on the target's own members and non-members.

Shokri et al. (2017) train the attack classifier on shadow models' outputs; Salem et al. (2019,
"ML-Leaks", adversary 1) show that a classifier over the sorted output vector works as well, and
the simplest audit form -- the one most tutorials teach -- trains it on part of the target's own
members/non-members and evaluates it on the rest. Features: :func:`._features.attack_features` (with
labels the true-label features too; for raw scores the score vector as given, unsorted and sorted).

**Use of ``is_member``.** These are the only attacks that read ``bundle.is_member`` (their
``requires`` contains ``"membership"``). They never score an example with a model fitted on it:
stratified k-fold cross-fitting (``n_folds`` folds, shuffled with ``seed``) fits one classifier per
fold on the other folds and scores the held-out fold, so *every* example gets an out-of-fold score
and the ROC uses all ``N`` examples.

**Pooling folds.** Out-of-fold scores come from ``n_folds`` different classifiers, whose raw outputs
need not share a scale. The score is each fold model's estimate of ``log P(member | x) / P(non-member | x)``
(``decision_function`` of a probabilistic classifier: the log-odds behind ``predict_proba``, without its
rounding to 1.0). Both classifiers are fitted by minimising log-loss, so every fold model estimates the
same calibrated quantity (approximately: a fold model fitted on less data is noisier, and boosting is
calibrated only as far as its early stopping allows), which is what makes pooling the folds in one ROC
sound. Every fold sees the same member fraction (stratification), so the priors behind the log-odds
agree as well.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._errors import InputError
from .._seeds import check_seed
from ._base import Attack
from ._features import attack_features, check_target

if TYPE_CHECKING:
    from sklearn.base import ClassifierMixin

    from ..data import SignalBundle

# scikit-learn is imported inside the functions that use it: importing it (and through it scipy.stats and
# pandas) costs about a second, which every audit that runs no trained attack would pay at start-up.

__all__ = ["TrainedAttack", "TrainedLR", "TrainedGB", "make_classifier", "fit_classifier", "CLASSIFIERS"]

#: Classifier names accepted by the trained and shadow-model attacks.
CLASSIFIERS = ("lr", "gb")


def make_classifier(kind: str, *, seed: int = 0) -> ClassifierMixin:
    """The attack classifier ``kind``: ``"lr"`` (standardised logistic regression) or ``"gb"``.

    ``"gb"`` is scikit-learn's ``HistGradientBoostingClassifier`` (log-loss, at most 100 iterations of
    15-leaf trees; :func:`fit_classifier` turns on early stopping on a seeded, stratified 10% validation
    split when each class has at least 50 rows).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "lr":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    if kind == "gb":
        return HistGradientBoostingClassifier(
            max_iter=100, learning_rate=0.1, max_leaf_nodes=15, min_samples_leaf=20,
            early_stopping=False, validation_fraction=0.1, n_iter_no_change=10, random_state=seed,
        )
    raise InputError(f"classifier: expected one of {list(CLASSIFIERS)}, got {kind!r}; use classifier='lr' or 'gb'")


def fit_classifier(base: ClassifierMixin, x: np.ndarray, y: np.ndarray) -> Any:
    """Fit a clone of ``base`` on ``(x, y)``.

    Boosting uses early stopping (seeded stratified 10% validation split) when each class has >= 50 rows.
    """
    from sklearn.base import clone
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = clone(base)
    if isinstance(model, HistGradientBoostingClassifier):
        n_pos = int(np.count_nonzero(y))
        model.set_params(early_stopping=min(n_pos, len(y) - n_pos) >= 50)
    return model.fit(x, y)


def log_odds(model: Any, features: np.ndarray) -> np.ndarray:
    """Fitted binary classifier's log-odds of class ``True`` (float64, finite)."""
    if list(model.classes_) != [False, True]:  # pragma: no cover - guarded by the callers
        raise RuntimeError(f"attack classifier classes {model.classes_!r}")
    return np.asarray(model.decision_function(features), dtype=np.float64).reshape(-1)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}; e.g. {name}={max(minimum, 5)}")
    return int(value)


def check_top_k(top_k: Any) -> int | None:
    return None if top_k is None else check_positive_int(top_k, "top_k")


class TrainedAttack(Attack):
    """Cross-fitted attack classifier over :func:`attack_features` of the target's outputs.

    Parameters
    ----------
    n_folds : int, default 5
        Folds of the stratified cross-fitting (>= 2); each class of ``is_member`` needs that many examples.
    seed : int, default 0
        Seeds the fold split and the classifier.
    top_k : int or None, default 10
        Sorted probabilities kept as features (None: all classes).

    Attributes
    ----------
    scores_ : ndarray (N,)
        Out-of-fold scores of the last fitted bundle.
    fold_ : ndarray (N,) int
        Fold of each example (its score comes from the model fitted on the other folds).
    models_ : list
        The ``n_folds`` fitted classifiers.
    """

    classifier: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset({"membership"})
    #: Label-free without labels (the sorted output vector, and the entropy of probabilities); raw scores are
    #: read as given, unsorted and sorted (:func:`._features.attack_features`).
    needs_labels: ClassVar[bool] = False
    output_kinds: ClassVar[frozenset[str]] = frozenset({"logits", "scores"})

    def __init__(self, *, n_folds: int = 5, seed: int = 0, top_k: int | None = 10) -> None:
        self.n_folds = check_positive_int(n_folds, "n_folds", 2)
        self.seed = check_seed(seed)
        self.top_k = check_top_k(top_k)

    def fit(self, bundle: SignalBundle) -> TrainedAttack:
        """Cross-fit on ``bundle`` (reads ``is_member``) and keep the out-of-fold scores."""
        from sklearn.model_selection import StratifiedKFold

        check_target(bundle, self.name, labels=False, kinds=self.output_kinds)
        is_member = self._membership(bundle)
        x = attack_features(bundle.target_logits, bundle.labels, top_k=self.top_k, kind=bundle.outputs_kind)
        folds = StratifiedKFold(n_splits=self.n_folds, shuffle=True, random_state=self.seed)
        scores = np.empty(len(is_member), dtype=np.float64)
        fold = np.empty(len(is_member), dtype=np.int64)
        models = []
        base = make_classifier(self.classifier, seed=self.seed)
        for i, (train, test) in enumerate(folds.split(x, is_member)):
            model = fit_classifier(base, x[train], is_member[train])
            scores[test] = log_odds(model, x[test])
            fold[test] = i
            models.append(model)
        self.scores_, self.fold_, self.models_ = scores, fold, models
        self._fitted_on = weakref.ref(bundle)
        return self

    def score(self, bundle: SignalBundle) -> np.ndarray:
        """Out-of-fold scores (N,) float64; cross-fits ``bundle`` first unless it was the one fitted."""
        ref = getattr(self, "_fitted_on", None)
        if ref is None or ref() is not bundle:
            self.fit(bundle)
        return self.scores_.copy()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        state.pop("_fitted_on", None)  # weak references do not pickle
        return state

    def _membership(self, bundle: SignalBundle) -> np.ndarray:
        if bundle.is_member is None:
            raise InputError(
                f"{self.name}: needs is_member (the target's membership) for cross-fitting; "
                "add it to the bundle, or run attacks that do not require membership"
            )
        is_member = np.asarray(bundle.is_member).astype(bool).reshape(-1)
        if is_member.shape[0] != bundle.n_examples:
            raise InputError(
                f"{self.name}: is_member has {is_member.shape[0]} entries, labels {bundle.n_examples}; "
                "give one membership flag per example"
            )
        reason = self.unmet(bundle)
        if reason is not None:
            raise InputError(f"{self.name}: {reason}")
        return is_member

    def unmet(self, bundle: SignalBundle) -> str | None:
        """Why this attack cannot run on ``bundle`` (too few members or non-members to cross-fit), or None.

        The audit skips an attack it was not asked for by name with this reason (and fails on one it was)."""
        if bundle.is_member is None:
            return None  # the registry's requirement check says it
        is_member = np.asarray(bundle.is_member).astype(bool).reshape(-1)
        n_in = int(is_member.sum())
        n_out = is_member.size - n_in
        if min(n_in, n_out) >= self.n_folds:
            return None
        return (f"cross-fitting with n_folds={self.n_folds} needs at least {self.n_folds} members and "
                f"{self.n_folds} non-members, got {n_in} and {n_out}; add examples, or lower n_folds "
                f"([attacks.params] {self.name} = {{ n_folds = 2 }} in an audit config, "
                f"params={{'{self.name}': {{'n_folds': 2}}}} in the Python API)")


class TrainedLR(TrainedAttack):
    """Cross-fitted logistic regression on standardised output features (Salem et al. 2019)."""

    name = "trained_lr"
    classifier = "lr"
    description = ("Logistic regression over the sorted output vector and true-label features (raw scores: the "
                   "vector, unsorted and sorted), 5-fold cross-fitted.")


class TrainedGB(TrainedAttack):
    """Cross-fitted histogram gradient boosting on output features (Salem et al. 2019)."""

    name = "trained_gb"
    classifier = "gb"
    description = ("Gradient boosting over the sorted output vector and true-label features (raw scores: the "
                   "vector, unsorted and sorted), 5-fold cross-fitted.")
