"""Poisson spike source."""

from __future__ import annotations

import numpy as np

from neurosim.models.base import NeuronModel
from neurosim.parameters import Parameter


class PoissonSource(NeuronModel):
    r"""Independent Poisson spike trains with per-neuron (or per-sample) rates.

    In each step of length :math:`\Delta t` a neuron fires with probability
    :math:`p = r \Delta t` (``rate`` in Hz, :math:`\Delta t` in s), i.e. a
    Bernoulli approximation of a Poisson process, exact in the limit of small
    :math:`r\Delta t`. The uniform random numbers come from the population's
    own random stream, derived from the network seed, so a run is repeatable.

    ``rate`` may be a scalar, one value per neuron ``(n,)`` or one row per batch
    sample ``(batch, n)``; change it between runs with
    ``pop.set_parameters(rate=...)`` (this is how images are presented as rates).
    """

    parameters = {"rate": Parameter(10.0, "Hz", "firing rate", low=0.0)}
    state_variables = {}
    random_inputs = ("u",)
    receptors = {}

    def constants(self, p, dt):
        prob = np.asarray(p["rate"], dtype=np.float64) * dt * 1e-3
        if np.any(prob > 1.0):
            raise ValueError(f"PoissonSource: rate {np.max(p['rate']):g} Hz exceeds one spike "
                             f"per step at dt={dt:g} ms (maximum {1000.0 / dt:g} Hz)")
        return {"p_spike": float(prob) if prob.ndim == 0 else prob}

    @staticmethod
    def update(u, p_spike):
        return (u < p_spike,)
