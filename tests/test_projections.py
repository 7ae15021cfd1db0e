"""Connectors, dense vs CSR delivery, delays."""

import numpy as np
import pytest
import torch

import neurosim as ns


def test_fixed_probability_statistics_and_seeding():
    def build(seed):
        net = ns.Network(seed=seed)
        a = net.population(400, ns.PoissonSource(), name="a")
        b = net.population(300, ns.LIF(), name="b")
        return net.projection(a, b, ns.FixedProbability(0.05), weight=1.0)
    p1, p2, p3 = build(1), build(1), build(2)
    n_pairs = 400 * 300
    se = np.sqrt(n_pairs * 0.05 * 0.95)
    assert abs(p1.nnz - 0.05 * n_pairs) < 4 * se
    assert p1.sparse
    np.testing.assert_array_equal(p1.weight_matrix(), p2.weight_matrix())
    assert not np.array_equal(p1.weight_matrix(), p3.weight_matrix())
    # in-degrees are binomial(400, 0.05): mean 20
    indeg = (p1.weight_matrix() != 0).sum(axis=0)
    assert abs(indeg.mean() - 20) < 1.0


def test_no_autapses_option():
    net = ns.Network()
    a = net.population(50, ns.LIF(), name="a")
    proj = net.projection(a, a, ns.AllToAll(allow_autapses=False), weight=0.1)
    w = proj.weight_matrix()
    assert np.all(np.diag(w) == 0) and (w != 0).sum() == 50 * 49


def test_one_to_one_and_from_matrix():
    net = ns.Network()
    a = net.population(4, ns.PoissonSource(), name="a")
    b = net.population(4, ns.LIF(), name="b")
    p = net.projection(a, b, ns.OneToOne(), weight=np.arange(4.0))
    np.testing.assert_array_equal(p.weight_matrix(), np.diag([0.0, 1.0, 2.0, 3.0]))
    m = np.array([[0, 1.5, 0, 0], [0, 0, 0, 2.0], [0, 0, 0, 0], [0.5, 0, 0, 0]])
    q = net.projection(a, b, ns.FromMatrix(m))
    np.testing.assert_array_equal(q.weight_matrix(), m)


def build_pair(sparse, engine, batch=1, delay=1, seed=3):
    net = ns.Network(dt=0.1, seed=seed, batch=batch, dtype="float64", **engine)
    src = net.population(200, ns.PoissonSource(rate=40.0), name="src")
    dst = net.population(150, ns.LIF(), name="dst")
    proj = net.projection(src, dst, ns.FixedProbability(0.2), weight=ns.Uniform(0.0, 1.0),
                          sparse=sparse, delay=delay)
    net.state_monitor(dst, ["i_e"])
    net.spike_monitor(src)
    return net, proj


@pytest.mark.parametrize("batch", [1, 20])
def test_event_driven_delivery_equals_dense_matrix_product(batch, engine):
    # the input each step must be exactly W^T s(t-1), computed independently here
    net_s, proj_s = build_pair(True, engine, batch=batch)
    net_d, proj_d = build_pair(False, engine, batch=batch)
    np.testing.assert_array_equal(proj_s.weight_matrix(), proj_d.weight_matrix())
    for net in (net_s, net_d):
        net.run(steps=200, progress=False)
    W = proj_s.weight_matrix()
    steps, neurons, rows = net_s.reader().spikes("src")
    raster = np.zeros((200, batch, 200))
    raster[steps, rows, neurons] = 1.0
    decay = np.exp(-0.1 / 5.0)
    expected = np.zeros((batch, 150))
    ref = []
    for k in range(200):
        expected = expected + (raster[k - 1] @ W if k >= 1 else 0.0)  # delivered, then decays
        expected = expected * decay
        ref.append(expected.copy())
    ref = np.array(ref)
    for net in (net_s, net_d):
        _, i_e = net.reader().state("dst", "i_e")
        np.testing.assert_allclose(i_e, ref, rtol=1e-9, atol=1e-9)


def test_uniform_delay_shifts_arrival(engine):
    def first_input_step(delay):
        net = ns.Network(dt=0.1, seed=0, **engine)
        gen = net.population(1, ns.SpikeGenerator([1.0], [0]), name="g")
        post = net.population(1, ns.LIF(), name="p")
        net.projection(gen, post, weight=1.0, delay=delay)
        net.state_monitor(post, ["i_e"])
        net.run(steps=100, progress=False)
        steps, i_e = net.reader().state("p", "i_e")
        return steps[np.nonzero(i_e[:, 0, 0])[0][0]]
    # a spike in step 10 with delay d is delivered at the start of step 10 + d
    assert [first_input_step(d) for d in (1, 2, 7, 25)] == [11, 12, 17, 35]


def test_per_synapse_delays_deliver_each_at_its_own_step(engine):
    net = ns.Network(dt=0.1, seed=0, **engine)
    gen = net.population(2, ns.SpikeGenerator([0.0, 0.0], [0, 1]), name="g")
    post = net.population(3, ns.LIF(), name="p")
    delays = np.array([[1, 4, 9], [2, 2, 5]])
    weights = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    proj = net.projection(gen, post, weight=weights, delay=delays)
    assert proj.sparse and sorted(b.delay for b in proj.blocks) == [1, 2, 4, 5, 9]
    net.state_monitor(post, ["i_e"])
    net.run(steps=12, progress=False)
    _, i_e = net.reader().state("p", "i_e")
    decay = np.exp(-0.1 / 5.0)
    expected = np.zeros((12, 3))
    for i in range(2):
        for j in range(3):
            d = delays[i, j]
            expected[d:, j] += weights[i, j] * decay ** (np.arange(12 - d) + 1)
    np.testing.assert_allclose(i_e[:, 0, :], expected, rtol=1e-5)


def test_inhibitory_receptor_lowers_membrane(engine):
    net = ns.Network(dt=0.1, **engine)
    gen = net.population(1, ns.SpikeGenerator([0.0], [0]), name="g")
    post = net.population(1, ns.LIF(), name="p")
    net.projection(gen, post, weight=-5.0, receptor="inh")
    net.state_monitor(post, ["v", "i_i"])
    net.run(steps=50, progress=False)
    _, v = net.reader().state("p", "v")
    assert v[-1, 0, 0] < -65.0


def test_set_weights_and_weight_matrix_round_trip():
    net = ns.Network()
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(2, ns.LIF(), name="b")
    p = net.projection(a, b, weight=1.0, sparse=False)
    p.set_weights(torch.full((3, 2), 0.5))
    assert np.all(p.weight_matrix() == 0.5)
    with pytest.raises(ValueError, match="NaN"):
        p.set_weights(torch.full((3, 2), float("nan")))


@pytest.mark.parametrize("sparse", [True, False])
def test_scalar_weight_keeps_float64_precision(sparse):
    net = ns.Network(dtype="float64", backend="torch")
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(3, ns.LIF(), name="b")
    scalar = net.projection(a, b, weight=0.9, sparse=sparse)
    array = net.projection(a, b, weight=np.full((3, 3), 0.9), sparse=sparse)
    assert scalar.weight.dtype == torch.float64
    assert (scalar.weight == 0.9).all() and torch.equal(scalar.weight, array.weight)
