"""Differentiable runs (Network.unroll): the normal run's spikes, snnTorch's gradients,
finite differences of the smoothed function, truncated BPTT, and local rules beside."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim import rules, unrolling

snn = pytest.importorskip("snntorch")
import snntorch.surrogate as surrogate  # noqa: E402


def _two_layers(batch=3, steps=30, sizes=(12, 9, 4), seed=0, backend="torch", surr=None, bias=False):
    """A 12-9-4 SnnTorchLeaky network with random float64 weights that make both layers
    spike, fed by given input spikes; returns (net, projections, input spikes)."""
    gen = torch.Generator().manual_seed(seed)
    net = ns.Network(dt=1.0, batch=batch, backend=backend, dtype="float64", seed=seed)
    src = net.population(sizes[0], ns.SpikeGenerator([], []), name="src")
    pre, projs = src, []
    for k, n in enumerate(sizes[1:], 1):
        pop = net.population(n, ns.SnnTorchLeaky(beta=0.875, threshold=1.0), name=f"l{k}",
                             surrogate=surr)
        w = torch.rand(pre.n, n, generator=gen, dtype=torch.float64) * 0.8 - 0.3
        projs.append(net.projection(pre, pop, weight=w.numpy(), receptor="syn", delay=0,
                                    sparse=False, trainable=True))
        pre = pop
    x = (torch.rand(steps, batch, sizes[0], generator=gen) < 0.4).double()
    return net, projs, x


def _snntorch_reference(projs, x, surr):
    """The same network in snnTorch (float64): last layer's spikes and membranes, and the
    gradients of ``sum(mem) + sum(spikes)`` with respect to each weight matrix."""
    weights = [p.weight.detach().clone().T.requires_grad_(True) for p in projs]
    leaky = [snn.Leaky(beta=0.875, threshold=1.0, spike_grad=surr) for _ in weights]
    mems = [torch.zeros(x.shape[1], w.shape[0], dtype=torch.float64) for w in weights]
    spikes, membranes = [], []
    for xt in x:
        s = xt
        for k, (w, cell) in enumerate(zip(weights, leaky)):
            s, mems[k] = cell(s.to(torch.float64) @ w.T, mems[k])
        spikes.append(s.to(torch.float64))
        membranes.append(mems[-1])
    spikes, membranes = torch.stack(spikes), torch.stack(membranes)
    (membranes.sum() + spikes.sum()).backward()
    return spikes.detach(), membranes.detach(), [w.grad.T for w in weights]


@pytest.mark.parametrize("name, surr", [("atan", surrogate.atan()),
                                        ("fast_sigmoid", surrogate.fast_sigmoid(slope=10)),
                                        ("triangular", surrogate.triangular())])
@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_spikes_and_gradients_equal_snntorchs(name, surr, backend):
    net, projs, x = _two_layers(backend=backend, surr=surr)
    out = net.unroll(x.shape[0], spikes={"src": x}, record={"l2": ["spikes", "mem"]})
    (out["l2"]["mem"].sum() + out["l2"]["spikes"].sum()).backward()
    spikes, membranes, grads = _snntorch_reference(projs, x, surr)
    assert 10 < spikes.sum() < 0.7 * spikes.numel()
    assert torch.equal(out["l2"]["spikes"].detach(), spikes)
    torch.testing.assert_close(out["l2"]["mem"].detach(), membranes, rtol=1e-12, atol=1e-12)
    for proj, grad in zip(projs, grads):
        assert proj.parameter.grad.abs().max() > 0.1
        torch.testing.assert_close(proj.parameter.grad, grad, rtol=1e-10, atol=1e-10)


def _atan_smooth(x, alpha=2.0):
    """The function whose derivative is snnTorch's atan surrogate: 1/2 + atan(pi a x / 2) / pi."""
    return 0.5 + np.arctan(np.pi * alpha * x / 2) / np.pi


def test_the_surrogate_gradient_is_the_derivative_of_the_smoothed_function():
    """One neuron, six steps, input w * x[t]. With each step's reset held at the value the
    run produced (snnTorch detaches it), the surrogate gradient of sum(spikes) with respect
    to w is the derivative of sum(smooth(mem[t] - threshold)): checked by central
    differences, independently of torch's autograd."""
    x = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    w0, beta, theta = 0.7, 0.8, 1.0
    net = ns.Network(dt=1.0, dtype="float64")
    src = net.population(1, ns.SpikeGenerator([], []), name="src")
    cell = net.population(1, ns.SnnTorchLeaky(beta=beta, threshold=theta), name="cell")
    proj = net.projection(src, cell, weight=w0, receptor="syn", delay=0, trainable=True)
    out = net.unroll(len(x), spikes={"src": torch.as_tensor(x).reshape(-1, 1, 1)},
                     record={"cell": ["spikes", "mem"]})
    out["cell"]["spikes"].sum().backward()
    fired = out["cell"]["spikes"].detach().numpy().ravel()
    assert 0 < fired.sum() < len(x)

    def smoothed(w):
        mem, total, reset = 0.0, 0.0, 0.0
        for t, xt in enumerate(x):
            mem = beta * mem + w * xt - reset * theta
            total += _atan_smooth(mem - theta)
            reset = fired[t]  # the run's spike, held fixed
        return total

    h = 1e-6
    numeric = (smoothed(w0 + h) - smoothed(w0 - h)) / (2 * h)
    assert proj.parameter.grad.item() == pytest.approx(numeric, rel=1e-7)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_an_unrolled_run_spikes_exactly_as_a_normal_run(backend):
    """LIF neurons driven by a Poisson source (random inputs hashed from the step): the same
    spikes and membrane as run(), on weights whose sums are exact in float32."""
    def build():
        net = ns.Network(dt=0.5, batch=2, backend=backend, seed=7)
        src = net.population(40, ns.PoissonSource(rate=80.0), name="src")
        exc = net.population(20, ns.LIF(), name="exc")
        rng = np.random.default_rng(3)
        net.projection(src, exc, weight=rng.integers(0, 64, (40, 20)) / 8.0, sparse=False,
                       trainable=True)
        net.projection(exc, exc, ns.FixedProbability(0.3), weight=2.0, sparse=False, delay=2)
        net.spike_monitor(exc)
        net.state_monitor(exc, ["v"], every=1)
        return net

    normal, differentiable = build(), build()
    normal.run(steps=400, progress=False)
    out = differentiable.unroll(400, record={"exc": ["spikes", "v"]})
    assert out["exc"]["spikes"].requires_grad
    a, b = normal.reader(), differentiable.reader()
    assert len(a.spikes("exc")[0]) > 50
    for got, want in zip(b.spikes("exc"), a.spikes("exc")):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(b.state("exc", "v")[1], a.state("exc", "v")[1])
    steps, neurons, rows = a.spikes("exc")
    raster = np.zeros((400, 2, 20))
    raster[steps, rows, neurons] = 1
    np.testing.assert_array_equal(out["exc"]["spikes"].detach().numpy(), raster)


def test_a_normal_run_builds_no_graph_and_leaves_grad_alone():
    net, projs, x = _two_layers()
    net.run(steps=20, progress=False)
    assert all(p.parameter.grad is None for p in projs)
    assert not any(t.requires_grad for pop in net.populations.values() for t in pop.state.values())
    assert [type(p).__name__ for p in net.parameters()] == ["Parameter", "Parameter"]
    assert [name for name, _ in net.named_parameters()] == ["src_l1", "l1_l2"]


def test_truncated_bptt_detach_state_cuts_the_graph_between_calls():
    net, projs, x = _two_layers(steps=40)
    x = x.clone().requires_grad_(True)
    net.unroll(20, spikes={"src": x[:20]})
    out = net.unroll(20, spikes={"src": x[20:]}, record={"l2": "mem"})
    out["l2"]["mem"].sum().backward()
    through = x.grad[:20].abs().sum().item()
    assert through > 0  # without detaching, the second call's loss reaches the first's input

    net, projs, x = _two_layers(steps=40)
    x = x.clone().requires_grad_(True)
    net.unroll(20, spikes={"src": x[:20]})
    net.detach_state()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    out = net.unroll(20, spikes={"src": x[20:]}, record={"l2": "mem"})
    out["l2"]["mem"].sum().backward()
    assert x.grad[:20].abs().sum().item() == 0
    grads = [p.parameter.grad.clone() for p in projs]

    # the same as a fresh network started from that state
    fresh, fresh_projs, _ = _two_layers(steps=40)
    fresh.load_state_dict(state)
    again = fresh.unroll(20, spikes={"src": x[20:].detach()}, record={"l2": "mem"})
    again["l2"]["mem"].sum().backward()
    torch.testing.assert_close(again["l2"]["mem"], out["l2"]["mem"])
    for p, g in zip(fresh_projs, grads):
        torch.testing.assert_close(p.parameter.grad, g)


def test_a_reset_or_a_normal_run_between_calls_starts_the_graph_afresh():
    net, projs, x = _two_layers(steps=20)
    x = x.clone().requires_grad_(True)
    net.unroll(10, spikes={"src": x[:10]})
    net.reset_state()
    out = net.unroll(10, spikes={"src": x[10:]}, record={"l2": "mem"})
    out["l2"]["mem"].sum().backward()
    assert x.grad[:10].abs().sum().item() == 0
    assert x.grad[10:].abs().sum().item() > 0


def test_training_by_gradient_reduces_the_loss():
    """Adam on net.parameters() drives the output layer's spike count towards a target."""
    net, projs, x = _two_layers(steps=25)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    target = torch.tensor([6.0, 0.0, 3.0, 0.0], dtype=torch.float64)
    losses = []
    for _ in range(30):
        net.reset_state()
        opt.zero_grad()
        out = net.unroll(25, spikes={"src": x}, record={"l2": "spikes"})
        loss = ((out["l2"]["spikes"].sum(0) - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_a_local_rule_and_gradients_on_one_network_in_one_run():
    """STDP changes the hidden layer's trainable weights while the graph holds them (no
    in-place error); an as_gradient rule on the readout writes -dw into its .grad beside
    autograd's contribution."""
    net, projs, x = _two_layers(steps=40)
    hidden, readout = projs
    stdp = net.add_rule(hidden, rules.STDP(a_plus=0.01, a_minus=0.012, w_min=-1.0, w_max=2.0))
    before = hidden.weight.clone()
    out = net.unroll(40, spikes={"src": x}, record={"l2": "mem"})
    out["l2"]["mem"].sum().backward()
    assert not torch.equal(hidden.weight, before)  # the rule learned during the run
    assert hidden.parameter.grad.abs().sum() > 0
    assert stdp.projection is hidden

    # as_gradient on the readout: autograd's gradient minus the rule's change
    net2, projs2, _ = _two_layers(steps=40)
    net2.add_rule(projs2[1], rules.STDP(a_plus=0.01, a_minus=0.012, w_min=-1.0, w_max=2.0,
                                        as_gradient=True))
    w_before = projs2[1].weight.clone()
    out2 = net2.unroll(40, spikes={"src": x}, record={"l2": "mem"})
    rule_part = projs2[1].parameter.grad.clone()
    assert torch.equal(projs2[1].weight, w_before) and rule_part.abs().sum() > 0
    out2["l2"]["mem"].sum().backward()
    net3, projs3, _ = _two_layers(steps=40)
    out3 = net3.unroll(40, spikes={"src": x}, record={"l2": "mem"})
    out3["l2"]["mem"].sum().backward()
    torch.testing.assert_close(projs2[1].parameter.grad, projs3[1].parameter.grad + rule_part)


def test_gradients_stay_on_synapses_of_a_masked_dense_projection():
    net = ns.Network(dt=1.0, batch=2, dtype="float64", seed=1)
    src = net.population(10, ns.SpikeGenerator([], []), name="src")
    out = net.population(5, ns.SnnTorchLeaky(beta=0.9, threshold=0.5), name="out")
    proj = net.projection(src, out, ns.FixedProbability(0.5), weight=0.4, receptor="syn",
                          delay=0, sparse=False, trainable=True)
    x = (torch.rand(15, 2, 10, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    res = net.unroll(15, spikes={"src": x}, record={"out": "mem"})
    res["out"]["mem"].sum().backward()
    grad = proj.parameter.grad
    assert grad[proj.mask].abs().min() > 0 and grad[~proj.mask].abs().max() == 0


def test_unroll_refuses_what_it_cannot_differentiate(monkeypatch):
    monkeypatch.setattr(unrolling, "MAX_DENSE_BLOCKS", 49)  # (src_out: 10 x 5 = 50)
    net = ns.Network(dt=1.0, batch=2)
    src = net.population(10, ns.PoissonSource(rate=10.0), name="src")
    out = net.population(5, ns.SnnTorchLeaky(), name="out")
    proj = net.projection(src, out, ns.FixedProbability(0.05), weight=0.4, receptor="syn",
                          sparse=True)
    with pytest.raises(ValueError, match=r"projections \['src_out'\] store their weights sparse \(CSR\) and are too large"):
        net.unroll(5)
    net = ns.Network(dt=1.0, batch=2)
    src = net.population(10, ns.PoissonSource(rate=10.0), name="src")
    out = net.population(5, ns.SnnTorchLeaky(), name="out")
    proj = net.projection(src, out, weight=0.4, receptor="syn", sparse=False)
    with pytest.raises(ValueError, match=r"expected \(steps, batch, n\) = \(5, 2, 10\)"):
        net.unroll(5, spikes={"src": torch.zeros(5, 10)})
    with pytest.raises(ValueError, match="no variable 'v'; record 'spikes' or one of"):
        net.unroll(5, record={out: "v"})
    with pytest.raises(ValueError, match="'nope' is not a population"):
        net.unroll(5, record={"nope": "spikes"})
    with pytest.raises(ValueError, match="unknown surrogate 'erf'"):
        net.population(3, ns.LIF(), surrogate="erf")
    assert proj.parameter is None and net.parameters() == []
    with pytest.raises(TypeError, match="trainable must be True or False"):
        net.projection(src, out, weight=0.4, receptor="syn", trainable="yes")


def test_a_model_without_spike_cannot_be_unrolled_but_still_runs():
    import inspect

    params = list(inspect.signature(ns.LIF.update).parameters)
    namespace: dict = {}
    exec(f"def update({', '.join(params)}):\n    return v, i_e, i_i, ref, v > 1e9\n", namespace)
    model_cls = type("ComparisonLIF", (ns.LIF,), {"update": staticmethod(namespace["update"])})
    net = ns.Network(dt=1.0, backend="torch")
    src = net.population(3, ns.PoissonSource(rate=10.0), name="src")
    net.population(2, model_cls(), name="cmp")
    net.projection(src, net.populations["cmp"], weight=1.0, sparse=False)
    net.run(steps=3, progress=False)
    with pytest.raises(TypeError, match="'cmp'.*write it with neurosim.kernel.spike"):
        net.unroll(3)
    net.run(steps=3, progress=False)  # the refusal came before the run: nothing halted
    assert math.isfinite(net.time_ms) and net.clock.step == 6


def test_under_no_grad_an_unrolled_run_builds_no_graph():
    net, projs, x = _two_layers()
    with torch.no_grad():
        out = net.unroll(10, spikes={"src": x[:10]}, record={"l2": ["spikes", "mem"]})
    assert not out["l2"]["mem"].requires_grad and not out["l2"]["spikes"].requires_grad


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_runs_and_unrolled_runs_take_turns_on_one_network(backend):
    """run, unroll, run: the same spikes as three normal runs (the unrolled stretch on
    torch tensors, the others on the network's backend)."""
    def build(b):
        net = ns.Network(dt=0.5, batch=2, backend=b, seed=5)
        src = net.population(30, ns.PoissonSource(rate=100.0), name="src")
        exc = net.population(12, ns.LIF(), name="exc")
        net.projection(src, exc, weight=np.random.default_rng(2).integers(0, 64, (30, 12)) / 8.0,
                       sparse=False, trainable=True)
        net.projection(exc, exc, weight=np.full((12, 12), 0.5), sparse=False, delay=3)
        net.spike_monitor(exc)
        return net

    mixed, plain = build(backend), build(backend)
    mixed.run(steps=150, progress=False)
    mixed.unroll(150)
    mixed.run(steps=150, progress=False)
    plain.run(steps=450, progress=False)
    a, b = mixed.reader().spikes("exc"), plain.reader().spikes("exc")
    assert len(b[0]) > 100
    for got, want in zip(a, b):
        np.testing.assert_array_equal(got, want)


def test_synaptic_neurons_have_snntorchs_gradients():
    gen = torch.Generator().manual_seed(4)
    w = torch.rand(12, 6, generator=gen, dtype=torch.float64) * 0.3 - 0.12
    x = (torch.rand(40, 3, 12, generator=gen) < 0.4).double()
    net = ns.Network(dt=1.0, batch=3, dtype="float64")
    src = net.population(12, ns.SpikeGenerator([], []), name="src")
    syn = net.population(6, ns.SnnTorchSynaptic(alpha=0.75, beta=0.875), name="syn")
    proj = net.projection(src, syn, weight=w.numpy(), receptor="syn", delay=0, trainable=True)
    out = net.unroll(40, spikes={"src": x}, record={"syn": ["spikes", "mem"]})
    (out["syn"]["mem"].sum() + out["syn"]["spikes"].sum()).backward()

    weight = w.T.clone().requires_grad_(True)
    cell = snn.Synaptic(alpha=0.75, beta=0.875)
    s_cur, mem = torch.zeros(3, 6, dtype=torch.float64), torch.zeros(3, 6, dtype=torch.float64)
    spikes, mems = [], []
    for xt in x:
        spk, s_cur, mem = cell(xt @ weight.T, s_cur, mem)
        spikes.append(spk.double()), mems.append(mem)
    (torch.stack(mems).sum() + torch.stack(spikes).sum()).backward()
    assert 10 < torch.stack(spikes).sum() < 0.7 * 40 * 18
    assert torch.equal(out["syn"]["spikes"].detach(), torch.stack(spikes).detach())
    torch.testing.assert_close(proj.parameter.grad, weight.grad.T, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_an_unroll_after_a_normal_run_starts_from_the_runs_state(backend):
    """unroll, run, unroll: the same spikes as one normal run of all the steps (the second
    unroll must not resume from the state the first one ended with)."""
    def build(b):
        net = ns.Network(dt=1.0, batch=2, backend=b, dtype="float64", seed=2)
        src = net.population(10, ns.PoissonSource(rate=300.0), name="src")
        out = net.population(6, ns.SnnTorchLeaky(beta=0.875), name="out")
        net.projection(src, out, weight=np.random.default_rng(1).integers(0, 32, (10, 6)) / 64.0,
                       receptor="syn", delay=0, sparse=False, trainable=True)
        net.spike_monitor(out)
        net.state_monitor(out, "mem")
        return net

    mixed, plain = build(backend), build(backend)
    mixed.unroll(40)
    mixed.run(steps=40, progress=False)
    mixed.unroll(40)
    plain.run(steps=120, progress=False)
    np.testing.assert_array_equal(mixed.reader().state("out", "mem")[1], plain.reader().state("out", "mem")[1])
    assert len(plain.reader().spikes("out")[0]) > 20


def test_a_rule_on_a_projection_that_is_not_trainable_leaves_backward_working():
    net, projs, x = _two_layers(steps=30)
    extra = net.population(5, ns.SnnTorchLeaky(beta=0.875), name="extra")
    side = net.projection(net.populations["l1"], extra, weight=0.3, receptor="syn", delay=0,
                          sparse=False)
    net.add_rule(side, rules.STDP(a_plus=0.01, a_minus=0.012, w_min=-1.0, w_max=2.0))
    before = side.weight.clone()
    out = net.unroll(30, spikes={"src": x}, record={"extra": "mem", "l2": "mem"})
    (out["extra"]["mem"].sum() + out["l2"]["mem"].sum()).backward()
    assert not torch.equal(side.weight, before) and projs[0].parameter.grad.abs().sum() > 0
