"""Execution backends: how a network described once is advanced in time."""

from neurosim.backends.numba_backend import NumbaBackend
from neurosim.backends.torch_backend import TorchBackend

BACKENDS = {"torch": TorchBackend, "numba": NumbaBackend}

__all__ = ["BACKENDS", "NumbaBackend", "TorchBackend"]
