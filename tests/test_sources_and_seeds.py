"""Poisson statistics, spike replay, and reproducibility from the seed."""

import math

import numpy as np
import pytest

import neurosim as ns


def poisson_counts(seed, rate=20.0, n=500, duration=1000.0, batch=1):
    net = ns.Network(dt=0.1, seed=seed, batch=batch)
    src = net.population(n, ns.PoissonSource(rate=rate), name="src")
    net.spike_monitor(src)
    net.run(duration, progress=False)
    return net.reader().spikes("src")


def test_poisson_rate_within_three_standard_errors():
    rate, n, duration = 20.0, 500, 1000.0
    steps, neurons, _ = poisson_counts(1, rate, n, duration)
    counts = np.bincount(neurons, minlength=n)
    expected = rate * duration * 1e-3
    # Bernoulli per step: variance of a count is N p (1 - p)
    p = rate * 0.1e-3
    se_mean = math.sqrt(duration / 0.1 * p * (1 - p)) / math.sqrt(n)
    assert abs(counts.mean() - expected) < 3 * se_mean
    # and the counts are Poisson-like: Fano factor near 1
    assert 0.8 < counts.var() / counts.mean() < 1.2


def test_poisson_per_neuron_and_per_sample_rates(engine):
    net = ns.Network(dt=0.1, seed=3, batch=2, **engine)
    rates = np.array([[0.0, 50.0, 200.0], [200.0, 0.0, 50.0]])
    src = net.population(3, ns.PoissonSource(rate=10.0), name="src")
    src.set_parameters(rate=rates)
    net.spike_monitor(src)
    net.run(2000.0, progress=False)
    _, neurons, rows = net.reader().spikes("src")
    counts = np.zeros((2, 3))
    np.add.at(counts, (rows, neurons), 1)
    expected = rates * 2.0
    assert np.all(counts[expected == 0] == 0)
    nz = expected > 0
    assert np.all(np.abs(counts[nz] - expected[nz]) < 4 * np.sqrt(expected[nz]))


def test_same_seed_same_spikes_and_different_seed_differs():
    a = poisson_counts(7)
    b = poisson_counts(7)
    c = poisson_counts(8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a[0].shape != c[0].shape or np.any(a[0] != c[0]) or np.any(a[1] != c[1])


def test_same_seed_gives_identical_network_activity():
    def run(seed):
        net = ns.Network(dt=0.1, seed=seed)
        from neurosim.networks import build_cuba
        cuba = build_cuba(net, 500)
        net.spike_monitor(cuba.exc)
        net.run(200.0, progress=False)
        return net.reader().spikes("exc")
    a, b, c = run(11), run(11), run(12)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert a[0].size != c[0].size or np.any(a[1] != c[1])


def test_adding_a_component_does_not_shift_another_components_stream():
    net1 = ns.Network(dt=0.1, seed=5)
    s1 = net1.population(50, ns.PoissonSource(rate=30.0), name="a")
    net1.spike_monitor(s1)
    net1.run(100.0, progress=False)
    net2 = ns.Network(dt=0.1, seed=5)
    net2.population(70, ns.PoissonSource(rate=30.0), name="other")
    s2 = net2.population(50, ns.PoissonSource(rate=30.0), name="a")
    net2.spike_monitor(s2)
    net2.run(100.0, progress=False)
    for x, y in zip(net1.reader().spikes("a"), net2.reader().spikes("a")):
        np.testing.assert_array_equal(x, y)


def test_spike_generator_replays_given_times_per_batch_row(engine):
    net = ns.Network(dt=0.1, seed=0, batch=2, **engine)
    gen = net.population(4, ns.SpikeGenerator(times_ms=[0.0, 1.23, 5.0, 5.0], neurons=[0, 3, 1, 2],
                                              batch=[0, 1, 1, 0]), name="gen")
    net.spike_monitor(gen)
    net.run(10.0, progress=False)
    steps, neurons, rows = net.reader().spikes("gen")
    got = sorted(zip(steps.tolist(), rows.tolist(), neurons.tolist()))
    assert got == [(0, 0, 0), (12, 1, 3), (50, 0, 2), (50, 1, 1)]


def test_spike_generator_without_batch_repeats_in_every_row(engine):
    net = ns.Network(dt=0.5, seed=0, batch=3, **engine)
    gen = net.population(2, ns.SpikeGenerator([1.0, 2.0], [1, 0]), name="gen")
    net.spike_monitor(gen)
    net.run(5.0, progress=False)
    steps, neurons, rows = net.reader().spikes("gen")
    assert sorted(zip(rows.tolist(), steps.tolist(), neurons.tolist())) == [
        (r, s, n) for r in range(3) for s, n in ((2, 1), (4, 0))]


def test_random_initial_values_are_seeded_and_in_range():
    def init(seed):
        net = ns.Network(dt=0.1, seed=seed)
        pop = net.population(1000, ns.LIF(), name="p", init={"v": ns.Uniform(-60.0, -50.0)})
        return pop.state["v"].clone()
    a, b, c = init(1), init(1), init(2)
    assert (a == b).all() and not (a == c).all()
    assert a.min() >= -60.0 and a.max() < -50.0


@pytest.mark.parametrize("rate", [-1.0, float("nan")])
def test_bad_poisson_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        ns.PoissonSource(rate=rate)


def test_rate_above_one_spike_per_step_is_rejected():
    net = ns.Network(dt=1.0)
    with pytest.raises(ValueError, match="exceeds one spike per step"):
        net.population(3, ns.PoissonSource(rate=2000.0))


def test_spike_generator_refuses_two_spikes_of_a_neuron_in_one_step():
    # 5.0 and 5.04 ms both fall in step 50 at dt 0.1: delivering them as one spike
    # would halve the input silently
    net = ns.Network(dt=0.1, seed=0)
    with pytest.raises(ValueError, match=r"neuron 1 \(batch row 0\) has 2 spikes in step 50 "
                                         r"\(at 5, 5.04 ms.*smaller dt"):
        net.population(3, ns.SpikeGenerator([1.0, 5.0, 5.04], [1, 1, 1]), name="gen")
    # the same times on different neurons, or in different rows, are fine
    net.population(3, ns.SpikeGenerator([5.0, 5.04], [1, 2]), name="ok")
    net2 = ns.Network(dt=0.1, seed=0, batch=2)
    net2.population(2, ns.SpikeGenerator([5.0, 5.04], [1, 1], batch=[0, 1]), name="rows")
    net4 = ns.Network(dt=0.1, seed=0, batch=2)  # without rows, every row repeats the spikes
    with pytest.raises(ValueError, match=r"neuron 1 \(batch row 0\) has 2 spikes"):
        net4.population(2, ns.SpikeGenerator([5.0, 5.04], [1, 1]), name="repeated")
    with pytest.raises(ValueError, match=r"neuron 1 \(batch row 1\) has 2 spikes in step 50 \(at 5, "
                                         r"5.04 ms"):  # 4.98 ms is row 0's, not listed
        net4.population(2, ns.SpikeGenerator([4.98, 5.0, 5.04], [1, 1, 1], batch=[0, 1, 1]),
                        name="row1")
    net3 = ns.Network(dt=0.01, seed=0)  # a finer step separates them
    gen = net3.population(2, ns.SpikeGenerator([5.0, 5.04], [1, 1]), name="fine")
    net3.spike_monitor(gen)
    net3.run(6.0, progress=False)
    assert net3.reader().spikes("fine")[0].tolist() == [500, 504]


def test_diehl_cook_initial_weights_come_from_the_projections_named_stream():
    from neurosim.networks.diehl_cook import DiehlCook2015
    from neurosim.seeding import numpy_stream

    w = DiehlCook2015(10, seed=3).input_exc.weight_matrix()
    # the paper code's 0.3 * (U[0, 1) + 0.01), from the stream named after the projection,
    # not from np.random.default_rng(seed) (which any user code seeded alike would share)
    expected = numpy_stream(3, "projection/input_exc").uniform(0.003, 0.303, size=784 * 10)
    np.testing.assert_allclose(np.asarray(w).ravel(), expected.astype(np.float32), rtol=1e-6)
    legacy = 0.3 * (np.random.default_rng(3).random((784, 10)) + 0.01)
    assert not np.allclose(np.asarray(w), legacy)
