"""Learning on projections with per-synapse delays.

A synapse with delay ``d`` sees its presynaptic spikes ``d`` steps late: its ``on_pre``
hook runs when the spike arrives, and its presynaptic trace follows the arriving
spikes. The reference is independent of the per-synapse machinery: the same synapses
split into one projection per delay (each with one delay, the path every rule has
always run on), which must end with the same weights, eligibilities and spikes.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim import rules
from neurosim.rules import EProp

BACKENDS = ("torch", "numba")
N_PRE, N_POST, BATCH, STEPS = 24, 7, 3, 60


def synapses(seed: int = 2):
    rng = np.random.default_rng(seed)
    pairs = np.argwhere(rng.random((N_PRE, N_POST)) < 0.6)
    weights = rng.uniform(0.05, 0.4, size=len(pairs))
    delays = rng.choice([1, 2, 4, 7], size=len(pairs))
    return pairs[:, 0], pairs[:, 1], weights, delays


def make_rule(kind: str):
    if kind == "stdp":
        return rules.STDP(lr=0.01, w_max=1.0)
    if kind == "reward_stdp":
        return rules.RewardModulatedSTDP(modulator="dopamine", lr=0.05, w_max=1.0)
    if kind == "eprop":
        return EProp(modulator="L", lr=0.02, tau_eligibility=30.0, apply_at=None)
    if kind == "eprop_at_end":
        return EProp(modulator="L", lr=0.02, tau_eligibility=30.0)
    raise ValueError(kind)


def add_signals(net, n: int, learning_signal: np.ndarray) -> None:
    """The per-sample learning signal ``L`` (e-prop) and a constant ``dopamine``."""
    net.modulators.add("L", size=n, per_sample=True)
    net.modulators.set("L", learning_signal)
    net.modulators.add("dopamine")
    net.modulators.set("dopamine", 0.5)


def add_learning_projections(net, pre, post, pre_idx, post_idx, weights, delays, split: bool,
                             new_rule) -> list:
    """The synapses as one CSR projection with per-synapse delays, or (``split``) one
    projection per delay (the reference), each learning by a rule from ``new_rule()``;
    returns (projection, rule) pairs."""
    groups = [np.unique(delays)] if not split else [[d] for d in np.unique(delays)]
    out = []
    for group in groups:
        keep = np.isin(delays, group)
        proj = net.projection(pre, post, ns.FromPairs(pre_idx[keep], post_idx[keep]), weight=weights[keep],
                              delay=delays[keep], receptor="syn", sparse=True)
        out.append((proj, net.add_rule(proj, new_rule())))
    return out


def build(backend: str, kind: str, split: bool, delays: np.ndarray | None = None):
    """Constant-current inputs onto leaky neurons through the synapses of ``synapses()``:
    one projection with per-synapse delays, or (``split``) one projection per delay."""
    pre_idx, post_idx, weights, given = synapses()
    delays = given if delays is None else delays
    net = ns.Network(dt=1.0, batch=BATCH, seed=3, backend=backend)
    drive = np.random.default_rng(9).uniform(0.1, 0.7, size=(BATCH, N_PRE))
    inp = net.population(N_PRE, ns.SnnTorchLeaky(beta=1.0), name="inp")
    inp.inputs["i_ext"].copy_(torch.as_tensor(drive, dtype=torch.float32))
    out = net.population(N_POST, ns.SnnTorchLeaky(beta=0.9, threshold=1.0), name="out")
    out.inputs["i_ext"].fill_(0.08)
    add_signals(net, N_POST, np.random.default_rng(4).normal(size=(BATCH, N_POST)))
    made = add_learning_projections(net, inp, out, pre_idx, post_idx, weights, delays, split,
                                    lambda: make_rule(kind))
    counter = net.spike_counter(out)
    return net, [proj for proj, _ in made], counter


def weights_of(projections) -> np.ndarray:
    return sum(p.weight_matrix() for p in projections)


def run(net, kind: str) -> None:
    net.run(steps=STEPS)
    if kind == "eprop_at_end":
        net.trigger("end_of_sample")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["stdp", "reward_stdp", "eprop", "eprop_at_end"])
def test_per_synapse_delays_learn_as_one_projection_per_delay(backend, kind):
    net, (proj,), counter = build(backend, kind, split=False)
    assert len(proj.blocks) == 4
    w0 = weights_of([proj])
    run(net, kind)
    ref, parts, ref_counter = build(backend, kind, split=True)
    run(ref, kind)
    assert torch.equal(counter.counts, ref_counter.counts)
    assert counter.counts.sum() > 20  # both sides spiked
    w, w_ref = weights_of([proj]), weights_of(parts)
    assert np.abs(w - w0).max() > 1e-3  # it learned
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-6)
    # and the delays matter: every synapse at one delay learns differently
    same, (flat,), _ = build(backend, kind, split=False, delays=np.full(proj.nnz, 1))
    run(same, kind)
    assert np.abs(weights_of([flat]) - w).max() > 1e-4


@pytest.mark.parametrize("kind", ["stdp", "reward_stdp", "eprop_at_end"])
def test_backends_agree_on_per_synapse_delays(kind):
    results = []
    for backend in BACKENDS:
        net, (proj,), counter = build(backend, kind, split=False)
        run(net, kind)
        results.append((proj.weight.clone(), counter.counts.clone(),
                        net.rules[next(iter(net.rules))].state_tensors()))
    (w_t, c_t, s_t), (w_n, c_n, s_n) = results
    assert torch.equal(c_t, c_n)
    torch.testing.assert_close(w_t, w_n, rtol=1e-6, atol=1e-6)
    if "eligibility" in s_t:
        torch.testing.assert_close(s_t["eligibility"], s_n["eligibility"], rtol=1e-6, atol=1e-6)


def test_presynaptic_traces_have_one_block_per_delay():
    net, (proj,), _ = build("torch", "stdp", split=False)
    rule = net.rules[next(iter(net.rules))]
    assert rule.pre_delays == (1, 2, 4, 7)
    assert rule.x_pre.value.shape == (BATCH, N_PRE * 4)
    net.run(steps=20)
    # block q of the trace is the trace of the spikes pre_delays[q] steps late
    rule2_net, _, _ = build("torch", "stdp", split=True)  # (reference traces, one per delay)
    rule2_net.run(steps=20)
    for q, d in enumerate(rule.pre_delays):
        ref = [r for r in rule2_net.rules.values() if r.projection.min_delay == d][0]
        torch.testing.assert_close(rule.x_pre.value[:, q * N_PRE:(q + 1) * N_PRE], ref.x_pre.value)
    assert "inp[-1,2,4,7]" in str(net.schedule)


def test_the_compiled_step_runs_the_delayed_rule():
    net, _, _ = build("numba", "stdp", split=False)
    net.run(steps=5)
    source = net.backend._plan.source
    assert "update_trace(" in source and "pslot[kb] = (t - bdelay[kb])" in source


def test_tensor_code_rules_are_refused_on_per_synapse_delays():
    net = ns.Network(backend="torch")
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(4, ns.LIF(), name="b")
    delayed = net.projection(a, b, weight=1.0, delay=np.array([[1, 2, 3, 4]] * 3))
    class Decay(rules.Rule):  # tensor code: it sees one delay per projection
        def weight_change(self, t: int) -> torch.Tensor:
            return -0.01 * self.projection.weight

    with pytest.raises(ValueError, match="per-synapse delays; Decay is tensor code"):
        net.add_rule(delayed, Decay())


def recurrent(backend: str, split: bool, masked_pass: bool = False, kind: str = "eprop"):
    """Leaky neurons driven by currents and by themselves through a recurrent projection
    with per-synapse delays (1-5 steps), learning by e-prop from a per-sample signal
    (or by reward-modulated STDP: ``kind="reward_stdp"``)."""
    n = 20
    rng = np.random.default_rng(8)
    pairs = np.argwhere((rng.random((n, n)) < 0.4) & ~np.eye(n, dtype=bool))
    weights, delays = rng.uniform(-0.15, 0.3, size=len(pairs)), rng.integers(1, 6, size=len(pairs))
    net = ns.Network(dt=1.0, batch=2, seed=3, backend=backend)
    pop = net.population(n, ns.SnnTorchLeaky(beta=0.9, threshold=1.0), name="rec")
    pop.inputs["i_ext"].copy_(torch.as_tensor(rng.uniform(0.05, 0.2, size=(2, n)), dtype=torch.float32))
    add_signals(net, n, rng.normal(size=(2, n)))
    made = add_learning_projections(
        net, pop, pop, pairs[:, 0], pairs[:, 1], weights, delays, split,
        lambda: make_rule(kind) if kind != "eprop" else
        EProp(modulator="L", lr=0.02, tau_eligibility=20.0, apply_at=None))
    for _, rule in made:
        if masked_pass:  # the GPU's way: one masked pass over every synapse, no host sync
            rule.torch_form.touched_only = False
    counter = net.spike_counter(pop)
    net.run(steps=80)
    return weights_of([proj for proj, _ in made]), counter.counts


@pytest.mark.parametrize("backend", BACKENDS)
def test_recurrent_projection_with_per_synapse_delays_learns(backend):
    w, counts = recurrent(backend, split=False)
    w_ref, counts_ref = recurrent(backend, split=True)
    assert counts.sum() > 50 and torch.equal(counts, counts_ref)
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["stdp", "reward_stdp"])
def test_the_masked_pass_equals_the_touched_synapses(kind):
    w, counts = recurrent("torch", split=False, kind=kind)
    w_masked, counts_masked = recurrent("torch", split=False, masked_pass=True, kind=kind)
    assert torch.equal(counts, counts_masked)
    np.testing.assert_allclose(w, w_masked, rtol=0, atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("split", [False, True])
def test_folded_csr_feed_equals_the_per_synapse_pass(backend, split, monkeypatch):
    """e-prop applied at the sample's end folds its eligibility feed by matrix products,
    on CSR too (read at the synapses); it must equal the per-synapse pass over 150 steps
    (two folds and a partial buffer)."""
    from neurosim.rules import eligibility_feed

    results = []
    for min_fill in (0.0, 2.0):  # always fold, never fold
        monkeypatch.setattr(eligibility_feed, "CSR_MIN_FILL", min_fill)
        net, projections, counter = build(backend, "eprop_at_end", split=split)
        rules_ = list(net.rules.values())
        assert all(r.folded for r in rules_) == (min_fill < 1)
        net.run(steps=150)
        eligibility = [r.eligibility.clone() for r in rules_]
        net.trigger("end_of_sample")
        results.append((weights_of(projections), eligibility, counter.counts.clone()))
    (w_f, e_f, c_f), (w_s, e_s, c_s) = results
    assert torch.equal(c_f, c_s)
    for a, b in zip(e_f, e_s):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(w_f, w_s, rtol=0, atol=1e-5)


def delayed_recurrent_unroll(split: bool):
    """A trainable recurrent projection with per-synapse delays (or one dense projection
    per delay) in a differentiable run: its spikes and weight gradients."""
    n = 16
    rng = np.random.default_rng(12)
    pairs = np.argwhere((rng.random((n, n)) < 0.5) & ~np.eye(n, dtype=bool))
    weights, delays = rng.uniform(-0.2, 0.5, size=len(pairs)), rng.integers(1, 4, size=len(pairs))
    net = ns.Network(dt=1.0, batch=2, seed=1, backend="torch", dtype="float64")
    pop = net.population(n, ns.SnnTorchLeaky(beta=0.9, threshold=1.0), name="rec")
    pop.inputs["i_ext"].copy_(torch.as_tensor(rng.uniform(0.1, 0.3, size=(2, n))))
    projections = []
    for group in ([np.unique(delays)] if not split else [[d] for d in np.unique(delays)]):
        keep = np.isin(delays, group)
        projections.append(net.projection(pop, pop, ns.FromPairs(pairs[keep, 0], pairs[keep, 1]),
                                          weight=weights[keep], delay=delays[keep], receptor="syn",
                                          sparse=not split, trainable=True))
    out = net.unroll(40, record={"rec": ["spikes", "mem"]})
    out["rec"]["mem"].pow(2).sum().backward()
    grads = np.zeros((n, n))
    for proj in projections:
        pre, post = proj.synapses()
        g = proj.parameter.grad
        grads[pre, post] = (g if proj.sparse else g[pre, post]).numpy()
    return out["rec"]["spikes"], grads


def test_a_differentiable_run_delivers_per_synapse_delays():
    spikes, grads = delayed_recurrent_unroll(split=False)
    spikes_ref, grads_ref = delayed_recurrent_unroll(split=True)
    assert spikes.sum() > 20 and torch.equal(spikes, spikes_ref)
    assert np.abs(grads).max() > 1e-3
    np.testing.assert_allclose(grads, grads_ref, rtol=1e-9, atol=1e-12)


def test_backward_every_step_through_per_synapse_delays():
    """Truncated BPTT with a backward pass each step (on_step + detach_state) through a
    CSR projection with per-synapse delays: each step's graph is new."""
    n = 12
    rng = np.random.default_rng(5)
    pairs = np.argwhere(~np.eye(n, dtype=bool))
    net = ns.Network(dt=1.0, batch=2, seed=1, backend="torch")
    pop = net.population(n, ns.SnnTorchLeaky(beta=0.9, threshold=1.0), name="rec")
    pop.inputs["i_ext"].copy_(torch.as_tensor(rng.uniform(0.1, 0.4, size=(2, n)), dtype=torch.float32))
    proj = net.projection(pop, pop, ns.FromPairs(pairs[:, 0], pairs[:, 1]),
                          weight=rng.uniform(0.0, 0.3, size=len(pairs)),
                          delay=rng.integers(1, 4, size=len(pairs)), receptor="syn", trainable=True)
    assert proj.sparse and len(proj.blocks) == 3

    def step(t, out):
        out["rec"]["mem"].pow(2).sum().backward()
        net.detach_state()

    net.unroll(15, record={"rec": "mem"}, on_step=step)
    assert proj.parameter.grad is not None and proj.parameter.grad.abs().max() > 0


def test_a_state_saved_with_other_delays_is_refused(tmp_path):
    def network(delays):
        net = ns.Network(dt=1.0, seed=1, backend="torch")
        a = net.population(4, ns.PoissonSource(rate=50.0), name="a")
        b = net.population(3, ns.LIF(), name="b")
        proj = net.projection(a, b, weight=1.0, delay=delays)
        net.add_rule(proj, rules.STDP())
        return net
    delays = np.array([[1, 2, 1], [2, 1, 2], [1, 1, 2], [2, 2, 1]])
    net = network(delays)
    net.run(steps=10)
    net.save_state(tmp_path / "s.pt")
    assert "synapse_blocks" not in " ".join(net.state_dict())  # structure, not state
    network(delays).load_state(tmp_path / "s.pt")  # the same delays: fits
    with pytest.raises(ValueError, match="a_b"):
        network(3 - delays).load_state(tmp_path / "s.pt")  # delays 1 and 2 swapped


def test_a_refused_rule_leaves_no_shared_trace():
    net = ns.Network(backend="torch")
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(4, ns.LIF(), name="b")
    delayed = net.projection(a, b, weight=1.0, delay=np.array([[1, 2, 3, 4]] * 3))
    with pytest.raises(ValueError, match="unknown modulator"):
        net.add_rule(delayed, rules.RewardModulatedSTDP(modulator="nothing"))
    assert len(net.shared_traces) == 0
    with pytest.raises(ValueError, match="per_step_factor 'nope' must name"):
        net.add_rule(delayed, _bad_factor_rule())
    assert len(net.shared_traces) == 0 and not net.rules


def _bad_factor_rule():
    """An e-prop whose per_step_factor names no trace (refused after its traces are made)."""
    import dataclasses

    class BadFactor(rules.STDP):
        def recipe(self):
            return dataclasses.replace(super().recipe(), per_step_factor="nope")

    return BadFactor()


@pytest.mark.parametrize("engine", BACKENDS)
def test_per_synapse_delays_keep_the_given_order_and_deliver_each_synapse(engine):
    rng = np.random.default_rng(3)
    pairs = np.argwhere(rng.random((9, 8)) < 0.7)
    rng.shuffle(pairs)  # listed in any order
    weights = rng.uniform(0.1, 1.0, size=len(pairs))
    delays = rng.integers(1, 5, size=len(pairs))
    net = ns.Network(dt=1.0, seed=1, backend=engine)
    gen = net.population(9, ns.SpikeGenerator(np.zeros(9), np.arange(9)), name="gen")
    post = net.population(8, ns.LIF(), name="post")
    proj = net.projection(gen, post, ns.FromPairs(pairs[:, 0], pairs[:, 1]), weight=weights, delay=delays)
    dense_w, dense_d = np.zeros((9, 8)), np.zeros((9, 8), dtype=int)
    dense_w[pairs[:, 0], pairs[:, 1]], dense_d[pairs[:, 0], pairs[:, 1]] = weights, delays
    np.testing.assert_allclose(proj.weight_matrix(), dense_w, rtol=1e-6)
    rows, cols = proj.synapses()
    stored = proj.delays.numpy()
    np.testing.assert_array_equal(stored, dense_d[rows, cols])
    # the weights round-trip: a projection built from this one's arrays is the same
    other = ns.Network(dt=1.0, seed=1, backend=engine)
    again = other.projection(other.population(9, ns.PoissonSource(), name="gen"),
                             other.population(8, ns.LIF(), name="post"), ns.FromPairs(rows, cols),
                             weight=proj.weight.numpy(), delay=stored)
    np.testing.assert_array_equal(again.weight.numpy(), proj.weight.numpy())
    np.testing.assert_array_equal(again.delays.numpy(), stored)
    for block in proj.blocks:  # each block: its synapses of each row, and their targets
        counts = np.diff(block.indptr.numpy())
        positions, targets = block.positions.numpy(), block.indices.numpy()
        for i in range(9):
            mine = positions[block.indptr[i]:block.indptr[i + 1]]
            assert (rows[mine] == i).all() and (stored[mine] == block.delay).all()
            assert len(mine) == counts[i] == ((rows == i) & (stored == block.delay)).sum()
        np.testing.assert_array_equal(targets, cols[positions])
    # every spike (all at step 0) arrives with its own weight at its own delay
    net.state_monitor(post, ["i_e"])
    net.run(steps=8, progress=False)
    _, i_e = net.reader().state("post", "i_e")
    decay = np.exp(-1.0 / 5.0)
    expected = np.zeros((8, 8))
    for (i, j), w, d in zip(pairs, weights, delays):
        expected[d:, j] += w * decay ** (np.arange(8 - d) + 1)
    np.testing.assert_allclose(i_e[:, 0, :], expected, rtol=1e-5)
