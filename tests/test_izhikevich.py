"""Izhikevich neuron against an independent scipy solve_ivp integration."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import neurosim as ns
from neurosim.models.izhikevich import PRESETS

T_ON, CURRENT, DURATION = 10.0, 10.0, 200.0


def reference_spikes(a, b, c, d, n=5):
    """Spike times from solve_ivp with the threshold crossing as a terminal event."""
    def rhs(t, y, current):
        v, u = y
        return [0.04 * v * v + 5 * v + 140 - u + current, a * (b * v - u)]

    def crossing(t, y, current):
        return y[0] - 30.0
    crossing.terminal, crossing.direction = True, 1
    y = solve_ivp(rhs, (0.0, T_ON), [-65.0, b * -65.0], args=(0.0,), rtol=1e-10, atol=1e-10).y[:, -1]
    t, spikes = T_ON, []
    while len(spikes) < n:
        sol = solve_ivp(rhs, (t, DURATION), y, args=(CURRENT,), events=crossing, rtol=1e-10,
                        atol=1e-10, max_step=0.5)
        assert sol.t_events[0].size, "reference neuron stopped firing"
        t = sol.t_events[0][0]
        spikes.append(t)
        y = [c, sol.y_events[0][0][1] + d]
    return np.array(spikes)


def simulated_spikes(dt, engine, preset="regular_spiking", dtype="float32"):
    net = ns.Network(dt=dt, seed=0, dtype=dtype, **engine)
    pop = net.population(1, ns.Izhikevich.preset(preset), name="n")
    net.step_current(pop, CURRENT, start_ms=T_ON)
    net.spike_monitor(pop)
    net.run(DURATION, progress=False)
    return net.reader().spike_times("n")[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_regular_spiking_matches_solve_ivp_and_converges(dtype, engine):
    ref = reference_spikes(**PRESETS["regular_spiking"])
    err = {}
    for dt in (0.1, 0.05):
        sim = simulated_spikes(dt, engine, dtype=dtype)
        assert sim.size >= 5
        err[dt] = np.abs(sim[:5] - ref).max()
    assert err[0.1] < 0.5
    assert err[0.05] < err[0.1]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_fire_with_their_characteristic_pattern(preset, engine):
    sim = simulated_spikes(0.1, engine, preset)
    ref = reference_spikes(**PRESETS[preset], n=3)
    assert np.abs(sim[:3] - ref).max() < 0.5
    isi = np.diff(sim)
    if preset == "fast_spiking":
        assert isi.min() > 0 and isi.std() / isi.mean() < 0.2   # tonic, regular, no adaptation
    if preset in ("intrinsically_bursting", "chattering"):
        assert isi.min() < 10.0  # bursts: short intra-burst intervals


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown preset 'bursty'"):
        ns.Izhikevich.preset("bursty")
