"""The attack contract.

An attack is a small class with an sklearn-like contract:

* ``__init__`` stores hyper-parameters only;
* ``fit(bundle)`` learns from the *reference* part of a :class:`~miaudit.data.SignalBundle`
  (``ref_logits``/``ref_is_member``, population data); fitted state ends in ``_``;
* ``score(bundle)`` returns one float64 score per example of the target, higher = more likely member.

Attacks never look at ``bundle.is_member`` (the evaluation ground truth), with one documented
exception: attacks whose ``requires`` contains ``"membership"`` (the trained attack models
``trained_lr``/``trained_gb``) fit on the target's own members/non-members with k-fold
cross-fitting, so that every score is out-of-fold.

Attacks are found by name through :mod:`miaudit.attacks.registry`. Imports flow one way:
``registry`` -> attack modules -> ``_base``; this module imports no attack module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["Attack", "REQUIREMENTS", "OUTPUT_KINDS"]

#: What an attack can require from a bundle.
REQUIREMENTS = frozenset({"reference", "membership", "population"})
#: The kinds of outputs a bundle can hold (:attr:`miaudit.data.SignalBundle.outputs_kind`).
OUTPUT_KINDS = frozenset({"logits", "scores", "labels"})


class Attack(ABC):
    """Base class of all attacks. Subclasses set ``name`` and ``requires``."""

    name: ClassVar[str] = ""
    #: Subset of {"reference", "membership", "population"}.
    requires: ClassVar[frozenset[str]] = frozenset()
    #: One-line description shown in reports and ``--help``.
    description: ClassVar[str] = ""
    #: Whether the attack needs the true labels (a bundle without labels skips it).
    needs_labels: ClassVar[bool] = True
    #: The output kinds it understands: ``"logits"`` (logits or probabilities, whose softmax is the model's
    #: probability vector), ``"scores"`` (raw per-class scores used as given) and/or ``"labels"`` (predicted
    #: classes only: the label-only attacks of :mod:`miaudit.attacks.label_only`).
    output_kinds: ClassVar[frozenset[str]] = frozenset({"logits"})
    #: The scores.csv column of its scores, when ``name`` alone would misname them (``neg_loss``: the loss
    #: attack's score is minus the loss); "" means ``name``.
    score_column: ClassVar[str] = ""

    def fit(self, bundle: SignalBundle) -> Attack:
        """Learn from the reference part of ``bundle``. Default: nothing to learn."""
        return self

    @abstractmethod
    def score(self, bundle: SignalBundle) -> np.ndarray:
        """One score per example (shape ``(N,)``, float64), higher = more likely member."""

    def fit_score(self, bundle: SignalBundle) -> np.ndarray:
        return self.fit(bundle).score(bundle)

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
