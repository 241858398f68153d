"""The attack registry: one explicit, ordered mapping from name to attack class.

Imports flow one way: this module imports the attack modules, which import only
:mod:`miaudit.attacks._base` (and private helpers); no attack module imports the registry, so
importing an attack never fills the registry as a side effect. The built-in attacks are listed in
:data:`BUILTIN` in the order :func:`available_attacks` returns them: population attacks, reference
attacks, then the trained attacks and the shadow-model attack. Which attack can run on a bundle depends on
its ``requires`` (bundle parts), ``needs_labels`` and ``output_kinds`` (:func:`missing_requirements`). :func:`register_attack` adds a
user-defined attack after them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import InputError, option
from ._base import OUTPUT_KINDS, REQUIREMENTS, Attack
from .bayes import Base, BaseOffline
from .calibration import AttackR, CalibratedLoss
from .label_only import AugmentCount, BoundaryDistance, GapAttack, LabelAugment, LabelBoundary
from .lira import LiraOffline, LiraOnline
from .population import (
    ConfidenceAttack,
    EntropyAttack,
    LossAttack,
    MaxScoreAttack,
    ModifiedEntropyAttack,
    ScaledLogitAttack,
    ScoreExtremityAttack,
    ScoreSpreadAttack,
)
from .rmia import Rmia, RmiaOffline
from .shokri import ShokriAttack
from .trained import TrainedGB, TrainedLR

if TYPE_CHECKING:
    from ..data import SignalBundle

__all__ = ["BUILTIN", "register_attack", "available_attacks", "attack_class", "get_attack", "missing_requirements",
           "attack_access", "score_column"]

A = TypeVar("A", bound="type[Attack]")

#: The built-in attacks, name -> class, in the order of :func:`available_attacks`.
BUILTIN: dict[str, type[Attack]] = {
    "loss": LossAttack,
    "confidence": ConfidenceAttack,
    "entropy": EntropyAttack,
    "modified_entropy": ModifiedEntropyAttack,
    "scaled_logit": ScaledLogitAttack,
    "max_score": MaxScoreAttack,
    "score_spread": ScoreSpreadAttack,
    "score_extremity": ScoreExtremityAttack,
    "lira_online": LiraOnline,
    "lira_offline": LiraOffline,
    "rmia": Rmia,
    "rmia_offline": RmiaOffline,
    "base": Base,
    "base_offline": BaseOffline,
    "attack_r": AttackR,
    "calibrated_loss": CalibratedLoss,
    "trained_lr": TrainedLR,
    "trained_gb": TrainedGB,
    "shokri": ShokriAttack,
    "gap": GapAttack,
    "augment_count": AugmentCount,
    "boundary_distance": BoundaryDistance,
    "label_augment": LabelAugment,
    "label_boundary": LabelBoundary,
}


def _check_class(cls: type[Attack], name: str | None = None) -> None:
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    if name is not None and cls.name != name:
        raise TypeError(f"{cls.__name__} is named {cls.name!r} but listed as {name!r}")
    unknown = set(cls.requires) - REQUIREMENTS
    if unknown:
        raise TypeError(f"{cls.__name__}.requires has unknown entries {sorted(unknown)}")
    kinds = set(cls.output_kinds)
    if not kinds or kinds - OUTPUT_KINDS:
        raise TypeError(f"{cls.__name__}.output_kinds must be a non-empty subset of {sorted(OUTPUT_KINDS)}")


for _name, _cls in BUILTIN.items():
    _check_class(_cls, _name)

#: Every attack by name: the built-in ones, then user-registered ones in registration order.
_REGISTRY: dict[str, type[Attack]] = dict(BUILTIN)


def register_attack(cls: A) -> A:
    """Class decorator: add a user-defined attack to the registry under ``cls.name``.

    The class must subclass :class:`~miaudit.attacks.Attack`, set ``name`` and a ``requires`` within
    ``{"reference", "membership", "population"}``; a name already taken by another class is an error.
    """
    _check_class(cls)
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise TypeError(f"attack name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def available_attacks() -> list[str]:
    """Names of all registered attacks: the built-in ones in :data:`BUILTIN` order, then user ones."""
    return list(_REGISTRY)


def attack_class(name: str) -> type[Attack]:
    """The attack class registered as ``name`` (:class:`InputError` naming the choices if none)."""
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


def attack_access(name: str) -> str:
    """The least access to the target attack ``name`` runs at: ``"labels"`` (predicted classes), ``"scores"``
    (raw per-class values; logits and probabilities also do) or ``"logits"`` (logits or probabilities), with
    ``" + reference models"`` (trained by miaudit with the target's recipe), ``" + membership"`` (cross-fitted
    on the target's members) or ``" + population"`` (known non-members, or reference models) as needed."""
    cls = attack_class(name)
    kinds = cls.output_kinds
    base = "labels" if "labels" in kinds else "scores" if "scores" in kinds else "logits"
    extra = [{"reference": "reference models", "membership": "membership", "population": "population"}[r]
             for r in sorted(cls.requires)]
    return " + ".join([base, *extra])


def missing_requirements(name: str, bundle: SignalBundle) -> str | None:
    """Why attack ``name`` cannot run on ``bundle`` (a sentence), or None if it can."""
    cls = attack_class(name)
    if cls.needs_labels and bundle.labels is None:
        return f"needs the true labels ({option('label_column', api='labels in the bundle, label_column=... for tables')})"
    if bundle.outputs_kind not in cls.output_kinds:
        if cls.output_kinds == frozenset({"labels"}):
            return ("label-only attack: needs the predicted classes only (target_pred in a bundle, or "
                    "[attacks] access = \"label\"); this bundle holds the model's outputs")
        if bundle.outputs_kind == "labels":
            return "needs the model's outputs (logits, probabilities or scores); the target answered with labels only"
        if bundle.outputs_kind == "scores":
            return ("needs logits or probabilities (a softmax-able output vector); the outputs are raw scores "
                    f"({option('outputs_kind', 'scores')})")
        return f"needs raw per-class scores ({option('outputs_kind', 'scores')}); the outputs are logits or probabilities"
    if getattr(cls, "uses", None) == "boundary" and bundle.target_distance is None:
        return "needs boundary distances (target_distance; [attacks] boundary_queries > 0 when querying)"
    if "reference" in cls.requires and bundle.outputs_kind == "labels":
        if bundle.ref_pred is None or bundle.ref_is_member is None:
            return "needs reference models' predicted classes (ref_pred/ref_is_member, or `miaudit audit`)"
        if getattr(cls, "uses", None) == "boundary" and bundle.ref_distance is None:
            return "needs the reference models' boundary distances (ref_distance)"
        return None
    if "reference" in cls.requires and bundle.ref_logits is None:
        return "needs reference models (ref_logits/ref_is_member in the bundle, or `miaudit audit` to train them)"
    if "membership" in cls.requires and bundle.is_member is None:
        return "needs the target's membership labels (is_member) for cross-fitting"
    if "population" in cls.requires and bundle.population_logits is None and bundle.ref_logits is None:
        return "needs population data or reference models"
    return None


def score_column(name: str) -> str:
    """The scores.csv column of attack ``name``'s scores: its ``score_column`` (``neg_loss``), else ``name``."""
    try:
        return attack_class(name).score_column or name
    except InputError:  # not a registered attack (e.g. scores given by hand)
        return name
