"""Leaky integrate-and-fire neuron with exponential current synapses."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from neurosim.kernel import kernel, spike, where
from neurosim.models.base import NeuronModel, StateVariable, check_less
from neurosim.parameters import Parameter

_POSITIVE = dict(low=0.0, low_open=True)


def synaptic_propagator(tau_syn: Any, tau_m: Any, dt: float) -> Any:
    """Exact contribution to v(t+dt) of a unit exponential current present at t.

    For ``tau_m dv/dt = -(v - v_inf) + i``, ``tau_syn di/dt = -i``, the solution
    over one step gives ``v += P * i(t)`` with
    ``P = tau_syn / (tau_syn - tau_m) * (exp(-dt/tau_syn) - exp(-dt/tau_m))``,
    whose limit for ``tau_syn == tau_m`` is ``(dt/tau_m) exp(-dt/tau_m)``.
    """
    tau_syn = np.asarray(tau_syn, dtype=np.float64)
    tau_m = np.asarray(tau_m, dtype=np.float64)
    same = np.isclose(tau_syn, tau_m, rtol=1e-9, atol=0.0)
    safe = np.where(same, tau_syn + 1.0, tau_syn)  # keep the unused branch finite
    general = safe / (safe - tau_m) * (np.exp(-dt / safe) - np.exp(-dt / tau_m))
    limit = dt / tau_m * np.exp(-dt / tau_m)
    out = np.where(same, limit, general)
    return float(out) if out.ndim == 0 else out


def membrane_constants(p: Mapping[str, Any], dt: float) -> dict[str, Any]:
    """Propagators shared by LIF and adaptive LIF (exact integration, cf. Rotter & Diesmann 1999)."""
    return {
        "decay_m": _exp(-dt / np.asarray(p["tau_m"])),
        "decay_e": _exp(-dt / np.asarray(p["tau_syn_e"])),
        "decay_i": _exp(-dt / np.asarray(p["tau_syn_i"])),
        "prop_e": synaptic_propagator(p["tau_syn_e"], p["tau_m"], dt),
        "prop_i": synaptic_propagator(p["tau_syn_i"], p["tau_m"], dt),
        "v_base": _scalar(np.asarray(p["v_rest"]) + np.asarray(p["i_bias"])),
        "v_reset": p["v_reset"],
        "ref_steps": _scalar(np.rint(np.asarray(p["t_ref"]) / dt)),
    }


def _exp(x: np.ndarray) -> Any:
    return _scalar(np.exp(x))


def _scalar(x: Any) -> Any:
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


@kernel
def membrane_step(v, i_e, i_i, ref, i_ext, decay_m, decay_e, decay_i, prop_e, prop_i,
                  v_base, v_reset):
    """One exact step of the subthreshold LIF dynamics with refractory clamp.

    Returns (v, i_e, i_i, ref) before the threshold test; ``ref`` counts the
    refractory steps left (the neuron is held at ``v_reset`` while it is > 0).
    """
    v_inf = v_base + i_ext
    v_free = v_inf + (v - v_inf) * decay_m + prop_e * i_e + prop_i * i_i
    refractory = ref > 0.5
    v_new = where(refractory, v_reset, v_free)
    ref_new = where(refractory, ref - 1.0, ref)
    return v_new, i_e * decay_e, i_i * decay_i, ref_new


LIF_PARAMETERS = {
    "tau_m": Parameter(20.0, "ms", "membrane time constant", **_POSITIVE),
    "v_rest": Parameter(-65.0, "mV", "resting (leak reversal) potential"),
    "v_reset": Parameter(-65.0, "mV", "potential after a spike"),
    "v_thresh": Parameter(-50.0, "mV", "spike threshold"),
    "t_ref": Parameter(2.0, "ms", "absolute refractory period", low=0.0),
    "tau_syn_e": Parameter(5.0, "ms", "excitatory synaptic current time constant", **_POSITIVE),
    "tau_syn_i": Parameter(10.0, "ms", "inhibitory synaptic current time constant", **_POSITIVE),
    "i_bias": Parameter(0.0, "mV", "constant input current, as R*I (voltage units)"),
}

LIF_STATE = {
    "v": StateVariable("mV", "membrane potential", init="v_rest"),
    "i_e": StateVariable("mV", "excitatory synaptic current, as R*I", 0.0),
    "i_i": StateVariable("mV", "inhibitory synaptic current, as R*I", 0.0),
    "ref": StateVariable("steps", "refractory steps remaining", 0.0),
}


class LIF(NeuronModel):
    r"""Leaky integrate-and-fire neuron with exponentially decaying synaptic currents.

    .. math::

        \tau_m \frac{dv}{dt} = -(v - v_{rest}) + i_e + i_i + i_{bias} + i_{ext},\qquad
        \tau_{e} \frac{di_e}{dt} = -i_e,\qquad \tau_{i} \frac{di_i}{dt} = -i_i

    Currents are in voltage units (R times the current, mV), as in the
    Vogels & Abbott (2005) CUBA benchmark. A presynaptic spike on an ``"exc"``
    projection adds its weight (mV) to :math:`i_e`, on ``"inh"`` to :math:`i_i`.
    When :math:`v \ge v_{thresh}` the neuron spikes, :math:`v` is set to
    :math:`v_{reset}` and held there for ``t_ref`` ms (rounded to whole steps).

    The linear dynamics are integrated exactly over each step (the propagator
    method of Rotter & Diesmann 1999, as in NEST's ``iaf_psc_exp`` and Brian2's
    ``exact`` method), so the membrane matches the closed form at any ``dt``.

    Example:
        >>> import neurosim as ns
        >>> net = ns.Network(dt=0.1, seed=1)
        >>> pop = net.population(10, ns.LIF(tau_m=20.0, i_bias=20.0), name="lif")
        >>> net.run(100.0, progress=False)
    """

    parameters = LIF_PARAMETERS
    state_variables = LIF_STATE
    inputs = ("i_ext",)
    receptors = {"exc": "i_e", "inh": "i_i"}

    def check_consistency(self, p):
        check_less(type(self).__name__, p, "v_reset", "v_thresh")

    def constants(self, p, dt):
        return {**membrane_constants(p, dt), "v_thresh": p["v_thresh"]}

    @staticmethod
    def update(v, i_e, i_i, ref, i_ext, decay_m, decay_e, decay_i, prop_e, prop_i,
               v_base, v_reset, ref_steps, v_thresh):
        v, i_e, i_i, ref = membrane_step(v, i_e, i_i, ref, i_ext, decay_m, decay_e, decay_i,
                                         prop_e, prop_i, v_base, v_reset)
        spiked = spike(v - v_thresh)
        v = where(spiked, v_reset, v)
        ref = where(spiked, ref_steps, ref)
        return v, i_e, i_i, ref, spiked
