"""Random streams derived from the run seed, one per stochastic component.

Each stochastic part of a network (a Poisson source, a connector, a random
initial value) draws from its own stream, derived from the network seed and the
component's name. Adding a component therefore never shifts the random numbers
another component sees, and the same seed gives the same run.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def _entropy(seed: int, name: str) -> list[int]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    words = np.frombuffer(digest[:16], dtype=np.uint32).tolist()
    return [int(seed)] + words


def numpy_stream(seed: int, name: str) -> np.random.Generator:
    """A numpy Generator for component ``name`` (build-time randomness)."""
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(_entropy(seed, name))))


def torch_stream(seed: int, name: str, device: torch.device) -> torch.Generator:
    """A torch Generator on ``device`` for component ``name`` (run-time randomness)."""
    state = np.random.SeedSequence(_entropy(seed, name)).generate_state(2, dtype=np.uint32)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(state[0]) << 31 ^ int(state[1]))
    return gen
