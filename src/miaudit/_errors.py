"""One exception family for miaudit.

Every error miaudit raises on purpose derives from :class:`MiauditError`. The CLI turns
these into a one-line message and exit code 2 (:class:`InputError`: input/config) or 3 (any other
:class:`MiauditError`: training or runtime); anything else is a bug (exit 4). Exit 1 is kept for a
privacy budget that is exceeded.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = [
    "MiauditError",
    "InputError",
    "ConfigError",
    "MissingDependencyError",
    "TrainingError",
    "import_optional",
]


class MiauditError(Exception):
    """Base class of every error miaudit raises on purpose."""


class InputError(MiauditError, ValueError):
    """Bad user input: wrong shape, NaN, unknown labels, missing file, ...

    The message names the input, says what was expected and how to fix it.
    """


class ConfigError(InputError):
    """A configuration file or option is invalid (unknown key, wrong type, ...)."""


class MissingDependencyError(MiauditError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class TrainingError(MiauditError, RuntimeError):
    """Training a target or reference model failed; the message names which model and why."""


def import_optional(module: str, extra: str) -> ModuleType:
    """Import ``module`` lazily, or raise :class:`MissingDependencyError` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            f"{module!r} is needed for this feature but is not installed "
            f'({exc}); install it with: pip install "miaudit[{extra}]"'
        ) from exc
