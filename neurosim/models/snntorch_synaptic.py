"""snnTorch's second-order leaky neuron (``snn.Synaptic``) in discrete time, step for step."""

from __future__ import annotations

from neurosim.kernel import spike_above, where
from neurosim.models.base import NeuronModel, StateVariable
from neurosim.parameters import Parameter


class SnnTorchSynaptic(NeuronModel):
    r"""The discrete-time neuron of snnTorch's ``snn.Synaptic`` (Eshraghian et al. 2023):
    a synaptic current that decays by ``alpha`` per step feeding a membrane that decays
    by ``beta``, with snnTorch's default delayed reset.

    .. math::

        R[t] = \Theta(m[t-1] - \vartheta),\quad
        s[t] = \alpha\, s[t-1] + I[t],\quad
        m[t] = \beta\, m[t-1] + s[t] - R[t]\,\vartheta \quad\text{(reset by subtraction)}

    or, with ``subtract=0`` (reset to zero), :math:`m[t] = b - b\,R[t]` with
    :math:`b = \beta m[t-1] + s[t]` (the current is not reset, as in snnTorch). The
    neuron spikes when :math:`m[t] - \vartheta > 0`. :math:`I[t]` is the input of this
    step (receptor ``"syn"``, signed weights) plus ``i_bias`` (the layer's bias) and
    ``i_ext``. Dimensionless, as in snnTorch; terms are added in snnTorch's order, so
    float results are the same when the input is.
    """

    parameters = {
        "alpha": Parameter(0.9, "1", "synaptic current decay per step", low=0.0, high=1.0),
        "beta": Parameter(0.8, "1", "membrane decay per step", low=0.0, high=1.0),
        "threshold": Parameter(1.0, "1", "firing threshold", low=0.0, low_open=True),
        "subtract": Parameter(1.0, "1", "1: reset by subtracting the threshold; 0: reset to zero",
                              low=0.0, high=1.0),
        "i_bias": Parameter(0.0, "1", "constant input per step (a layer's bias)"),
    }
    state_variables = {
        "syn": StateVariable("1", "synaptic current", 0.0),
        "mem": StateVariable("1", "membrane potential", 0.0),
        "i_in": StateVariable("1", "synaptic input arriving this step (used once)", 0.0),
    }
    inputs = ("i_ext",)
    receptors = {"syn": "i_in"}

    def check_consistency(self, p):
        import numpy as np

        if np.any((np.asarray(p["subtract"]) != 0.0) & (np.asarray(p["subtract"]) != 1.0)):
            raise ValueError("SnnTorchSynaptic: 'subtract' must be 1 (reset by subtraction) or 0 "
                             f"(reset to zero), got {p['subtract']}")

    def constants(self, p, dt):
        # keep: 1 keeps the membrane at a spike (reset by subtraction), 0 zeroes it;
        # drop: what a spike subtracts (0 for reset to zero)
        return {"alpha": p["alpha"], "beta": p["beta"], "threshold": p["threshold"],
                "keep": p["subtract"], "drop": p["subtract"] * p["threshold"],
                "i_bias": p["i_bias"]}

    @staticmethod
    def update(syn, mem, i_in, i_ext, alpha, beta, threshold, keep, drop, i_bias):
        fired = mem > threshold  # R[t]: the last step's spike (mem - threshold > 0, exactly)
        syn = alpha * syn + (i_in + i_bias + i_ext)
        base = beta * mem + syn
        mem = where(fired, keep * base, base) - where(fired, drop, 0.0)
        spiked = spike_above(mem - threshold)
        return syn, mem, i_in * 0.0, spiked
