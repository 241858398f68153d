"""Data layer: signal bundles and datasets (the game's design lives in :mod:`miaudit.audit.design`)."""

from ._bundle import SignalBundle
from ._datasets import Dataset, load_dataset, read_idx
from ._io import load_bundle, save_bundle

__all__ = ["SignalBundle", "load_bundle", "save_bundle", "Dataset", "load_dataset", "read_idx"]
