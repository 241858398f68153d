"""The signal bundle: a model's outputs on the audit examples, plus optional reference outputs.

This is the hand-over point between "a model trained anywhere" and miaudit's attacks.
Array conventions (after normalisation by :meth:`SignalBundle.from_arrays`):

=====================  ======================  =================================================
field                  shape / dtype           meaning
=====================  ======================  =================================================
labels                 (N,) int64              true class in [0, C)
target_logits          (N, A, C) float64       target model logits for A queries (A=1 if none);
                                               probabilities are converted to log-probabilities
target_in              (N,) bool or None       ground truth membership, evaluation only
ref_logits             (K, N, A, C) float32    K reference models' logits, or None
ref_in                 (K, N) bool or None     reference models' training membership
groups                 (N,) or None            optional user slice column (str or int)
population_logits      (M, A, C) or None       target outputs on known non-members (population z)
population_labels      (M,) int64 or None
ref_population_logits  (K, M, A, C) or None    reference outputs on the population
=====================  ======================  =================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["SignalBundle"]


@dataclass(frozen=True, eq=False)
class SignalBundle:
    labels: np.ndarray
    target_logits: np.ndarray
    target_in: np.ndarray | None = None
    ref_logits: np.ndarray | None = None
    ref_in: np.ndarray | None = None
    groups: np.ndarray | None = None
    population_logits: np.ndarray | None = None
    population_labels: np.ndarray | None = None
    ref_population_logits: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_examples(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_queries(self) -> int:
        return int(self.target_logits.shape[1])

    @property
    def n_classes(self) -> int:
        return int(self.target_logits.shape[2])

    @property
    def n_references(self) -> int:
        return 0 if self.ref_logits is None else int(self.ref_logits.shape[0])
