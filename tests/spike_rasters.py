"""A log's spike events as a dense raster (tests comparing with step-based tools)."""

from __future__ import annotations

import numpy as np


def spike_raster(reader, name: str, steps: int, batch: int, n: int) -> np.ndarray:
    """``(steps, batch, n)`` float32, 1 where ``name``'s neuron spiked."""
    s, i, b = reader.spikes(name)
    out = np.zeros((steps, batch, n), np.float32)
    out[s, b, i] = 1.0
    return out
