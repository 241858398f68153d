"""Membership-inference attacks, registered by name (see :mod:`miaudit.attacks._base`)."""

from ._base import Attack, attack_class, available_attacks, get_attack, missing_requirements, register_attack

__all__ = ["Attack", "attack_class", "available_attacks", "get_attack", "missing_requirements", "register_attack"]
