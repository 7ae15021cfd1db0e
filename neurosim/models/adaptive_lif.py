"""Adaptive leaky integrate-and-fire neuron (spike-triggered threshold adaptation)."""

from __future__ import annotations

import numpy as np

from neurosim.kernel import spike, where
from neurosim.models.base import NeuronModel, StateVariable, check_less
from neurosim.models.lif import LIF_PARAMETERS, LIF_STATE, membrane_constants, membrane_step
from neurosim.parameters import Parameter


class AdaptiveLIF(NeuronModel):
    r"""LIF neuron whose threshold rises with each spike and relaxes back.

    Membrane and synapses as :class:`~neurosim.LIF`; the threshold is
    :math:`v_{thresh} + \theta` with

    .. math::

        \tau_\theta \frac{d\theta}{dt} = -\theta,\qquad
        \theta \leftarrow \theta + \theta_{+}\ \text{at each spike}.

    This is the adaptive threshold of Diehl & Cook (2015) (there ``tau_theta``
    is 1e7 ms, i.e. practically no decay; ``math.inf`` disables decay) and a
    spike-frequency adaptation mechanism in general.
    """

    parameters = {
        **LIF_PARAMETERS,
        "theta_plus": Parameter(0.05, "mV", "threshold increase per spike", low=0.0),
        "tau_theta": Parameter(1e7, "ms", "threshold adaptation time constant (inf: none)",
                               low=0.0, low_open=True, allow_inf=True),
    }
    state_variables = {**LIF_STATE,
                       "theta": StateVariable("mV", "threshold adaptation", 0.0)}
    inputs = ("i_ext",)
    receptors = {"exc": "i_e", "inh": "i_i"}

    def check_consistency(self, p):
        check_less(type(self).__name__, p, "v_reset", "v_thresh")

    def constants(self, p, dt):
        tau = np.asarray(p["tau_theta"], dtype=np.float64)
        decay = np.where(np.isinf(tau), 1.0, np.exp(-dt / np.where(np.isinf(tau), 1.0, tau)))
        return {**membrane_constants(p, dt), "v_thresh": p["v_thresh"],
                "decay_theta": float(decay) if decay.ndim == 0 else decay,
                "theta_plus": p["theta_plus"]}

    @staticmethod
    def update(v, i_e, i_i, ref, theta, i_ext, decay_m, decay_e, decay_i, prop_e, prop_i,
               v_base, v_reset, ref_steps, v_thresh, decay_theta, theta_plus):
        v, i_e, i_i, ref = membrane_step(v, i_e, i_i, ref, i_ext, decay_m, decay_e, decay_i,
                                         prop_e, prop_i, v_base, v_reset)
        theta = theta * decay_theta
        spiked = spike(v - (v_thresh + theta))
        v = where(spiked, v_reset, v)
        ref = where(spiked, ref_steps, ref)
        theta = where(spiked, theta + theta_plus, theta)
        return v, i_e, i_i, ref, theta, spiked

