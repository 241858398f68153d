"""Data layer: signal bundles, datasets, and the membership game's random design."""

from ._bundle import SignalBundle
from ._datasets import Dataset, load_dataset, read_idx
from ._design import balanced_membership, draw_membership, partner_of
from ._io import load_bundle, save_bundle

__all__ = [
    "SignalBundle",
    "load_bundle",
    "save_bundle",
    "Dataset",
    "load_dataset",
    "read_idx",
    "draw_membership",
    "balanced_membership",
    "partner_of",
]
