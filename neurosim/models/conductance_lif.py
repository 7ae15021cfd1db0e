"""Leaky integrate-and-fire neuron with conductance-based synapses and adaptive threshold."""

from __future__ import annotations

import numpy as np

from neurosim.kernel import exp, spike, where
from neurosim.models.base import NeuronModel, StateVariable, check_less
from neurosim.parameters import Parameter

_POS = dict(low=0.0, low_open=True)


class ConductanceLIF(NeuronModel):
    r"""LIF neuron with exponentially decaying synaptic conductances (Diehl & Cook 2015 style).

    .. math::

        \tau_m \frac{dv}{dt} = (v_{rest} - v) + g_e (E_e - v) + g_i (E_i - v) + i_{ext},
        \qquad \tau_e \frac{dg_e}{dt} = -g_e, \qquad \tau_i \frac{dg_i}{dt} = -g_i

    Conductances are relative to the leak (dimensionless); a spike on an
    ``"exc"`` projection adds its (positive) weight to :math:`g_e`, on ``"inh"``
    the magnitude of its (negative) weight to :math:`g_i`. (The state variable
    ``g_inh`` holds :math:`-g_i`, with the sign of inhibitory weights, so that
    synaptic input adds to it like any other.) The threshold is
    :math:`v_{thresh} + \theta`, with :math:`\theta` rising by ``theta_plus`` at each
    spike and decaying with ``tau_theta`` (homeostatic adaptive threshold; 0 and
    inf switch it off). After a spike :math:`v = v_{reset}`, held for ``t_ref``.

    Integration: the conductances decay exactly; over a step the membrane sees
    their exact mean :math:`\bar g = g\,\tau (1 - e^{-\Delta t/\tau})/\Delta t`, and
    with those held constant the linear membrane equation is solved exactly
    (exponential Euler with step-averaged conductances; second-order accurate).
    Uses ``exp`` on the state, so torch and numba agree to rounding, not bit for bit.

    Defaults are Diehl & Cook's (2015) excitatory neurons: ``v_rest`` -65 mV,
    ``v_reset`` -65, ``v_thresh`` -52, ``t_ref`` 5 ms, ``tau_m`` 100 ms, ``tau_e`` 1 ms,
    ``tau_i`` 2 ms, ``e_exc`` 0 mV, ``e_inh`` -100 mV, ``theta_plus`` 0.05 mV,
    ``tau_theta`` 1e7 ms. Their inhibitory neurons: ``v_rest`` -60, ``v_reset`` -45,
    ``v_thresh`` -40, ``t_ref`` 2, ``tau_m`` 10, ``e_inh`` -85, ``theta_plus`` 0.
    """

    parameters = {
        "tau_m": Parameter(100.0, "ms", "membrane time constant", **_POS),
        "v_rest": Parameter(-65.0, "mV", "resting potential"),
        "v_reset": Parameter(-65.0, "mV", "potential after a spike"),
        "v_thresh": Parameter(-52.0, "mV", "spike threshold (before adaptation)"),
        "t_ref": Parameter(5.0, "ms", "absolute refractory period", low=0.0),
        "tau_e": Parameter(1.0, "ms", "excitatory conductance time constant", **_POS),
        "tau_i": Parameter(2.0, "ms", "inhibitory conductance time constant", **_POS),
        "e_exc": Parameter(0.0, "mV", "excitatory reversal potential"),
        "e_inh": Parameter(-100.0, "mV", "inhibitory reversal potential"),
        "theta_plus": Parameter(0.05, "mV", "threshold increase per spike", low=0.0),
        "tau_theta": Parameter(1e7, "ms", "threshold adaptation time constant (inf: none)",
                               allow_inf=True, **_POS),
        "i_bias": Parameter(0.0, "mV", "constant input, as R*I"),
    }
    state_variables = {
        "v": StateVariable("mV", "membrane potential", init="v_rest"),
        "g_e": StateVariable("1", "excitatory conductance (relative to leak)", 0.0),
        "g_inh": StateVariable("1", "minus the inhibitory conductance (<= 0, sign of inh weights)", 0.0),
        "ref": StateVariable("steps", "refractory steps remaining", 0.0),
        "theta": StateVariable("mV", "homeostatic threshold adaptation (kept by reset_state)", 0.0,
                               learned=True),
    }
    inputs = ("i_ext",)
    receptors = {"exc": "g_e", "inh": "g_inh"}

    def check_consistency(self, p):
        check_less(type(self).__name__, p, "v_reset", "v_thresh")

    def constants(self, p, dt):
        def f(x):
            x = np.asarray(x, dtype=np.float64)
            return float(x) if x.ndim == 0 else x
        tau_e, tau_i = np.asarray(p["tau_e"], float), np.asarray(p["tau_i"], float)
        tau_theta = np.asarray(p["tau_theta"], float)
        finite = np.where(np.isinf(tau_theta), 1.0, tau_theta)
        return {
            "decay_e": f(np.exp(-dt / tau_e)), "decay_i": f(np.exp(-dt / tau_i)),
            "mean_e": f(tau_e * (1 - np.exp(-dt / tau_e)) / dt),
            "mean_i": f(tau_i * (1 - np.exp(-dt / tau_i)) / dt),
            "dt_over_tau": f(dt / np.asarray(p["tau_m"], float)),
            "v_base": f(np.asarray(p["v_rest"]) + np.asarray(p["i_bias"])),
            "e_exc": p["e_exc"], "e_inh": p["e_inh"], "v_reset": p["v_reset"],
            "v_thresh": p["v_thresh"], "ref_steps": f(np.rint(np.asarray(p["t_ref"]) / dt)),
            "decay_theta": f(np.where(np.isinf(tau_theta), 1.0, np.exp(-dt / finite))),
            "theta_plus": p["theta_plus"],
        }

    @staticmethod
    def update(v, g_e, g_inh, ref, theta, i_ext, decay_e, decay_i, mean_e, mean_i, dt_over_tau,
               v_base, e_exc, e_inh, v_reset, v_thresh, ref_steps, decay_theta, theta_plus):
        ge = g_e * mean_e
        gi = -g_inh * mean_i
        g = 1.0 + ge + gi
        v_inf = (v_base + i_ext + ge * e_exc + gi * e_inh) / g
        v_free = v_inf + (v - v_inf) * exp(-dt_over_tau * g)
        refractory = ref > 0.5
        v = where(refractory, v_reset, v_free)
        ref = where(refractory, ref - 1.0, ref)
        theta = theta * decay_theta
        spiked = spike(v - (v_thresh + theta))
        v = where(spiked, v_reset, v)
        ref = where(spiked, ref_steps, ref)
        theta = where(spiked, theta + theta_plus, theta)
        return v, g_e * decay_e, g_inh * decay_i, ref, theta, spiked
