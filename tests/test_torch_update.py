"""neurosim.backends.torch_update: a population's update prepared once gives what the
model's own update gives, with its 0/1 constants and unset inputs written in, its zero
outputs filled and its writes ordered so no value is overwritten before it is read."""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F

import pytest

import neurosim as ns
from neurosim.backends.torch_update import write_order
from neurosim.kernel import exp, kernel, maximum


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


def test_a_zero_bias_is_left_out_until_set():
    net, x, h, w = _graded_pair("torch")
    net.run(steps=1, progress=False)
    assert dict(net.backend._prepared["h"].known) == {"bias": 0.0}
    z = x.inputs["i_ext"] @ w
    torch.testing.assert_close(h.state["z"], z, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(h.state["r"], F.elu(z), rtol=1e-6, atol=1e-6)
    assert not h.state["i"].any()  # the input, cleared after use
    # a bias set (and an input written, through numpy: no version counted) is read from then on
    h.inputs["i_ext"].numpy()[:] = 0.5
    h.set_parameters(bias=0.25)
    net.run(steps=1, progress=False)
    assert dict(net.backend._prepared["h"].known) == {}
    torch.testing.assert_close(h.state["z"], z + 0.75, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(h.state["r"], F.elu(z + 0.75), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_a_nan_in_a_cleared_input_is_reported(backend):
    """The input cleared each step keeps a NaN as the model's own x * 0 does (it is not
    filled with zeros), so the run stops on it, on both backends."""
    net = ns.Network(dt=1.0, batch=1, seed=0, backend=backend)
    x = net.population(2, ns.GradedInput(), name="x")
    h = net.population(2, ns.Graded("relu"), name="h")
    net.projection(x, h, weight=np.ones((2, 2), np.float32), receptor="in", delay=1)
    x.inputs["i_ext"].fill_(1.0)

    def poke(n):  # a NaN injected for one step only
        x.inputs["i_ext"].fill_(float("nan") if n.clock.step == 2 else 1.0)

    net.add_callback(poke)
    with pytest.raises(FloatingPointError, match="population 'h'"):
        net.run(steps=10, progress=False)


CALLS = {"n": 0}


class _Counted(ns.NeuronModel):
    """Counts its calls (a side effect no update should have: it shows how many there are)."""

    parameters = {}
    state_variables = {"x": ns.StateVariable("1", "sum", 0.0)}
    inputs = ("i_ext",)
    receptors = {}

    def constants(self, p, dt):
        return {"zero": 0.0}

    @staticmethod
    def update(x, i_ext, zero):
        CALLS["n"] += 1
        x = x + i_ext + zero
        return x, x > 1e9


def test_the_update_runs_once_per_step_its_first_included():
    net = ns.Network(dt=1.0, backend="torch")
    pop = net.population(2, _Counted(), name="p")
    pop.inputs["i_ext"].fill_(1.0)
    CALLS["n"] = 0
    net.run(steps=3, progress=False)
    assert pop.state["x"].tolist() == [[3.0, 3.0]]
    assert net.backend._prepared["p"].known == (("zero", 0.0),)  # (specialized: checked at step 1)
    # the first step also ran the model's own update, on copies, to check the prepared one
    assert CALLS["n"] == 3 + 1


@kernel
def sigmoid(x, slope):
    """A model module's own helper, named like a kernel math function: it stays its own."""
    return 1.0 / (1.0 + exp(-slope * x))


class _OwnSigmoid(ns.NeuronModel):
    parameters = {}
    state_variables = {"r": ns.StateVariable("1", "rate", 0.0)}
    inputs = ("i_ext",)
    receptors = {}
    output = "graded"

    def constants(self, p, dt):
        return {"slope": 4.0}

    @staticmethod
    def update(r, i_ext, slope):
        r = sigmoid(i_ext, slope)
        return r, r


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_a_modules_own_helper_is_not_replaced_by_the_kernel_math_of_its_name(backend):
    net = ns.Network(dt=1.0, backend=backend)
    p = net.population(2, _OwnSigmoid(), name="p")
    p.inputs["i_ext"].fill_(0.5)
    net.run(steps=1, progress=False)
    torch.testing.assert_close(p.state["r"], torch.full((1, 2), 1.0 / (1.0 + np.exp(-2.0))))


def test_prepared_updates_give_the_numba_backends_values():
    values = {}
    for backend in ("torch", "numba"):
        net, x, h, _ = _graded_pair(backend)
        net.run(steps=2, progress=False)
        values[backend] = (h.state["z"].clone(), h.state["r"].clone())
    for a, b in zip(values["torch"], values["numba"]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@kernel
def spike(x):
    """A module's own firing condition: gating still re-binds it (the threshold offset)."""
    return x >= 0.0


class _OwnSpike(ns.NeuronModel):
    parameters = {}
    state_variables = {"v": ns.StateVariable("mV", "membrane", 0.0)}
    inputs = ("i_ext",)
    receptors = {}

    def constants(self, p, dt):
        return {"th": 1.0}

    @staticmethod
    def update(v, i_ext, th):
        v = i_ext
        return v, spike(v - th)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_a_gate_offset_reaches_a_modules_own_spike_helper(backend):
    net = ns.Network(dt=1.0, backend=backend)
    p = net.population(4, _OwnSpike(), name="p", gated=True)
    p.gate.set(offset=[0.0, 0.5, 1.0, 2.0])
    p.inputs["i_ext"].fill_(1.5)
    net.run(steps=1, progress=False)
    assert p.history[0, 0].tolist() == [True, True, False, False]


class _EmitsClearedInput(ns.NeuronModel):
    """Emits its input as it arrived, which the update then clears."""

    parameters = {}
    state_variables = {"i": ns.StateVariable("1", "input", 0.0), "z": ns.StateVariable("1", "sum", 0.0)}
    inputs = ("i_ext",)
    receptors = {"in": "i"}
    output = "graded"

    def constants(self, p, dt):
        return {"zero": 0.0}

    @staticmethod
    def update(i, z, i_ext, zero):
        return i * 0.0, i + zero, i


def test_a_compiled_slice_emits_what_an_eager_step_emits():
    def build():
        net = ns.Network(dt=1.0, seed=0, backend="torch")
        src = net.population(3, ns.GradedInput(), name="x")
        p = net.population(3, _EmitsClearedInput(), name="p")
        net.projection(src, p, weight=np.eye(3, dtype=np.float32), receptor="in", delay=1)
        src.inputs["i_ext"].copy_(torch.tensor([[1.0, 2.0, 3.0]]))
        net.run(steps=3, progress=False)  # (eager steps first: they bind the updates)
        return net, p

    (eager, pe), (compiled, pc) = build(), build()
    eager.run(steps=3, progress=False)
    step = compiled.backend.static_step
    step.prepare_slice(3)
    torch.compile(step.compilable_slice(3), fullgraph=True, backend="eager")()
    assert pe.history.abs().sum() > 0
    assert torch.equal(pe.history, pc.history)
    for var in pe.state:
        assert torch.equal(pe.state[var], pc.state[var])


# -- values written into their arrays by the update itself (specialize's write_into) ------
def _into(fn, own):
    from neurosim.backends.torch_update import into_operations
    from neurosim.kernel import TORCH_MATH
    from neurosim.specialize import specialize

    out = specialize(fn, {}, write_into=(own, into_operations(TORCH_MATH)))
    return getattr(out, "__neurosim_into__", ())


def _keeps_previous(x, x_prev, inp):  # x's array is returned as x_prev: written after
    x_new = x + inp
    return x_new, x, x_new


def _rebinds(v, i):
    v = v + i
    v = maximum(v, 0.0)
    return v, i * 0.5, v


def _aliases(v, i):  # y holds v's array when v would be written
    y = v
    v = v + i
    return v, y + 1.0, v


def _ends_in_a_helper(v, i):
    v = exp(v) + i
    w = kept(i)
    return v, w, v


def _documented(v, i):
    """An update with a docstring (not a statement that binds anything)."""
    v = v * 0.5 + i
    return v, i, v


def _unary_plus(x, y, i_ext):  # +x is x itself on torch: y holds x's array
    y = +x
    x = i_ext * 2.0
    return x, y, x


def _own_helper(z, r, i):  # the module's own sigmoid (above), not torch.sigmoid
    z = i * 1.0
    r = sigmoid(z, 4.0)
    return z, r, r


def test_write_into_picks_values_whose_old_arrays_are_not_read_after():
    assert _into(ns.models.graded.GradedELU.update, ["i", "z", "r"]) == (1, 2)  # (i: 0 * i, no name)
    assert _into(_keeps_previous, ["x", "x_prev"]) == ()
    assert _into(_rebinds, ["v", "i"]) == (0,)
    assert _into(_aliases, ["v", "i"]) == ()
    assert _into(_ends_in_a_helper, ["v", "i"]) == (0,)  # (w: a helper's value, not an operation)
    assert _into(_unary_plus, ["x", "y"]) == ()
    assert _into(_documented, ["v", "i"]) == (0,)
    assert _into(_own_helper, ["z", "r"]) == (0,)


@kernel
def kept(x):
    return x


class _Broadcast(ns.NeuronModel):
    """A variable set from a parameter alone: its value has the parameter's shape, so
    the update cannot write it into the (batch, n) array; it is copied there instead."""

    parameters = {"level": ns.Parameter(0.5, "1", "the level")}
    state_variables = {"x": ns.StateVariable("1", "level twice", 0.0)}
    inputs = ()
    receptors = {}

    def constants(self, p, dt):
        return {"level": p["level"]}

    @staticmethod
    def update(x, level):
        x = level * 2.0
        return x, x > 1e9


def test_a_value_that_cannot_be_written_into_its_array_is_copied():
    net = ns.Network(dt=1.0, batch=2, backend="torch")
    pop = net.population(3, _Broadcast(), name="p")
    array = pop.state["x"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.run(steps=2, progress=False)
    assert net.backend._prepared["p"].dests == ()
    assert pop.state["x"] is array and array.shape == (2, 3) and array.tolist() == [[1.0] * 3] * 2


def test_a_parameter_set_anew_has_the_update_checked_again():
    """Written into at first (a per-neuron level has the array's shape); a scalar level set
    later would make ``out=`` resize the array: the update is checked again and copies."""
    net = ns.Network(dt=1.0, batch=1, backend="torch")
    pop = net.population(3, _Broadcast(level=np.array([[0.1, 0.2, 0.3]], np.float32)), name="p")
    net.run(steps=2, progress=False)
    assert net.backend._prepared["p"].dests == (0,)
    pop.set_parameters(level=0.7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.run(steps=2, progress=False)
    assert net.backend._prepared["p"].dests == ()
    torch.testing.assert_close(pop.state["x"], torch.full((1, 3), 1.4))


def test_a_graded_unit_writes_z_and_r_into_their_arrays_and_agrees_with_numba():
    runs = {}
    for backend in ("torch", "numba"):
        net, x, h, w = _graded_pair(backend)
        arrays = {v: t for v, t in h.state.items()}
        for _ in range(3):
            net.run(steps=1, progress=False)
        assert all(h.state[v] is t for v, t in arrays.items())
        runs[backend] = {v: t.clone() for v, t in h.state.items()}
        if backend == "torch":
            assert net.backend._prepared["h"].dests == (1, 2)
            z = x.inputs["i_ext"] @ w
            torch.testing.assert_close(h.state["z"], z, rtol=1e-6, atol=1e-6)
    for v in runs["torch"]:
        torch.testing.assert_close(runs["torch"][v], runs["numba"][v], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "maximum", "minimum"])
def test_each_write_into_operation_gives_what_the_torch_math_gives(name):
    """Each operation written into ``out`` gives the torch math's value, bit for bit, for
    arrays and numbers on either side (a number minus an array: computed, then copied)."""
    from neurosim.backends.torch_update import INTO_OPERATIONS
    from neurosim.kernel import TORCH_MATH

    plain = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
             "div": lambda a, b: a / b, "maximum": TORCH_MATH["maximum"],
             "minimum": TORCH_MATH["minimum"]}[name]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g).abs() + 0.5
    for a, b in ((x, y), (x, 0.75), (0.75, y), (x, torch.tensor(0.25))):
        out = torch.full((3, 4), float("nan"))
        got = INTO_OPERATIONS[name](a, b, out)
        assert got is out
        want = plain(a, b)
        assert torch.equal(out, want.expand_as(out)), (name, a, b)


def test_where_and_the_math_functions_write_into_out():
    from neurosim.backends.torch_update import INTO_OPERATIONS

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 5, generator=g), torch.randn(2, 5, generator=g)
    for name, args, want in (("elu", (x,), F.elu(x)), ("sigmoid", (x,), torch.sigmoid(x)),
                             ("tanh", (x,), torch.tanh(x)), ("exp", (x,), torch.exp(x)),
                             ("where", (x > 0, x, y), torch.where(x > 0, x, y)),
                             ("where", (x > 0, 0.5, y), torch.where(x > 0, 0.5, y))):
        out = torch.empty(2, 5)
        assert INTO_OPERATIONS[name](*args, out) is out and torch.equal(out, want), name
