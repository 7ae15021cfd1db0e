"""The structured SNN's parts: small-world and explicit-pair connectors, the e-prop
eligibility rule, and the population error signal.

The connectors are checked against their definition (degree, rewired fraction,
lattice neighbours); the rule against hand-computed traces (decay with its time
constant, zero change without a learning signal), against four batch-1 runs
(batch 4), and across backends; the signal against a numpy count of recorded spikes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.rules import EProp

BACKENDS = ("torch", "numba")


# -- connectors ---------------------------------------------------------------------------
def test_watts_strogatz_lattice_is_the_k_nearest_neighbours():
    rows, cols = ns.WattsStrogatz(4, 0.0).pairs(12, 12, np.random.default_rng(0), True)
    targets = cols.reshape(12, 4)
    for i in range(12):  # k/2 on each side, itself excluded (Watts & Strogatz's ring)
        assert sorted(targets[i]) == sorted(((i + d) % 12) for d in (-2, -1, 1, 2))
    # onto a smaller ring: each presynaptic neuron reaches the targets nearest its position
    rows, cols = ns.WattsStrogatz(2, 0.0).pairs(40, 10, np.random.default_rng(0), False)
    assert set(cols.reshape(40, 2)[21]) == {5, 4}  # position 21.5/40 of the ring = 5.375/10


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 1.0])
def test_watts_strogatz_degree_and_rewired_fraction(p):
    n, k = 2000, 10
    ws = ns.WattsStrogatz(k, p)
    rows, cols = ws.pairs(n, n, np.random.default_rng(7), True)
    assert np.all(np.bincount(rows, minlength=n) == k)  # every neuron keeps degree k
    assert not np.any(rows == cols)  # no autapses
    key = rows * n + cols
    assert np.unique(key).size == key.size  # no pair twice
    lattice = ws.lattice(n, n, True)
    in_lattice = (lattice[rows] == cols[:, None]).any(axis=1)
    long_range = 1.0 - in_lattice.mean()
    assert (~in_lattice).sum() <= ws.rewired  # (a redrawn edge may land back in the lattice)
    sd = math.sqrt(p * (1 - p) / (n * k))
    assert abs(ws.rewired / (n * k) - p) <= 5 * sd + 1e-12
    assert abs(long_range - p) <= 5 * sd + 2 * k / n, (long_range, p)


@pytest.mark.parametrize("seed", range(5))
def test_watts_strogatz_rewires_even_a_dense_ring(seed):
    for k, p in ((6, 1.0), (9, 0.5), (9, 1.0)):  # k = n - 1: the complete graph, whatever p
        rows, cols = ns.WattsStrogatz(k, p).pairs(10, 10, np.random.default_rng(seed), True)
        assert np.all(np.bincount(rows, minlength=10) == k) and not np.any(rows == cols)
        assert np.unique(rows * 10 + cols).size == rows.size


def test_watts_strogatz_in_a_projection_is_seeded_and_refuses_bad_arguments():
    def build(seed):
        net = ns.Network(dt=1.0, seed=seed)
        a = net.population(300, ns.SnnTorchLeaky(), name="a")
        return net.projection(a, a, ns.WattsStrogatz(6, 0.2), weight=0.1, receptor="syn")
    p1, p2, p3 = build(1), build(1), build(2)
    assert p1.sparse and p1.nnz == 300 * 6
    assert torch.equal(p1.indices, p2.indices) and not torch.equal(p1.indices, p3.indices)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ns.WattsStrogatz(0, 0.1)
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\]"):
        ns.WattsStrogatz(3, 1.5)
    with pytest.raises(ValueError, match="k=5 but a presynaptic neuron can reach only 4"):
        ns.WattsStrogatz(5, 0.0).pairs(5, 5, np.random.default_rng(0), True)


def test_from_pairs_builds_the_listed_synapses_in_any_order():
    pre, post = np.array([3, 0, 2, 0]), np.array([1, 4, 0, 2])
    net = ns.Network(dt=1.0)
    a = net.population(4, ns.SnnTorchLeaky(), name="a")
    b = net.population(5, ns.SnnTorchLeaky(), name="b")
    proj = net.projection(a, b, ns.FromPairs(pre, post, weights=[0.3, 0.1, 0.2, 0.4]),
                          receptor="syn", sparse=True)
    dense = proj.weight_matrix()
    expected = np.zeros((4, 5), np.float32)
    expected[pre, post] = [0.3, 0.1, 0.2, 0.4]
    np.testing.assert_array_equal(dense, expected)
    same = net.projection(a, b, ns.FromPairs(pre[::-1], post[::-1]), weight=1.0, receptor="syn",
                          sparse=True)
    assert torch.equal(same.indices, proj.indices)
    # a per-synapse weight or delay array follows the order the pairs were listed in
    listed = net.projection(a, b, ns.FromPairs(pre, post), weight=np.array([0.3, 0.1, 0.2, 0.4]),
                            delay=np.array([1, 2, 3, 4]), receptor="syn", sparse=True)
    np.testing.assert_array_equal(listed.weight_matrix(), expected)
    delays = np.zeros((4, 5), np.int64)
    delays[pre, post] = [1, 2, 3, 4]
    stored_rows = np.repeat(np.arange(4), np.diff(listed.indptr.numpy()))
    np.testing.assert_array_equal(listed.delays.numpy(), delays[stored_rows, listed.indices.numpy()])


def test_from_pairs_rejects_bad_pairs_clearly():
    net = ns.Network(dt=1.0)
    a = net.population(4, ns.SnnTorchLeaky(), name="a")
    b = net.population(5, ns.SnnTorchLeaky(), name="b")
    with pytest.raises(ValueError, match=r"post\[1\] = 5 is out of range for a postsynaptic population "
                                         r"of 5 neurons \(valid: 0..4\)"):
        net.projection(a, b, ns.FromPairs([0, 1], [2, 5]), weight=1.0, receptor="syn")
    with pytest.raises(ValueError, match=r"pre\[0\] = -1 is out of range"):
        net.projection(a, b, ns.FromPairs([-1], [2]), weight=1.0, receptor="syn")
    with pytest.raises(ValueError, match=r"the pair \(1, 2\) is listed more than once"):
        net.projection(a, b, ns.FromPairs([1, 1], [2, 2]), weight=1.0, receptor="syn")
    with pytest.raises(ValueError, match="equal lengths"):
        ns.FromPairs([0, 1], [2])
    with pytest.raises(TypeError, match="integer neuron indices"):
        ns.FromPairs([0.5], [2])
    with pytest.raises(ValueError, match="FromPairs gives the weights; leave out 'weight'"):
        net.projection(a, b, ns.FromPairs([0], [2], weights=[1.0]), weight=1.0, receptor="syn")


# -- the e-prop rule ------------------------------------------------------------------------
def currents(batch: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.05, 0.6, size=(batch, n))


def eprop_net(backend: str, drive: np.ndarray, *, sparse: bool = False, tau_e: float = 15.0,
              lr: float = 0.05, apply_at: str | None = "end_of_sample", recurrent: bool = False):
    """Deterministic inputs (integrate-and-fire neurons under constant currents, one
    row per sample) onto 6 leaky neurons learning by EProp from a per-sample signal."""
    batch = drive.shape[0]
    net = ns.Network(dt=1.0, batch=batch, seed=5, backend=backend)
    inp = net.population(drive.shape[1], ns.SnnTorchLeaky(beta=1.0), name="inp")
    inp.inputs["i_ext"].copy_(torch.as_tensor(drive, dtype=torch.float32))
    out = net.population(6, ns.SnnTorchLeaky(beta=0.9, threshold=1.0), name="out")
    connector = ns.FixedProbability(0.5) if sparse else None
    proj = net.projection(inp, out, connector, weight=ns.Uniform(0.0, 0.35), receptor="syn",
                          delay=1, sparse=sparse)
    net.modulators.add("L", size=6, per_sample=True)
    rule = net.add_rule(proj, EProp(modulator="L", lr=lr, tau_eligibility=tau_e, apply_at=apply_at))
    if recurrent:
        rec = net.projection(out, out, ns.AllToAll(allow_autapses=False), weight=ns.Uniform(-0.1, 0.2),
                             receptor="syn", delay=1, sparse=False)  # dense with a mask
        net.add_rule(rec, EProp(modulator="L", lr=lr, tau_eligibility=tau_e, apply_at=apply_at))
    return net, proj, rule


def signal(batch: int) -> np.ndarray:
    return np.random.default_rng(11).normal(size=(batch, 6))


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_learning_signal_no_change(backend):
    net, proj, rule = eprop_net(backend, currents(3, 10, 0))
    w0 = proj.weight.clone()
    net.run(steps=25)
    net.trigger("end_of_sample")
    assert rule.eligibility.abs().sum() > 0  # the synapses were eligible
    assert torch.equal(proj.weight, w0)  # but nothing changes without a signal


@pytest.mark.parametrize("backend", BACKENDS)
def test_eligibility_follows_its_definition_and_decays_with_its_time_constant(backend):
    drive = currents(2, 10, 1)
    net, proj, rule = eprop_net(backend, drive, tau_e=15.0)
    net.state_monitor(net.populations["out"], "mem", name="out_mem")
    net.run(steps=20)
    _, mem = net.reader().state("out_mem", "mem")  # (steps, batch, n)
    # an independent computation from the inputs' definition (integrate-and-fire: beta 1,
    # threshold 1, spike when mem > 1, reset by subtraction the step after)
    mem_in, fired = np.zeros((2, 10)), np.zeros((2, 10), dtype=bool)
    x, e = np.zeros((2, 10)), np.zeros((2, 10, 6))
    for t in range(20):
        arrived = fired  # the spikes of step t - 1 (delay 1)
        mem_in = mem_in + drive.astype(np.float32) - fired * 1.0
        fired = mem_in > 1.0
        x = x * math.exp(-1 / 20) + arrived
        psi = np.maximum(1 - np.abs(mem[t] - 1.0), 0.0)
        e = e * math.exp(-1 / 15) + x[:, :, None] * psi[:, None, :]
    assert e.sum() > 1.0
    np.testing.assert_allclose(rule.eligibility.numpy(), e, rtol=1e-4, atol=1e-5)
    # silence the inputs and hold the neurons far below threshold: psi = 0, only decay
    net.populations["inp"].inputs["i_ext"].zero_()
    net.populations["out"].inputs["i_ext"].fill_(-50.0)
    net.run(steps=2)  # the membrane leaves the threshold's neighbourhood
    before = rule.eligibility.clone()
    net.run(steps=7)
    np.testing.assert_allclose(rule.eligibility.numpy(), before.numpy() * math.exp(-7 / 15), rtol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sparse", [False, True])
def test_batch_of_four_equals_four_single_samples(backend, sparse):
    drive, m = currents(4, 12, 2), signal(4)
    net, proj, _ = eprop_net(backend, drive, sparse=sparse, recurrent=True)
    w0 = proj.weight.clone()
    net.modulators.set("L", m)
    net.run(steps=30)
    net.trigger("end_of_sample")
    together = proj.weight - w0
    alone = torch.zeros_like(together)
    for b in range(4):
        one, p1, _ = eprop_net(backend, drive[b:b + 1], sparse=sparse, recurrent=True)
        assert torch.equal(p1.weight, w0)  # same seed, same synapses and initial weights
        one.modulators.set("L", m[b:b + 1])
        one.run(steps=30)
        one.trigger("end_of_sample")
        alone += p1.weight - w0
    assert together.abs().max() > 1e-3
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("apply_at", ["end_of_sample", None])
def test_backends_agree(apply_at):
    drive, m = currents(3, 12, 3), signal(3)
    results = []
    for backend in BACKENDS:
        net, proj, rule = eprop_net(backend, drive, apply_at=apply_at, recurrent=True, lr=0.01)
        net.modulators.set("L", m)
        spikes = net.spike_counter(net.populations["out"])
        net.run(steps=30)
        net.trigger("end_of_sample")
        results.append((proj.weight.clone(), rule.eligibility.clone(), spikes.counts.clone()))
    (w_t, e_t, s_t), (w_n, e_n, s_n) = results
    assert torch.equal(s_t, s_n)
    torch.testing.assert_close(e_t, e_n, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(w_t, w_n, rtol=1e-6, atol=1e-6)


def test_eprop_reads_lif_voltage_and_refuses_what_it_cannot_read():
    net = ns.Network(dt=0.5, seed=1)
    a = net.population(5, ns.PoissonSource(rate=50.0), name="a")
    b = net.population(4, ns.LIF(), name="b")
    net.modulators.add("L", size=4)
    rule = net.add_rule(net.projection(a, b, weight=1.0), EProp(modulator="L"))
    assert (rule.voltage, rule.v_threshold, rule.width) == ("v", -50.0, 15.0)
    g = net.population(4, ns.Graded("relu"), name="g")
    with pytest.raises(ValueError, match="reads the membrane potential"):
        net.add_rule(net.projection(a, g, weight=1.0, receptor=next(iter(g.model.receptors))),
                     EProp(modulator="L"))
    with pytest.raises(ValueError, match="tau_eligibility"):
        EProp(modulator="L", tau_eligibility=-1.0)


# -- the population error signal ------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("wta", [False, True])
def test_population_error_matches_counted_spikes(backend, wta):
    net = ns.Network(dt=1.0, batch=3, seed=4, backend=backend)
    inp = net.population(30, ns.PoissonSource(rate=300.0), name="inp")
    out = net.population(12, ns.SnnTorchLeaky(beta=0.9), name="out")
    net.projection(inp, out, weight=ns.Uniform(0.0, 0.4), receptor="syn", delay=1)
    net.modulators.add_population_error("E", out, 4, scale=0.1, wta=wta)
    labels = np.array([0, 2, 3])
    net.modulators.set_target("E", np.eye(4)[labels])
    counter = net.spike_counter(out)
    net.run(steps=20)
    counts = counter.counts.numpy().reshape(3, 4, 3).mean(-1)
    expected = np.eye(4)[labels] - 0.1 * counts
    if wta:
        keep = np.zeros_like(expected, dtype=bool)
        keep[np.arange(3), labels] = True
        keep[np.arange(3), counts.argmax(1)] = True
        expected = np.where(keep, expected, 0.0)
    np.testing.assert_allclose(net.modulators.get("E").numpy(), expected, rtol=1e-6, atol=1e-6)
    net.reset_state()  # a new sample: the counts start again
    np.testing.assert_allclose(net.modulators.get("E").numpy(),
                               np.where(np.eye(4)[labels] > 0, 1.0, 0.0) if wta else np.eye(4)[labels])
    with pytest.raises(ValueError, match="not a multiple of 5 classes"):
        net.modulators.add_population_error("E5", out, 5)


# -- pausing monitors (the example logs only sampled presentations) --------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_paused_monitors_record_nothing(backend):
    net = ns.Network(dt=1.0, batch=2, seed=4, backend=backend)
    inp = net.population(30, ns.PoissonSource(rate=300.0), name="inp")
    out = net.population(12, ns.SnnTorchLeaky(beta=0.9), name="out")
    net.projection(inp, out, weight=ns.Uniform(0.0, 0.4), receptor="syn", delay=1)
    net.modulators.add_population_error("E", out, 4)
    monitors = [net.spike_monitor(out), net.state_monitor(out, "mem", name="mem"),
                net.modulator_monitor("E", every=1)]
    net.run(steps=10)
    for m in monitors:
        m.active = False
    net.run(steps=10)
    for m in monitors:
        m.active = True
    net.run(steps=10)
    reader = net.reader()
    kept = list(range(10)) + list(range(20, 30))
    steps, _ = reader.state("mem", "mem")
    assert list(steps) == kept
    assert set(reader.spikes("out")[0].tolist()) <= set(kept)
    assert len(set(reader.spikes("out")[0].tolist())) > 5
    assert list(reader.read_rows("modulators/E/step", 0, 100)) == kept


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_signal_is_the_matrix_times_its_source(backend):
    net = ns.Network(dt=1.0, batch=2, seed=4, backend=backend)
    inp = net.population(30, ns.PoissonSource(rate=300.0), name="inp")
    out = net.population(12, ns.SnnTorchLeaky(beta=0.9), name="out")
    net.projection(inp, out, weight=ns.Uniform(0.0, 0.4), receptor="syn", delay=1)
    net.modulators.add_population_error("E", out, 4, scale=0.1)
    matrix = np.random.default_rng(1).normal(size=(7, 4))
    net.modulators.add_linear("L", "E", matrix)
    net.modulators.set_target("E", np.eye(4)[[1, 3]])
    net.run(steps=15)
    expected = net.modulators.get("E").numpy().astype(np.float64) @ matrix.T
    np.testing.assert_allclose(net.modulators.get("L").numpy(), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"matrix must have shape \(size, 4\)"):
        net.modulators.add_linear("bad", "E", np.ones((3, 5)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_folded_feed_equals_the_per_step_eligibility_over_many_folds(backend):
    # a rule applied at an event folds its feed by matrix products every 64 steps or less;
    # the same rule applied every step updates each synapse every step: same eligibility
    drive = currents(3, 12, 5)
    folded, _, r1 = eprop_net(backend, drive, tau_e=25.0, recurrent=True)
    stepped, _, r2 = eprop_net(backend, drive, tau_e=25.0, recurrent=True, apply_at=None, lr=0.0)
    assert r1.folded and not r2.folded
    for net in (folded, stepped):
        net.run(steps=45)
        net.run(steps=30)  # 75 steps: a fold at 64, the rest when the eligibility is read
    torch.testing.assert_close(r1.eligibility, r2.eligibility, rtol=1e-5, atol=1e-5)
    assert r1.eligibility.abs().max() > 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_change_from_the_feed_equals_signal_times_eligibility(backend):
    # 75 steps: part of the eligibility folded (at 64 steps), part still in the feed when
    # the sample ends; the change made from both is lr * sum_b m_b e_b
    drive, m = currents(3, 12, 6), signal(3)
    net, proj, rule = eprop_net(backend, drive, tau_e=25.0, recurrent=True, lr=0.01)
    net.modulators.set("L", m)
    w0 = proj.weight.clone()
    net.run(steps=75)
    assert int(rule.feed.fill[0]) > 0  # not all folded yet
    net.trigger("end_of_sample")
    e = rule.eligibility.double()  # (folds the rest)
    expected = 0.01 * (torch.as_tensor(m).unsqueeze(1) * e).sum(0)
    torch.testing.assert_close((proj.weight - w0).double(), expected, rtol=1e-4, atol=1e-6)


def test_a_feed_filled_by_a_stretch_is_folded_as_on_torch():
    # a run of exactly the buffer's 64 steps fills it; both engines fold it then, so the
    # next steps and the change at the sample's end give the same bits on both
    drive, m = currents(2, 12, 7), signal(2)
    results = []
    for backend in BACKENDS:
        net, proj, rule = eprop_net(backend, drive, tau_e=30.0, recurrent=True, lr=0.01)
        net.modulators.set("L", m)
        net.run(steps=64)
        assert int(rule.feed.fill[0]) == 0  # folded at once
        net.run(steps=10)
        net.trigger("end_of_sample")
        results.append((proj.weight.clone(), rule.eligibility.clone()))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
