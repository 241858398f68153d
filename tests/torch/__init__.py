"""Tests of the optional PyTorch support (marker ``torch``)."""
