"""Training reference models: recipes, the parallel cached runner, and its progress bar.

* :class:`Recipe` (protocol) and :class:`SklearnRecipe`; a PyTorch recipe lives in
  ``miaudit.training.torch_recipe`` (optional extra ``torch``).
* :func:`train_models` trains K models in parallel processes and caches each model's logits under
  ``run_dir/models/<key>.npz`` the moment it finishes (see :mod:`miaudit.training._cache`).
"""

from ._cache import CACHE_VERSION, data_fingerprint, model_key
from ._execution import Execution
from ._progress import rich_progress
from ._recipe import Recipe, SklearnRecipe, recipe_from_spec
from ._runner import TrainedModels, TrainingProgress, default_jobs, model_seeds, train_models

__all__ = [
    "CACHE_VERSION",
    "Execution",
    "Recipe",
    "SklearnRecipe",
    "TrainedModels",
    "TrainingProgress",
    "data_fingerprint",
    "default_jobs",
    "model_key",
    "model_seeds",
    "recipe_from_spec",
    "rich_progress",
    "train_models",
]
