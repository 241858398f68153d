"""Population (threshold) attacks: one global threshold on a per-example signal.

Yeom et al. (2018), "Privacy risk in machine learning: analyzing the connection to overfitting"
(loss threshold); Song & Mittal (2021), "Systematic evaluation of privacy risks of machine learning
models" (confidence, entropy, modified entropy); Ye et al. (2022), Attack-P; the scaled logit is
LiRA's statistic (Carlini et al. 2022) used without reference models.

The score of example ``x`` is ``sign * mean_a s(f(x_a), y)`` -- the signal of the target's output,
averaged over the ``A`` queries, signed so that higher means "more likely member"
(:data:`miaudit.signals.SIGNALS`). It is threshold-free: sweeping the threshold is the ROC's job, and
calibrating it to a target FPR (e.g. the alpha-quantile of the signal on population data) picks one
point of that same ROC. Needs nothing but the target's outputs; never reads ``is_member``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .. import signals
from ._base import Attack
from ._features import check_target

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = [
    "PopulationAttack",
    "LossAttack",
    "ConfidenceAttack",
    "EntropyAttack",
    "ModifiedEntropyAttack",
    "ScaledLogitAttack",
]


class PopulationAttack(Attack):
    """Global-threshold attack on the signal named by the class attribute ``signal``.

    Subclasses only set ``name``/``signal``/``description`` (see :func:`_population_attack`).
    """

    signal: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()

    def score(self, bundle: SignalBundle) -> np.ndarray:
        """``sign * signal`` of the target's outputs, averaged over queries: (N,) float64."""
        check_target(bundle, self.name)
        fn, sign = signals.SIGNALS[self.signal]
        values = fn(bundle.target_logits, bundle.labels[:, None])  # (N, A)
        out: np.ndarray = sign * values.mean(axis=1)
        return out


def _population_attack(signal: str, cls_name: str, description: str) -> type[PopulationAttack]:
    """Create the population attack on ``signal`` (one class per registry name)."""
    if signal not in signals.SIGNALS:  # pragma: no cover - programming error
        raise TypeError(f"unknown signal {signal!r}")
    _, sign = signals.SIGNALS[signal]
    doc = (
        f"Population attack on the {signal.replace('_', ' ')} (score = "
        f"{'-' if sign < 0 else ''}{signal}, averaged over queries). {description}"
    )
    cls: type[PopulationAttack] = type(
        cls_name,
        (PopulationAttack,),
        {"name": signal, "signal": signal, "description": description, "__doc__": doc, "__module__": __name__},
    )
    return cls


LossAttack = _population_attack("loss", "LossAttack", "Low loss -log p_y means member (Yeom et al. 2018).")
ConfidenceAttack = _population_attack(
    "confidence", "ConfidenceAttack", "High true-class probability p_y means member (Song & Mittal 2021)."
)
EntropyAttack = _population_attack(
    "entropy", "EntropyAttack", "Low prediction entropy means member; label-free (Salem et al. 2019)."
)
ModifiedEntropyAttack = _population_attack(
    "modified_entropy", "ModifiedEntropyAttack", "Low modified entropy means member (Song & Mittal 2021)."
)
ScaledLogitAttack = _population_attack(
    "scaled_logit", "ScaledLogitAttack", "High scaled logit log(p_y / (1 - p_y)) means member (Carlini et al. 2022)."
)
