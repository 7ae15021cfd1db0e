"""Conductance-based LIF against an independent solve_ivp integration."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import neurosim as ns

P = dict(tau_m=20.0, v_rest=-65.0, v_thresh=-40.0, tau_e=2.0, tau_i=5.0, e_exc=0.0, e_inh=-80.0,
         theta_plus=0.0)
W_E, W_I = 1.0, -1.5


def reference(t_end, times):
    """v(t) after an excitatory spike at 1 ms and an inhibitory one at 6 ms (times of effect)."""
    def rhs(t, y):
        v = y[0]
        ge = W_E * np.exp(-(t - 1.0) / P["tau_e"]) if t >= 1.0 else 0.0
        gi = -W_I * np.exp(-(t - 6.0) / P["tau_i"]) if t >= 6.0 else 0.0
        return [((P["v_rest"] - v) + ge * (P["e_exc"] - v) + gi * (P["e_inh"] - v)) / P["tau_m"]]
    sol = solve_ivp(rhs, (0, t_end), [P["v_rest"]], t_eval=times, rtol=1e-11, atol=1e-11,
                    max_step=0.01)
    return sol.y[0]


def simulate(dt, engine):
    net = ns.Network(dt=dt, seed=0, dtype="float64", **engine)
    # spikes emitted one step before they take effect (delay 1)
    ge = net.population(1, ns.SpikeGenerator([1.0 - dt], [0]), name="e")
    gi = net.population(1, ns.SpikeGenerator([6.0 - dt], [0]), name="i")
    n = net.population(1, ns.ConductanceLIF(**P), name="n")
    net.projection(ge, n, weight=W_E)
    net.projection(gi, n, weight=W_I, receptor="inh")
    net.state_monitor(n, ["v"])
    net.run(40.0, progress=False)
    steps, v = net.reader().state("n", "v")
    return (steps + 1) * dt, v[:, 0, 0]


def test_membrane_matches_solve_ivp_and_converges(engine):
    errors = []
    for dt in (0.1, 0.05):
        t, v = simulate(dt, engine)
        ref = reference(40.0, t)
        errors.append(np.abs(v - ref).max())
    deflection = np.abs(ref - P["v_rest"]).max()
    assert deflection > 3.0  # the inputs really move the membrane, both ways
    assert errors[0] < 0.01 * deflection
    assert errors[1] < errors[0] / 2  # second order: the error falls about fourfold


def test_adaptive_threshold_and_refractoriness(engine):
    net = ns.Network(dt=0.1, seed=0, **engine)
    n = net.population(1, ns.ConductanceLIF(theta_plus=1.0, tau_theta=float("inf"), i_bias=30.0,
                                            t_ref=5.0), name="n")
    net.state_monitor(n, ["theta"])
    net.spike_monitor(n)
    net.run(1000.0, progress=False)
    steps, _, _ = net.reader().spikes("n")
    _, theta = net.reader().state("n", "theta")
    assert theta[-1, 0, 0] == pytest.approx(float(len(steps)))  # +1 mV per spike, no decay
    isi = np.diff(steps)
    assert isi.min() > 50 and isi[-1] > isi[0]  # refractory, and adaptation slows firing
