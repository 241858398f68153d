"""One exception family for miaudit.

Every error miaudit raises on purpose derives from :class:`MiauditError`. The CLI turns
these into a one-line message and exit code 2 (:class:`InputError`: input/config) or 3 (any other
:class:`MiauditError`: training or runtime); anything else is a bug (exit 4). Exit 1 is kept for a
privacy budget that is exceeded.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from contextvars import ContextVar
from types import ModuleType

__all__ = [
    "MiauditError",
    "InputError",
    "ConfigError",
    "MissingDependencyError",
    "TrainingError",
    "import_optional",
    "option",
    "input_name",
    "cli_option_names",
]

#: True while the command line runs: messages then name CLI flags (``--label-column``), not keywords.
_CLI_NAMES: ContextVar[bool] = ContextVar("miaudit_cli_names", default=False)


def option(name: str, value: str | None = None, *, api: str | None = None) -> str:
    """How a message names the input ``name`` (a Python keyword such as ``"label_column"``).

    Under :func:`cli_option_names` the CLI flag (``--label-column``, ``--outputs-kind scores``); otherwise the
    keyword (``label_column=...``, ``outputs_kind='scores'``), or ``api`` when given.
    """
    if _CLI_NAMES.get():
        flag = "--" + name.replace("_", "-")
        return flag if value is None else f"{flag} {value}"
    if api is not None:
        return api
    return f"{name}=..." if value is None else f"{name}={value!r}"


def input_name(name: str) -> str:
    """The bare name of input ``name`` in a message: ``--outputs-kind`` under the CLI, ``outputs_kind`` otherwise."""
    return "--" + name.replace("_", "-") if _CLI_NAMES.get() else name


@contextlib.contextmanager
def cli_option_names() -> Iterator[None]:
    """Within this block, error messages name CLI flags instead of Python keywords (used by the CLI)."""
    token = _CLI_NAMES.set(True)
    try:
        yield
    finally:
        _CLI_NAMES.reset(token)


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
