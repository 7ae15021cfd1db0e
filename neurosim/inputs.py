"""Current inputs: injected currents that change at given times."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from neurosim.validation import is_real, numeric_array, show

if TYPE_CHECKING:
    from neurosim.population import Population


class StepCurrent:
    """Adds ``amplitude`` to a population's ``i_ext`` from ``start_ms`` until ``stop_ms``.

    Built by :meth:`neurosim.Network.step_current`. Several step currents on the
    same neurons add up. The change takes effect in the step whose index is
    ``round(start_ms / dt)`` and is undone at ``round(stop_ms / dt)``; the current
    is constant over each step, which the exact integrators assume.
    """

    def __init__(self, population: "Population", amplitude: float | np.ndarray,
                 start_ms: float, stop_ms: float, neurons: Sequence[int] | None, dt: float) -> None:
        if "i_ext" not in population.inputs:
            raise ValueError(f"population '{population.name}' ({population.model_name}) takes no "
                             "injected current (no 'i_ext' input)")
        for arg, value in (("start_ms", start_ms), ("stop_ms", stop_ms)):
            if not is_real(value):
                raise TypeError(f"StepCurrent: {arg} must be a number of milliseconds, got {show(value)}")
        if not (math.isfinite(start_ms) and start_ms >= 0) or not stop_ms > start_ms:
            raise ValueError(f"StepCurrent: need 0 <= start_ms < stop_ms, got {start_ms}, {stop_ms}")
        idx = self._neurons(population, neurons)
        count = population.n if idx is None else len(idx)
        amp = numeric_array(amplitude, "StepCurrent: amplitude must be a number or an array of "
                                       "numbers").astype(np.float64)
        if not np.all(np.isfinite(amp)):
            raise ValueError("StepCurrent: amplitude contains NaN or inf")
        shape = (population.batch, count)
        try:
            fits = np.broadcast_shapes(amp.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"StepCurrent: amplitude has shape {amp.shape}; expected a number, "
                             f"({count},) (one per {'selected ' if idx is not None else ''}neuron) "
                             f"or ({population.batch}, {count}) (batch, neurons)")
        self.population = population
        self.start_step = int(round(start_ms / dt))
        self.stop_step = int(round(stop_ms / dt)) if math.isfinite(stop_ms) else None
        self._index = (slice(None) if idx is None else torch.as_tensor(idx, device=population.device))
        self._amp = torch.as_tensor(amp, dtype=population.dtype, device=population.device)
        self.description = {"type": "StepCurrent", "population": population.name,
                            "amplitude": float(amp) if amp.ndim == 0 else "array",
                            "start_ms": float(start_ms), "stop_ms": float(stop_ms)}

    @staticmethod
    def _neurons(population: "Population", neurons: Sequence[int] | None) -> np.ndarray | None:
        """The selected neuron indices, checked now rather than at the start step."""
        if neurons is None:
            return None
        what = f"StepCurrent: neurons must be indices of population '{population.name}'"
        idx = numeric_array(neurons, what)
        if idx.size == 0:
            idx = idx.astype(np.int64)  # np.asarray([]) is float64
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise TypeError(f"{what}, a 1-D sequence of integers; got "
                            f"{idx.dtype} values of shape {idx.shape}")
        if idx.size and (idx.min() < 0 or idx.max() >= population.n):
            bad = idx[(idx < 0) | (idx >= population.n)][0]
            raise ValueError(f"{what} in [0, {population.n}), got {int(bad)} (negative indices do "
                             "not count from the end here)")
        if len(np.unique(idx)) != len(idx):
            raise ValueError(f"{what}, each at most once (currents on the same neuron add up: "
                             "use one StepCurrent with the summed amplitude)")
        return idx.astype(np.int64)

    def apply(self, step: int) -> None:
        if step == self.start_step:
            self.population.inputs["i_ext"][:, self._index] += self._amp
        elif step == self.stop_step:
            self.population.inputs["i_ext"][:, self._index] -= self._amp

    def describe(self) -> dict[str, Any]:
        return self.description
