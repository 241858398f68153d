"""Importing by name: one home for the two lazy imports every layer needs.

* :func:`import_object` resolves a user's ``"package.module.Name"`` (an estimator, a preprocessing
  step, a query function, a network class), raising :class:`~miaudit.ConfigError` naming the option.
* :func:`import_optional` imports an optional dependency or raises
  :class:`~miaudit.MissingDependencyError` naming the extra to install (defined in :mod:`miaudit._errors`,
  forwarded here so that callers import both helpers from one place).

This module depends only on :mod:`miaudit._errors`, so ``models`` and ``training`` can both use it without
importing each other.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._errors import ConfigError, import_optional

__all__ = ["import_object", "import_optional"]


def import_object(path: str, *, key: str) -> Any:
    """Import ``"package.module.Name"``; :class:`ConfigError` naming ``key`` when that fails."""
    if not isinstance(path, str) or "." not in path.strip("."):
        raise ConfigError(
            f"{key}: expected an import path such as 'sklearn.linear_model.LogisticRegression', got {path!r}"
        )
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except (ImportError, TypeError, ValueError) as exc:  # TypeError: a relative path such as '.a.b'
        raise ConfigError(
            f"{key}: cannot import module {module_name!r} of {path!r} ({exc}); check the spelling or install the package"
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(
            f"{key}: module {module_name!r} has no attribute {attr!r}; check the spelling of {path!r}"
        ) from None
