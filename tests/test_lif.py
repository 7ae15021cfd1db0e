"""LIF and adaptive LIF against closed-form solutions."""

import math

import numpy as np
import pytest

import neurosim as ns


def run_single(model, steps, engine, dt=0.1, i_ext=None, dtype="float32", variables=("v",)):
    net = ns.Network(dt=dt, seed=0, dtype=dtype, **engine)
    pop = net.population(1, model, name="n")
    if i_ext is not None:
        net.step_current(pop, i_ext)
    net.state_monitor(pop, list(variables))
    net.spike_monitor(pop)
    net.run(steps=steps, progress=False)
    return net, net.reader()


def test_subthreshold_voltage_matches_closed_form(engine):
    # tau dv/dt = -(v - v_rest) + I  =>  v(t) = v_inf + (v0 - v_inf) exp(-t / tau)
    tau, v_rest, current, dt = 20.0, -65.0, 10.0, 0.1
    model = ns.LIF(tau_m=tau, v_rest=v_rest, v_thresh=-40.0, i_bias=0.0)
    _, log = run_single(model, 2000, engine, dt=dt, i_ext=current)
    steps, v = log.state("n", "v")
    # the sample of step k is the state after integrating [k dt, (k+1) dt]
    t = (steps + 1) * dt
    expected = (v_rest + current) + (v_rest - (v_rest + current)) * np.exp(-t / tau)
    rel = np.abs(v[:, 0, 0] - expected) / np.abs(expected)
    assert rel.max() < 1e-3
    # and far tighter than forward Euler would be: exact integration is exact
    assert np.abs(v[:, 0, 0] - expected).max() < 1e-3


def test_synaptic_current_kernel_matches_closed_form(engine):
    # one input spike of weight w at t=0: v(t) - v_rest = w tau_s/(tau_s - tau_m) (e^{-t/tau_s} - e^{-t/tau_m})
    tau_m, tau_s, w, dt = 20.0, 5.0, 3.0, 0.1
    net = ns.Network(dt=dt, seed=0, dtype="float64", **engine)
    gen = net.population(1, ns.SpikeGenerator([0.0], [0]), name="gen")
    pop = net.population(1, ns.LIF(tau_m=tau_m, tau_syn_e=tau_s, v_rest=-70.0, v_thresh=-50.0),
                         name="n")
    net.projection(gen, pop, ns.AllToAll(), weight=w, delay=1)
    net.state_monitor(pop, ["v", "i_e"])
    net.run(steps=1000, progress=False)
    steps, v = net.reader().state("n", "v")
    # spike of step 0 delivered at the start of step 1; sample k is at the end of step k
    t = (steps + 1 - 1) * dt
    expected = -70.0 + w * tau_s / (tau_s - tau_m) * (np.exp(-t / tau_s) - np.exp(-t / tau_m))
    assert np.abs(v[:, 0, 0] - expected).max() < 1e-9
    _, i_e = net.reader().state("n", "i_e")
    assert i_e[0, 0, 0] == 0.0 and i_e[1, 0, 0] == pytest.approx(w * math.exp(-dt / tau_s))


@pytest.mark.parametrize("t_ref", [0.0, 2.0, 5.0])
def test_firing_rate_matches_analytic_rate_with_refractoriness(t_ref, engine):
    tau, v_rest, v_reset, v_th, current = 10.0, -65.0, -65.0, -50.0, 20.0
    model = ns.LIF(tau_m=tau, v_rest=v_rest, v_reset=v_reset, v_thresh=v_th, t_ref=t_ref)
    duration = 2000.0
    _, log = run_single(model, int(duration / 0.1), engine, i_ext=current)
    steps, _, _ = log.spikes("n")
    v_inf = v_rest + current
    period = t_ref + tau * math.log((v_inf - v_reset) / (v_inf - v_th))
    isi = np.diff(steps) * 0.1
    assert abs(isi.mean() - period) / period < 0.02
    assert abs(len(steps) / (duration * 1e-3) - 1000.0 / period) / (1000.0 / period) < 0.02


def test_refractory_clamps_membrane_for_t_ref(engine):
    net, log = run_single(ns.LIF(t_ref=3.0, v_reset=-70.0, v_rest=-65.0), 400, engine, i_ext=40.0,
                          variables=("v", "ref"))
    spike_steps, _, _ = log.spikes("n")
    steps, v = log.state("n", "v")
    first = spike_steps[0]
    # held at reset for exactly t_ref / dt = 30 steps after the spike, then integrating again
    assert np.all(v[first:first + 31, 0, 0] == -70.0)
    assert v[first + 31, 0, 0] > -70.0


def test_adaptive_threshold_rises_per_spike_and_decays(engine):
    model = ns.AdaptiveLIF(theta_plus=2.0, tau_theta=100.0, t_ref=2.0)
    net, log = run_single(model, 3000, engine, i_ext=30.0, variables=("theta",))
    spike_steps, _, _ = log.spikes("n")
    _, theta = log.state("n", "theta")
    # independent computation: theta jumps by theta_plus at each spike, decays exp(-dt/tau) per step
    expected, th = [], 0.0
    spikes = set(spike_steps.tolist())
    for k in range(3000):
        th *= math.exp(-0.1 / 100.0)
        if k in spikes:
            th += 2.0
        expected.append(th)
    np.testing.assert_allclose(theta[:, 0, 0], expected, rtol=1e-4, atol=1e-5)
    isi = np.diff(spike_steps)
    assert isi[-1] > isi[0]  # adaptation lengthens the inter-spike interval


def test_lif_update_runs_on_numpy_arrays_too():
    # the one source of the equations is backend-free: it also runs on numpy
    from neurosim.kernel import NUMPY_MATH, bind

    model = ns.LIF()
    c = model.constants(model.params, 0.1)
    update = bind(ns.LIF.update, NUMPY_MATH)
    v = np.array([-65.0, -50.01])
    out = update(v, np.zeros(2), np.zeros(2), np.zeros(2), np.array([0.0, 40.0]), **c)
    assert out[-1].tolist() == [False, True]
