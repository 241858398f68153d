"""Membership-inference attacks, found by name in :mod:`miaudit.attacks.registry`.

The contract every attack follows is :class:`Attack` (:mod:`miaudit.attacks._base`).
"""

from ._base import Attack
from .registry import attack_class, available_attacks, get_attack, missing_requirements, register_attack

__all__ = ["Attack", "attack_class", "available_attacks", "get_attack", "missing_requirements", "register_attack"]
