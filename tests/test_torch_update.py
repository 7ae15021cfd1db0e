"""neurosim.backends.torch_update: a population's update prepared once gives what the
model's own update gives, with its 0/1 constants and unset inputs written in, its zero
outputs filled and its writes ordered so no value is overwritten before it is read."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import neurosim as ns
from neurosim.backends.torch_update import write_order


def test_write_order_writes_a_value_before_the_array_it_is():
    a, b, c = torch.zeros(3), torch.ones(3), torch.full((3,), 2.0)
    # b's new value is a's array, and a is then cleared: b first, nothing copied
    assert write_order([0.0, a, c * 2], [a, b, c]) == ([1, 2, 0], frozenset())
    # a swap waits on itself: both values are copied before anything is written
    order, clones = write_order([b, a, c + 1], [a, b, c])
    assert sorted(order) == [0, 1, 2] and clones == {0, 1}
    assert write_order([a * 1, b * 2], [a, b]) == ([0, 1], frozenset())


class _Swap(ns.NeuronModel):
    """Two variables that trade values each step (a cycle of aliases)."""

    parameters = {}
    state_variables = {"x": ns.StateVariable("1", "first", 1.0), "y": ns.StateVariable("1", "second", 2.0)}
    inputs = ()
    receptors = {}

    def constants(self, p, dt):
        return {}

    @staticmethod
    def update(x, y):
        return y, x, x > 1e9


def test_variables_that_trade_values_keep_both():
    net = ns.Network(dt=1.0, backend="torch")
    pop = net.population(3, _Swap(), name="p")
    for step in range(1, 4):
        net.run(steps=1, progress=False)
        x, y = (2.0, 1.0) if step % 2 else (1.0, 2.0)
        assert pop.state["x"].tolist() == [[x] * 3] and pop.state["y"].tolist() == [[y] * 3]


def _graded_pair(backend: str):
    net = ns.Network(dt=1.0, batch=3, seed=0, backend=backend)
    x = net.population(4, ns.GradedInput(), name="x")
    h = net.population(5, ns.Graded("elu"), name="h")
    w = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    net.projection(x, h, weight=w, receptor="in", delay=0)
    x.inputs["i_ext"].copy_(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)))
    return net, x, h, torch.as_tensor(w)


def test_an_unset_input_and_a_zero_bias_are_left_out_until_set():
    net, x, h, w = _graded_pair("torch")
    net.run(steps=1, progress=False)
    prepared = net.backend._prepared["h"]
    assert dict(prepared.known) == {"bias": 0.0, "i_ext": 0.0}
    z = x.inputs["i_ext"] @ w
    torch.testing.assert_close(h.state["z"], z, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(h.state["r"], F.elu(z), rtol=1e-6, atol=1e-6)
    assert not h.state["i"].any()  # the input, cleared after use
    # an input written (and a bias set) is read from then on
    h.inputs["i_ext"].fill_(0.5)
    h.set_parameters(bias=0.25)
    net.run(steps=1, progress=False)
    assert dict(net.backend._prepared["h"].known) == {}
    torch.testing.assert_close(h.state["z"], z + 0.75, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(h.state["r"], F.elu(z + 0.75), rtol=1e-6, atol=1e-6)


def test_prepared_updates_give_the_numba_backends_values():
    values = {}
    for backend in ("torch", "numba"):
        net, x, h, _ = _graded_pair(backend)
        net.run(steps=2, progress=False)
        values[backend] = (h.state["z"].clone(), h.state["r"].clone())
    for a, b in zip(values["torch"], values["numba"]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
