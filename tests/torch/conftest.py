"""Torch tests run single-threaded (:mod:`tests._torch_threads`)."""

from tests._torch_threads import one_torch_thread

__all__ = ["one_torch_thread"]
