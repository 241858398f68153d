"""Importing by name: one home for the two lazy imports every layer needs.

* :func:`import_object` resolves a user's ``"package.module.Name"`` (an estimator, a preprocessing
  step, a query function, a network class), raising :class:`~miaudit.ConfigError` naming the option.
* :func:`import_optional` imports an optional dependency or raises
  :class:`~miaudit.MissingDependencyError` naming the extra to install (defined in :mod:`miaudit._errors`,
  forwarded here so that callers import both helpers from one place).

A config's folder is on the import path while the config loads and its models train
(:func:`config_folder_on_path`, as ``python script.py`` puts the script's folder first), so
``estimator = "mymodule.MyEstimator"`` next to the config imports without ``PYTHONPATH``; worker processes
get the same folders (:func:`import_paths`, :func:`add_import_paths`).

This module depends only on :mod:`miaudit._errors`, so ``models`` and ``training`` can both use it without
importing each other.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ._errors import ConfigError, import_optional

__all__ = ["add_import_paths", "config_folder_on_path", "import_object", "import_optional", "import_paths"]

_ACTIVE: list[str] = []  # config folders put on sys.path by config_folder_on_path, innermost last


@contextmanager
def config_folder_on_path(folder: str | os.PathLike[str]) -> Iterator[str]:
    """Put ``folder`` (a config's folder) first on ``sys.path`` for the duration of the block.

    Nested and repeated uses are fine; the folder is removed again at the end unless it was on the path
    before. Modules imported meanwhile stay imported.
    """
    path = os.path.abspath(os.fspath(folder))
    added = path not in sys.path
    if added:
        sys.path.insert(0, path)
        importlib.invalidate_caches()
    _ACTIVE.append(path)
    try:
        yield path
    finally:
        _ACTIVE.reverse()
        _ACTIVE.remove(path)  # the innermost occurrence
        _ACTIVE.reverse()
        if added and path not in _ACTIVE:
            try:
                sys.path.remove(path)
            except ValueError:  # pragma: no cover - someone else removed it
                pass


def import_paths() -> tuple[str, ...]:
    """The config folders on the import path now (what a worker process must add, see :func:`add_import_paths`)."""
    return tuple(dict.fromkeys(reversed(_ACTIVE)))


def add_import_paths(paths: Sequence[str]) -> None:
    """In a worker process: put ``paths`` (from :func:`import_paths` of the parent) first on ``sys.path``."""
    missing = [p for p in paths if p not in sys.path]
    if missing:
        sys.path[:0] = missing
        importlib.invalidate_caches()


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
