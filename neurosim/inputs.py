"""Current inputs: injected currents that change at given times."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

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
        if not (math.isfinite(start_ms) and start_ms >= 0) or not stop_ms > start_ms:
            raise ValueError(f"StepCurrent: need 0 <= start_ms < stop_ms, got {start_ms}, {stop_ms}")
        amp = np.asarray(amplitude, dtype=np.float64)
        if not np.all(np.isfinite(amp)):
            raise ValueError("StepCurrent: amplitude contains NaN or inf")
        self.population = population
        self.start_step = int(round(start_ms / dt))
        self.stop_step = int(round(stop_ms / dt)) if math.isfinite(stop_ms) else None
        idx = (slice(None) if neurons is None
               else torch.as_tensor(np.asarray(neurons, dtype=np.int64), device=population.device))
        self._index = idx
        self._amp = torch.as_tensor(amp, dtype=population.dtype, device=population.device)
        self.description = {"type": "StepCurrent", "population": population.name,
                            "amplitude": float(amp) if amp.ndim == 0 else "array",
                            "start_ms": start_ms, "stop_ms": stop_ms}

    def apply(self, step: int) -> None:
        if step == self.start_step:
            self.population.inputs["i_ext"][:, self._index] += self._amp
        elif step == self.stop_step:
            self.population.inputs["i_ext"][:, self._index] -= self._amp

    def describe(self) -> dict[str, Any]:
        return self.description
