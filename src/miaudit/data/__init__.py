"""Data layer: signal bundles, datasets, and the membership game's random design."""

from ._bundle import SignalBundle

__all__ = ["SignalBundle"]
