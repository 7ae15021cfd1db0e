"""snnTorch's leaky neuron (``snn.Leaky``) in discrete time, step for step."""

from __future__ import annotations

from neurosim.kernel import spike_above, where
from neurosim.models.base import NeuronModel, StateVariable
from neurosim.parameters import Parameter


class SnnTorchLeaky(NeuronModel):
    r"""The discrete-time leaky neuron of snnTorch's ``snn.Leaky`` (Eshraghian et al. 2023),
    with its default delayed reset, so that a network converted from snnTorch spikes
    exactly as it did there.

    .. math::

        R[t] = \Theta(m[t-1] - \vartheta),\qquad
        m[t] = \beta\, m[t-1] + I[t] - R[t]\,\vartheta \quad\text{(reset by subtraction)}

    or, with ``subtract=0`` (reset to zero), :math:`m[t] = \beta (1 - R[t])\, m[t-1] + I[t]`;
    the neuron spikes when :math:`m[t] - \vartheta > 0` (strictly, as snnTorch's Heaviside).
    :math:`I[t]` is the synaptic input that arrived this step (receptor ``"syn"``,
    signed weights, used once: snnTorch's ``nn.Linear`` output) plus ``i_bias``
    (the layer's bias) and ``i_ext``. Everything is dimensionless, as in snnTorch; the
    time step ``dt`` only names the step. ``beta`` is clipped to [0, 1] there and
    must lie in it here.

    The terms are added in snnTorch's order (``beta * m + I``, then the reset), so the
    float results are the same when ``I`` is: input summed over many synapses in
    another order can differ in the last bit (use float64, or weights whose sums are
    exact, to compare step for step).
    """

    parameters = {
        "beta": Parameter(0.9, "1", "membrane decay per step", low=0.0, high=1.0),
        "threshold": Parameter(1.0, "1", "firing threshold", low=0.0, low_open=True),
        "subtract": Parameter(1.0, "1", "1: reset by subtracting the threshold; 0: reset to zero",
                              low=0.0, high=1.0),
        "i_bias": Parameter(0.0, "1", "constant input per step (a layer's bias)"),
    }
    state_variables = {
        "mem": StateVariable("1", "membrane potential", 0.0),
        "i_in": StateVariable("1", "synaptic input arriving this step (used once)", 0.0),
    }
    inputs = ("i_ext",)
    receptors = {"syn": "i_in"}
    threshold_argument = "threshold"  # the reset reads it too: a gate's offset raises both

    def check_consistency(self, p):
        import numpy as np

        if np.any((np.asarray(p["subtract"]) != 0.0) & (np.asarray(p["subtract"]) != 1.0)):
            raise ValueError(f"{type(self).__name__}: 'subtract' must be 1 (reset by subtraction) "
                             f"or 0 (reset to zero), got {p['subtract']}")

    def constants(self, p, dt):
        # keep: 1 keeps the membrane at a spike (reset by subtraction), 0 zeroes it; a
        # spike then subtracts keep * threshold (0 for reset to zero)
        return {"beta": p["beta"], "threshold": p["threshold"], "keep": p["subtract"],
                "i_bias": p["i_bias"]}

    @staticmethod
    def update(mem, i_in, i_ext, beta, threshold, keep, i_bias):
        fired = mem > threshold  # R[t]: the last step's spike (mem - threshold > 0, exactly)
        kept = where(fired, keep * mem, mem)  # reset to zero: (1 - R) m, exactly
        mem = beta * kept + (i_in + i_bias + i_ext) - where(fired, keep * threshold, 0.0)
        spiked = spike_above(mem - threshold)
        return mem, i_in * 0.0, spiked
