"""Graded populations: r = phi(z), delivered as r @ W, on every engine and in the differentiable mode."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import neurosim as ns

TORCH_PHI = {"identity": lambda z: z, "relu": F.relu, "elu": F.elu, "sigmoid": torch.sigmoid,
             "tanh": torch.tanh}


def mlp_net(engine, x, w1, w2, activation="elu", sparse=False, delay=0, dtype="float64"):
    batch = x.shape[0]
    net = ns.Network(dt=1.0, batch=batch, seed=0, dtype=dtype, **engine)
    inp = net.population(x.shape[1], ns.Graded("identity"), name="x")
    hid = net.population(w1.shape[1], ns.Graded(activation), name="h")
    out = net.population(w2.shape[1], ns.Graded("identity"), name="out")
    net.projection(inp, hid, weight=w1, receptor="in", delay=delay, sparse=sparse, name="w1")
    net.projection(hid, out, weight=w2, receptor="in", delay=delay, sparse=sparse, name="w2")
    inp.inputs["i_ext"].copy_(torch.as_tensor(x))
    return net, hid, out


def data(batch=5, n_in=7, n_hid=6, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(batch, n_in)), rng.normal(size=(n_in, n_hid)),
            rng.normal(size=(n_hid, n_out)))


@pytest.mark.parametrize("activation", sorted(TORCH_PHI))
def test_one_step_is_the_mlp_forward_pass(engine, activation):
    x, w1, w2 = data()
    net, hid, out = mlp_net(engine, x, w1, w2, activation)
    net.run(steps=1, progress=False)
    z = torch.as_tensor(x) @ torch.as_tensor(w1)
    h = TORCH_PHI[activation](z)
    torch.testing.assert_close(hid.state["z"].cpu(), z, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hid.state["r"].cpu(), h, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.state["r"].cpu(), h @ torch.as_tensor(w2), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(hid.spikes.cpu(), h)  # the ring holds the values
    assert float(hid.state["i"].abs().max()) == 0.0  # the input is used once


def test_sparse_storage_and_zero_values_deliver_the_same(engine):
    x, w1, w2 = data(seed=1)
    w1[np.abs(w1) < 0.5] = 0.0
    x[:, :3] = 0.0  # zero values are skipped by the event lists: must not matter
    dense, _, out_d = mlp_net(engine, x, w1, w2, "relu")
    csr, _, out_s = mlp_net(engine, x, w1, w2, "relu", sparse=True)
    dense.run(steps=1, progress=False)
    csr.run(steps=1, progress=False)
    torch.testing.assert_close(out_s.state["r"], out_d.state["r"], rtol=1e-12, atol=1e-12)


def test_delay_one_arrives_a_step_later(engine):
    x, w1, w2 = data(seed=2)
    net, hid, out = mlp_net(engine, x, w1, w2, "tanh", delay=1)
    net.run(steps=1, progress=False)
    assert float(hid.state["r"].abs().max()) == 0.0  # nothing arrived yet
    net.run(steps=1, progress=False)
    h = torch.tanh(torch.as_tensor(x) @ torch.as_tensor(w1))
    torch.testing.assert_close(hid.state["r"].cpu(), h, rtol=1e-12, atol=1e-12)
    assert float(out.state["r"].abs().max()) == 0.0  # the hidden values of step 0 were zero
    net.run(steps=1, progress=False)
    torch.testing.assert_close(out.state["r"].cpu(), h @ torch.as_tensor(w2), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", sorted(TORCH_PHI))
def test_unroll_gradients_equal_autograd_of_the_mlp(activation):
    x, w1, w2 = data(seed=3)
    net = ns.Network(dt=1.0, batch=5, dtype="float64", backend="torch")
    inp = net.population(7, ns.Graded("identity"), name="x")
    hid = net.population(6, ns.Graded(activation, bias=0.3), name="h")
    out = net.population(3, ns.Graded("identity"), name="out")
    p1 = net.projection(inp, hid, weight=w1, receptor="in", delay=0, trainable=True)
    p2 = net.projection(hid, out, weight=w2, receptor="in", delay=0, trainable=True)
    inp.inputs["i_ext"].copy_(torch.as_tensor(x))
    y = net.unroll(1, record={out: "r"})["out"]["r"][0]
    target = torch.linspace(-1, 1, 15, dtype=torch.float64).reshape(5, 3)
    ((y - target) ** 2).sum().backward()
    W1 = torch.as_tensor(w1).requires_grad_()
    W2 = torch.as_tensor(w2).requires_grad_()
    ref = TORCH_PHI[activation](torch.as_tensor(x) @ W1 + 0.3) @ W2
    ((ref - target) ** 2).sum().backward()
    torch.testing.assert_close(y.detach(), ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(p1.parameter.grad, W1.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(p2.parameter.grad, W2.grad, rtol=1e-10, atol=1e-12)


def test_extreme_inputs_stay_finite():
    values = torch.tensor([[-1e4, -30.0, 30.0, 1e4]])
    net = ns.Network(dt=1.0, batch=1, backend="torch")
    src = net.population(4, ns.Graded("identity"), name="src")
    src.inputs["i_ext"].copy_(values)
    pops = {a: net.population(4, ns.Graded(a), name=a) for a in TORCH_PHI}
    projs = [net.projection(src, p, weight=np.eye(4), receptor="in", delay=0, trainable=True)
             for p in pops.values()]
    out = net.unroll(1, record={p: "r" for p in pops.values()})
    sum(v["r"].sum() for v in out.values()).backward()
    for name, v in out.items():  # no NaN or inf from the unselected branch of a where
        torch.testing.assert_close(v["r"][0].detach(), TORCH_PHI[name](values), rtol=1e-6, atol=1e-6)
    for proj in projs:
        assert torch.isfinite(proj.parameter.grad).all()


def test_bad_use_is_refused():
    with pytest.raises(ValueError, match="activation must be one of"):
        ns.Graded("softplus")
    net = ns.Network(dt=1.0)
    pop = net.population(3, ns.Graded("relu"), name="g")
    with pytest.raises(ValueError, match="graded: it emits values"):
        net.spike_monitor(pop)
    with pytest.raises(ValueError, match="graded"):
        net.spike_counter(pop)
    with pytest.raises(ValueError, match="receptor 'exc'"):
        net.projection(pop, pop, weight=1.0, receptor="exc")


def test_graded_input_emits_what_is_injected(engine):
    net = ns.Network(dt=1.0, batch=2, dtype="float64", **engine)
    src = net.population(3, ns.GradedInput(), name="src")
    out = net.population(2, ns.Graded("identity"), name="out")
    net.projection(src, out, weight=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], receptor="in", delay=0)
    values = torch.tensor([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]], dtype=torch.float64)
    src.inputs["i_ext"].copy_(values)
    net.run(steps=1, progress=False)
    torch.testing.assert_close(src.state["r"].cpu(), values)
    torch.testing.assert_close(out.state["r"].cpu(), torch.tensor([[4.0, 5.0], [0.5, -0.5]], dtype=torch.float64))
    with pytest.raises(ValueError, match="no receptor"):
        net.projection(out, src, weight=1.0, receptor="in")
