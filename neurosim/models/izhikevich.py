"""Izhikevich (2003) simple spiking neuron."""

from __future__ import annotations

import numpy as np

from neurosim.kernel import kernel, spike, where
from neurosim.models.base import NeuronModel, StateVariable
from neurosim.parameters import Parameter

#: The standard parameter sets (a, b, c, d) of Izhikevich (2003), Fig. 2.
PRESETS: dict[str, dict[str, float]] = {
    "regular_spiking": {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0},
    "intrinsically_bursting": {"a": 0.02, "b": 0.2, "c": -55.0, "d": 4.0},
    "chattering": {"a": 0.02, "b": 0.2, "c": -50.0, "d": 2.0},
    "fast_spiking": {"a": 0.1, "b": 0.2, "c": -65.0, "d": 2.0},
}


@kernel
def izhikevich_derivatives(v, u, current, a, b, v_peak):
    """(dv/dt, du/dt) with v capped at the peak so a step that crosses it stays finite."""
    v = where(v > v_peak, v_peak, v)
    dv = 0.04 * v * v + 5.0 * v + 140.0 - u + current
    du = a * (b * v - u)
    return dv, du


class Izhikevich(NeuronModel):
    r"""Izhikevich (2003) neuron: quadratic membrane with a recovery variable.

    .. math::

        \frac{dv}{dt} = 0.04 v^2 + 5 v + 140 - u + I,\qquad
        \frac{du}{dt} = a (b v - u),\qquad
        v \ge v_{peak}:\ v \leftarrow c,\ u \leftarrow u + d

    with time in ms, :math:`v` in mV and :math:`I = i_{bias} + i_{ext} + i_{syn}`
    in the model's dimensionless current units. Synaptic input (``"exc"`` or
    ``"inh"``, signed weights) adds to :math:`i_{syn}`, which decays with
    ``tau_syn``. The equations are not linear, so each step is one classical
    Runge-Kutta (RK4) step, with the decay of :math:`i_{syn}` inside the step
    integrated exactly.

    Presets (Izhikevich 2003, Fig. 2): ``Izhikevich.preset("regular_spiking")``,
    ``"intrinsically_bursting"``, ``"chattering"``, ``"fast_spiking"``.

    Reference: E. M. Izhikevich, Simple model of spiking neurons, IEEE Trans.
    Neural Netw. 14(6):1569-1572, 2003.
    """

    parameters = {
        "a": Parameter(0.02, "1/ms", "recovery rate", low=0.0, low_open=True),
        "b": Parameter(0.2, "1", "sensitivity of u to v"),
        "c": Parameter(-65.0, "mV", "reset potential"),
        "d": Parameter(8.0, "1", "reset increment of u"),
        "v_peak": Parameter(30.0, "mV", "spike cut-off"),
        "tau_syn": Parameter(5.0, "ms", "synaptic current time constant", low=0.0, low_open=True),
        "i_bias": Parameter(0.0, "1", "constant input current"),
        "v_init": Parameter(-65.0, "mV", "initial membrane potential"),
    }
    state_variables = {
        "v": StateVariable("mV", "membrane potential", init="v_init"),
        "u": StateVariable("1", "recovery variable (initialised to b*v_init)", init="u_init"),
        "i_syn": StateVariable("1", "synaptic current", 0.0),
    }
    inputs = ("i_ext",)
    receptors = {"exc": "i_syn", "inh": "i_syn"}

    @classmethod
    def preset(cls, name: str, **overrides: float) -> "Izhikevich":
        """One of the standard parameter sets, optionally with overrides."""
        if name not in PRESETS:
            raise ValueError(f"Izhikevich: unknown preset {name!r}; known: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def check_consistency(self, p):
        if np.any(np.asarray(p["c"]) >= np.asarray(p["v_peak"])):
            raise ValueError("Izhikevich: reset potential 'c' must be below 'v_peak'")

    def initial_values(self, p):
        return {"u_init": np.asarray(p["b"]) * np.asarray(p["v_init"])}

    def constants(self, p, dt):
        tau = np.asarray(p["tau_syn"], dtype=np.float64)
        half = np.exp(-0.5 * dt / tau)
        f = (lambda x: float(x) if np.ndim(x) == 0 else x)
        return {"dt": dt, "a": p["a"], "b": p["b"], "c": p["c"], "d": p["d"],
                "v_peak": p["v_peak"], "i_bias": p["i_bias"],
                "syn_half": f(half), "syn_full": f(half * half)}

    @staticmethod
    def update(v, u, i_syn, i_ext, dt, a, b, c, d, v_peak, i_bias, syn_half, syn_full):
        i0 = i_bias + i_ext + i_syn
        ih = i_bias + i_ext + i_syn * syn_half
        i1 = i_bias + i_ext + i_syn * syn_full
        k1v, k1u = izhikevich_derivatives(v, u, i0, a, b, v_peak)
        k2v, k2u = izhikevich_derivatives(v + 0.5 * dt * k1v, u + 0.5 * dt * k1u, ih, a, b, v_peak)
        k3v, k3u = izhikevich_derivatives(v + 0.5 * dt * k2v, u + 0.5 * dt * k2u, ih, a, b, v_peak)
        k4v, k4u = izhikevich_derivatives(v + dt * k3v, u + dt * k3u, i1, a, b, v_peak)
        v = v + dt / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v)
        u = u + dt / 6.0 * (k1u + 2.0 * k2u + 2.0 * k3u + k4u)
        spiked = spike(v - v_peak)
        v = where(spiked, c, v)
        u = where(spiked, u + d, u)
        return v, u, i_syn * syn_full, spiked
