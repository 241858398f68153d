"""One rule for the number of models in a balanced design, used by the config, the API and the game's design."""

from __future__ import annotations

import numpy as np

from ._errors import InputError

__all__ = ["check_count", "check_even_count"]


def check_count(value: object, name: str, *, minimum: int) -> int:
    """``value`` as an ``int`` >= ``minimum`` (bools and floats refused), or :class:`InputError` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}; pass a whole number")
    if int(value) < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {int(value)}; use more examples/models")
    return int(value)


def check_even_count(value: object, name: str, *, minimum: int = 2) -> int:
    """An even integer >= ``minimum``: models come in complementary pairs, so every example is IN for exactly
    half of them."""
    k = check_count(value, name, minimum=minimum)
    if k % 2:
        raise InputError(
            f"{name}: expected an even number (models come in complementary pairs, so every example is IN "
            f"for exactly half of them), got {k}; use {k - 1 if k - 1 >= minimum else k + 1} or {k + 1}"
        )
    return k
