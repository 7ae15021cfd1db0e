"""Execution backends: how a network described once is advanced in time."""

from neurosim.backends.torch_backend import TorchBackend

BACKENDS = {"torch": TorchBackend}

__all__ = ["BACKENDS", "TorchBackend"]
