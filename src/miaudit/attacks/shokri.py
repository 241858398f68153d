"""Shadow-model attack of Shokri et al. (2017), "Membership inference attacks against machine
learning models" (IEEE S&P).

The reference (shadow) models play the attacker's shadow models: each reference model ``k`` is
queried on all ``N`` examples, and its outputs -- turned into :func:`._features.attack_features`
(sorted probabilities and true-label features, averaged over queries) -- are labelled IN/OUT by
``ref_is_member[k]``. An attack classifier fitted on these ``K * N`` rows is then applied to the target's
outputs. Shokri et al. fit one attack model per class; ``per_class=True`` does that, falling back to
the global classifier for classes with fewer than ``min_rows_per_class`` IN or OUT rows.

The target's membership (``is_member``) is never read. To keep ``K * N`` tractable, at most
``max_train`` rows (a seeded uniform sample of the (model, example) pairs) are used for fitting, and
features are computed for those rows only.

The score is the attack classifier's log-odds of "member" (the log of ``predict_proba``'s odds,
without its rounding to 1.0); per-class classifiers are all fitted by log-loss, so their calibrated
log-odds share one scale and can be ranked together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._errors import InputError
from .._seeds import check_seed
from ._base import Attack
from ._features import attack_features, check_reference, check_target
from .trained import CLASSIFIERS, check_positive_int, check_top_k, fit_classifier, log_odds, make_classifier

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["ShokriAttack"]


class ShokriAttack(Attack):
    """Attack classifier(s) trained on reference models' outputs labelled IN/OUT (Shokri et al. 2017).

    Parameters
    ----------
    classifier : {"lr", "gb"}, default "lr"
        Standardised logistic regression or histogram gradient boosting (see ``trained.make_classifier``).
    per_class : bool, default False
        One classifier per true class (Shokri et al.), with the global one as fallback.
    min_rows_per_class : int, default 50
        A class gets its own classifier only with at least this many IN and this many OUT rows.
    top_k : int or None, default 10
        Sorted probabilities kept as features (None: all classes).
    max_train : int, default 200_000
        At most this many (reference model, example) rows are used for fitting (seeded sample).
    seed : int, default 0
        Seeds the row sample and the classifiers.

    Attributes
    ----------
    model_ : the global classifier
    class_models_ : dict[int, classifier], the per-class classifiers (empty unless ``per_class``)
    n_train_ : int, rows used for fitting
    """

    name: ClassVar[str] = "shokri"
    requires: ClassVar[frozenset[str]] = frozenset({"reference"})
    description: ClassVar[str] = (
        "Shadow-model attack: a classifier trained on reference models' outputs with their IN/OUT labels."
    )

    def __init__(
        self,
        *,
        classifier: str = "lr",
        per_class: bool = False,
        min_rows_per_class: int = 50,
        top_k: int | None = 10,
        max_train: int = 200_000,
        seed: int = 0,
    ) -> None:
        if classifier not in CLASSIFIERS:
            raise InputError(
                f"classifier: expected one of {list(CLASSIFIERS)}, got {classifier!r}; use classifier='lr' or 'gb'"
            )
        if not isinstance(per_class, (bool, np.bool_)):
            raise InputError(f"per_class: expected true or false, got {per_class!r}")
        self.classifier = classifier
        self.per_class = bool(per_class)
        self.min_rows_per_class = check_positive_int(min_rows_per_class, "min_rows_per_class")
        self.top_k = check_top_k(top_k)
        self.max_train = check_positive_int(max_train, "max_train", 2)
        self.seed = check_seed(seed)

    def fit(self, bundle: SignalBundle) -> ShokriAttack:
        """Fit the attack classifier(s) on ``ref_logits`` labelled by ``ref_is_member``."""
        ref, ref_is_member = check_reference(bundle, self.name)
        k, n = ref_is_member.shape
        rows = np.arange(k * n)
        if rows.size > self.max_train:
            rng = np.random.default_rng(self.seed)
            rows = np.sort(rng.choice(rows, size=self.max_train, replace=False))
        km, nm = np.divmod(rows, n)
        y_in = ref_is_member[km, nm]
        n_in = int(y_in.sum())
        if n_in == 0 or n_in == y_in.size:
            raise InputError(
                f"{self.name}: ref_is_member must mark both IN and OUT (model, example) pairs, got "
                f"{'only IN' if n_in else 'only OUT'} among {y_in.size} rows; use a balanced membership matrix"
            )
        labels = np.asarray(bundle.labels)[nm]
        x = attack_features(ref[km, nm], labels, top_k=self.top_k)  # (M, F), gathers only the sampled rows
        base = make_classifier(self.classifier, seed=self.seed)
        self.model_ = fit_classifier(base, x, y_in)
        self.class_models_: dict[int, Any] = {}
        if self.per_class:
            for c in np.unique(labels):
                sel = labels == c
                c_in = int(y_in[sel].sum())
                if min(c_in, int(sel.sum()) - c_in) >= self.min_rows_per_class:
                    self.class_models_[int(c)] = fit_classifier(base, x[sel], y_in[sel])
        self.n_train_ = int(rows.size)
        return self

    def score(self, bundle: SignalBundle) -> np.ndarray:
        """Log-odds of membership of the target's outputs under the fitted classifier(s): (N,) float64."""
        if not hasattr(self, "model_"):
            raise InputError(f"{self.name}: call fit(bundle) before score(bundle), or use fit_score(bundle)")
        check_target(bundle, self.name)
        x = attack_features(bundle.target_logits, bundle.labels, top_k=self.top_k)
        expected = self.model_.n_features_in_
        if x.shape[1] != expected:
            raise InputError(
                f"{self.name}: the bundle gives {x.shape[1]} features but the attack was fitted with {expected}; "
                "score a bundle with the same number of classes as the one fitted"
            )
        scores = log_odds(self.model_, x)
        labels = np.asarray(bundle.labels)
        for c, model in self.class_models_.items():
            sel = labels == c
            if sel.any():
                scores[sel] = log_odds(model, x[sel])
        return scores
