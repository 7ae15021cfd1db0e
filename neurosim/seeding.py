"""Random streams derived from the run seed, one per stochastic component.

Each stochastic part of a network (a connector, a random initial value) draws
from its own stream, derived from the network seed and the component's name;
run-time random inputs (Poisson sources) use counter-based streams keyed the
same way (:mod:`neurosim.counter_rng`). Adding a component therefore never shifts the random numbers
another component sees, and the same seed gives the same run.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _entropy(seed: int, name: str) -> list[int]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    words = np.frombuffer(digest[:16], dtype=np.uint32).tolist()
    return [int(seed)] + words


def numpy_stream(seed: int, name: str) -> np.random.Generator:
    """A numpy Generator for component ``name`` (build-time randomness)."""
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(_entropy(seed, name))))
