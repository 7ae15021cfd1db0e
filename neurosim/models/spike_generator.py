"""Replay of given spike times."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


class SpikeGenerator:
    """A source that emits exactly the spikes it is given.

    Args:
        times_ms: spike times in ms (any order). A spike at time ``t`` is emitted
            in step ``round(t / dt)``. A neuron emits at most one spike per step (a
            spike is an event, not a count): two spikes of one neuron and batch row
            that fall in the same step are refused when the population is built, as
            Brian2's ``SpikeGeneratorGroup`` does; use a smaller ``dt`` or give the
            second spike to another neuron.
        neurons: index of the emitting neuron for each spike.
        batch: batch row of each spike; ``None`` repeats every spike in every row.

    Example:
        >>> gen = SpikeGenerator(times_ms=[1.0, 5.0, 5.0], neurons=[0, 0, 2])
    """

    def __init__(self, times_ms: Sequence[float] | np.ndarray, neurons: Sequence[int] | np.ndarray,
                 batch: Sequence[int] | np.ndarray | None = None) -> None:
        self.times_ms = np.asarray(times_ms, dtype=np.float64).ravel()
        self.neurons = np.asarray(neurons).ravel()
        if self.times_ms.shape != self.neurons.shape:
            raise ValueError(f"SpikeGenerator: times_ms has {self.times_ms.size} entries but "
                             f"neurons has {self.neurons.size}")
        if not np.all(np.isfinite(self.times_ms)) or np.any(self.times_ms < 0):
            raise ValueError("SpikeGenerator: spike times must be finite and >= 0 ms")
        if self.neurons.size and not np.issubdtype(self.neurons.dtype, np.integer):
            raise TypeError("SpikeGenerator: neurons must be integer indices")
        self.batch = None if batch is None else np.asarray(batch).ravel()
        if self.batch is not None and self.batch.shape != self.times_ms.shape:
            raise ValueError(f"SpikeGenerator: batch has {self.batch.size} entries but "
                             f"times_ms has {self.times_ms.size}")

    def events(self, n: int, batch_size: int, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(step, batch row, neuron) of every spike, sorted by step, after checking ranges."""
        if self.neurons.size and (self.neurons.min() < 0 or self.neurons.max() >= n):
            raise ValueError(f"SpikeGenerator: neuron index out of range [0, {n})")
        steps = np.rint(self.times_ms / dt).astype(np.int64)
        if self.batch is None:
            rows = np.repeat(np.arange(batch_size), steps.size)
            steps, neurons = np.tile(steps, batch_size), np.tile(self.neurons, batch_size)
        else:
            if self.batch.size and (self.batch.min() < 0 or self.batch.max() >= batch_size):
                raise ValueError(f"SpikeGenerator: batch index out of range [0, {batch_size})")
            rows, neurons = self.batch, self.neurons
        order = np.lexsort((neurons, rows, steps))  # by step, then row, then neuron
        steps, rows, neurons = steps[order], rows[order].astype(np.int64), neurons[order].astype(np.int64)
        same = (np.diff(steps) == 0) & (np.diff(rows) == 0) & (np.diff(neurons) == 0)
        if same.any():
            k = int(np.flatnonzero(same)[0])
            hit = (steps == steps[k]) & (rows == rows[k]) & (neurons == neurons[k])
            mine = (self.neurons == neurons[k]) & (np.rint(self.times_ms / dt) == steps[k])
            if self.batch is not None:
                mine &= self.batch == rows[k]
            times = np.unique(self.times_ms[mine])
            raise ValueError(
                f"SpikeGenerator: neuron {neurons[k]} (batch row {rows[k]}) has {int(hit.sum())} "
                f"spikes in step {steps[k]} (at {', '.join(f'{x:g}' for x in times)} ms with dt "
                f"{dt:g} ms); a neuron emits at most one spike per step: use a smaller dt, or "
                f"give the extra spikes to another neuron")
        return steps, rows, neurons

    def describe(self) -> dict[str, Any]:
        return {"model": "SpikeGenerator", "spikes": int(self.times_ms.size)}
