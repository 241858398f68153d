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

Raw scores (a bundle with ``outputs_kind == "scores"``: per-class values used as given, such as an exported
table of unnormalised confidences) have no softmax and often no labels; three label-free statistics of the
output vector read them: its maximum (``max_score``), its spread ``max - min`` (``score_spread``) and how far
its most extreme entry lies from the typical value of its column (``score_extremity``: ``max_c |s_c -
median_c| / IQR_c``, the medians and interquartile ranges taken over all audit examples' scores, so no
membership enters). Members' outputs are more extreme (more confident) than non-members', in both directions
when a model also pushes the other classes' scores down.
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
    "ScoreAttack",
    "MaxScoreAttack",
    "ScoreSpreadAttack",
    "ScoreExtremityAttack",
]


class PopulationAttack(Attack):
    """Global-threshold attack on the signal named by the class attribute ``signal``.

    Subclasses only set ``name``/``signal``/``description`` (see :func:`_population_attack`).
    """

    signal: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()

    def score(self, bundle: SignalBundle) -> np.ndarray:
        """``sign * signal`` of the target's outputs, averaged over queries: (N,) float64."""
        check_target(bundle, self.name, labels=self.needs_labels, kinds=self.output_kinds)
        fn, sign = signals.SIGNALS[self.signal]
        labels = None if bundle.labels is None else bundle.labels[:, None]
        values = fn(bundle.target_logits, labels)  # type: ignore[arg-type]  # (N, A); label-free signals accept None
        out: np.ndarray = sign * values.mean(axis=1)
        return out


def _population_attack(
    signal: str, cls_name: str, description: str, *, needs_labels: bool = True
) -> type[PopulationAttack]:
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
        {"name": signal, "signal": signal, "description": description, "__doc__": doc, "__module__": __name__,
         "needs_labels": needs_labels, "score_column": f"neg_{signal}" if sign < 0 else ""},
    )
    return cls


LossAttack = _population_attack("loss", "LossAttack", "Low loss -log p_y means member (Yeom et al. 2018).")
ConfidenceAttack = _population_attack(
    "confidence", "ConfidenceAttack", "High true-class probability p_y means member (Song & Mittal 2021)."
)
EntropyAttack = _population_attack(
    "entropy", "EntropyAttack", "Low prediction entropy means member; label-free (Salem et al. 2019).",
    needs_labels=False,
)
ModifiedEntropyAttack = _population_attack(
    "modified_entropy", "ModifiedEntropyAttack", "Low modified entropy means member (Song & Mittal 2021)."
)
ScaledLogitAttack = _population_attack(
    "scaled_logit", "ScaledLogitAttack", "High scaled logit log(p_y / (1 - p_y)) means member (Carlini et al. 2022)."
)


class ScoreAttack(Attack):
    """Label-free statistic of a raw score vector (``outputs_kind == "scores"``), averaged over queries.

    Subclasses set ``name``/``description`` and :meth:`statistic` (higher = more likely member).
    """

    requires: ClassVar[frozenset[str]] = frozenset()
    needs_labels: ClassVar[bool] = False
    output_kinds: ClassVar[frozenset[str]] = frozenset({"scores"})

    def score(self, bundle: SignalBundle) -> np.ndarray:
        """The statistic of each example's score vector, averaged over queries: (N,) float64."""
        check_target(bundle, self.name, labels=False, kinds=self.output_kinds)
        s = np.asarray(bundle.target_logits, dtype=np.float64)  # (N, A, C), the scores as given
        out: np.ndarray = self.statistic(s).mean(axis=1)
        return out

    def statistic(self, s: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """(N, A) statistic of the scores (N, A, C)."""
        raise NotImplementedError


class MaxScoreAttack(ScoreAttack):
    """Population attack on the largest entry of the raw score vector (label-free)."""

    name = "max_score"
    description = "High maximum score of the raw output vector means member; label-free (scores only)."

    def statistic(self, s: np.ndarray) -> np.ndarray:
        out: np.ndarray = s.max(axis=-1)
        return out


class ScoreSpreadAttack(ScoreAttack):
    """Population attack on the spread ``max - min`` of the raw score vector (label-free)."""

    name = "score_spread"
    description = "Large spread (max - min) of the raw output vector means member; label-free (scores only)."

    def statistic(self, s: np.ndarray) -> np.ndarray:
        out: np.ndarray = s.max(axis=-1) - s.min(axis=-1)
        return out


class ScoreExtremityAttack(ScoreAttack):
    """Population attack on the most extreme score: ``max_c |s_c - median_c| / IQR_c`` (label-free).

    ``median_c`` and ``IQR_c`` (interquartile range; the standard deviation where it is 0, and 1 where both
    are) are those of column ``c`` over every audit example and query; they do not depend on membership or
    on the order of the examples.
    """

    name = "score_extremity"
    description = ("Distance of the most extreme raw score from its column's median, in IQRs, means member; "
                   "label-free (scores only).")

    def statistic(self, s: np.ndarray) -> np.ndarray:
        flat = s.reshape(-1, s.shape[-1])
        median = np.median(flat, axis=0)
        q25, q75 = np.percentile(flat, [25.0, 75.0], axis=0)
        scale = q75 - q25
        std = flat.std(axis=0)
        scale = np.where(scale > 0, scale, np.where(std > 0, std, 1.0))
        out: np.ndarray = (np.abs(s - median) / scale).max(axis=-1)
        return out
