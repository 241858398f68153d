"""Attack contract and registry.

An attack is a small class with an sklearn-like contract:

* ``__init__`` stores hyper-parameters only;
* ``fit(bundle)`` learns from the *reference* part of a :class:`~miaudit.data.SignalBundle`
  (``ref_logits``/``ref_is_member``, population data); fitted state ends in ``_``;
* ``score(bundle)`` returns one float64 score per example of the target, higher = more likely member.

Attacks never look at ``bundle.is_member`` (the evaluation ground truth), with one documented
exception: attacks whose ``requires`` contains ``"membership"`` (the trained attack models
``trained_lr``/``trained_gb``) fit on the target's own members/non-members with k-fold
cross-fitting, so that every score is out-of-fold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from .._errors import InputError

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["Attack", "register_attack", "get_attack", "available_attacks", "attack_class", "missing_requirements"]

#: What an attack can require from a bundle.
REQUIREMENTS = frozenset({"reference", "membership", "population"})

_REGISTRY: dict[str, type["Attack"]] = {}

A = TypeVar("A", bound="type[Attack]")


class Attack(ABC):
    """Base class of all attacks. Subclasses set ``name`` and ``requires``."""

    name: ClassVar[str] = ""
    #: Subset of {"reference", "membership", "population"}.
    requires: ClassVar[frozenset[str]] = frozenset()
    #: One-line description shown in reports and ``--help``.
    description: ClassVar[str] = ""

    def fit(self, bundle: "SignalBundle") -> "Attack":
        """Learn from the reference part of ``bundle``. Default: nothing to learn."""
        return self

    @abstractmethod
    def score(self, bundle: "SignalBundle") -> np.ndarray:
        """One score per example (shape ``(N,)``, float64), higher = more likely member."""

    def fit_score(self, bundle: "SignalBundle") -> np.ndarray:
        return self.fit(bundle).score(bundle)

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def register_attack(cls: A) -> A:
    """Class decorator: register an attack under ``cls.name``."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    unknown = set(cls.requires) - REQUIREMENTS
    if unknown:
        raise TypeError(f"{cls.__name__}.requires has unknown entries {sorted(unknown)}")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise TypeError(f"attack name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def available_attacks() -> list[str]:
    """Names of all registered attacks, in registration order."""
    _load_builtin()
    return list(_REGISTRY)


def attack_class(name: str) -> type[Attack]:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(
            f"unknown attack {name!r}; expected one of: {', '.join(_REGISTRY)}"
        ) from None


def get_attack(name: str, **params: Any) -> Attack:
    """Instantiate the attack registered as ``name`` with hyper-parameters ``params``."""
    cls = attack_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise InputError(f"attack {name!r}: bad parameters {params!r} ({exc})") from None


def missing_requirements(name: str, bundle: "SignalBundle") -> str | None:
    """Why attack ``name`` cannot run on ``bundle`` (a sentence), or None if it can."""
    cls = attack_class(name)
    if "reference" in cls.requires and bundle.ref_logits is None:
        return "needs reference models (ref_logits/ref_is_member in the bundle, or an audit with K >= 2)"
    if "membership" in cls.requires and bundle.is_member is None:
        return "needs the target's membership labels (is_member) for cross-fitting"
    if "population" in cls.requires and bundle.population_logits is None and bundle.ref_logits is None:
        return "needs population data or reference models"
    return None


def _load_builtin() -> None:
    # Importing the modules registers the built-in attacks.
    from . import population, lira, rmia, calibration, shokri, trained  # noqa: F401, I001
