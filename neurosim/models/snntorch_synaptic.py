"""snnTorch's second-order leaky neuron (``snn.Synaptic``) in discrete time, step for step."""

from __future__ import annotations

from neurosim.kernel import spike_above, where
from neurosim.models.base import StateVariable
from neurosim.models.snntorch_leaky import SnnTorchLeaky
from neurosim.parameters import Parameter


class SnnTorchSynaptic(SnnTorchLeaky):
    r"""The discrete-time neuron of snnTorch's ``snn.Synaptic`` (Eshraghian et al. 2023):
    a synaptic current that decays by ``alpha`` per step feeding a membrane that decays
    by ``beta``, with snnTorch's default delayed reset. Parameters, inputs and reset are
    :class:`SnnTorchLeaky`'s, plus ``alpha`` and the current ``syn``.

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
        **SnnTorchLeaky.parameters,
    }
    state_variables = {
        "syn": StateVariable("1", "synaptic current", 0.0),
        **SnnTorchLeaky.state_variables,
    }

    def constants(self, p, dt):
        return {"alpha": p["alpha"], **super().constants(p, dt)}

    @staticmethod
    def update(syn, mem, i_in, i_ext, alpha, beta, threshold, keep, i_bias):
        fired = mem > threshold  # R[t]: the last step's spike (mem - threshold > 0, exactly)
        syn = alpha * syn + (i_in + i_bias + i_ext)
        base = beta * mem + syn
        mem = where(fired, keep * base, base) - where(fired, keep * threshold, 0.0)
        spiked = spike_above(mem - threshold)
        return syn, mem, i_in * 0.0, spiked
