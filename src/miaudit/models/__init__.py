"""Model adapters: turn a trained model into logits ``(N, A, C)``.

Only numpy and scikit-learn are imported here; the PyTorch adapter lives in the separate public
module :mod:`miaudit.models.torch`, imported on demand.
"""

from ._callable import CALLABLE_OUTPUT_KINDS, QueryBudgetError, QueryModel, is_torch_module
from ._label_query import LabelAnswers, LabelQuerySpec, label_queries
from ._sklearn import MISSING_CLASS_LOGIT, sklearn_logits

__all__ = ["sklearn_logits", "MISSING_CLASS_LOGIT", "CALLABLE_OUTPUT_KINDS", "QueryBudgetError", "QueryModel",
           "is_torch_module", "LabelAnswers", "LabelQuerySpec", "label_queries"]
