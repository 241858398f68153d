"""miaudit: membership-inference audits for machine-learning models."""

from ._errors import ConfigError, InputError, MiauditError, MissingDependencyError, TrainingError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "MiauditError",
    "InputError",
    "ConfigError",
    "MissingDependencyError",
    "TrainingError",
]
