"""neurosim.specialize: an update with its 0/1 constants written in computes the same
values and gradients as the model's own update, with fewer recorded operations."""

from __future__ import annotations

import pytest
import torch

from neurosim.kernel import bind
from neurosim.models.snntorch_leaky import SnnTorchLeaky
from neurosim.specialize import specialize
from neurosim.surrogate import differentiable_math, resolve


def recorded_operations(*outputs: torch.Tensor) -> int:
    """The autograd nodes behind ``outputs`` (each counted once)."""
    seen, stack = set(), [o.grad_fn for o in outputs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return len(seen)


@pytest.mark.parametrize("keep", [1.0, 0.0])
def test_specialized_leaky_update_gives_the_same_values_and_gradients(keep):
    math = differentiable_math(resolve(None, "test"))
    full = bind(SnnTorchLeaky.update, math)
    fast = bind(specialize(SnnTorchLeaky.update, {"keep": keep, "i_bias": 0.0}), math)
    assert specialize(SnnTorchLeaky.update, {"keep": keep, "i_bias": 0.0}) is not SnnTorchLeaky.update
    gen = torch.Generator().manual_seed(4)
    results = []
    for update in (full, fast):
        mem = (torch.rand(6, 50, generator=gen.manual_seed(4), dtype=torch.float64) * 2).requires_grad_()
        i_in = torch.randn(6, 50, generator=gen.manual_seed(5), dtype=torch.float64).requires_grad_()
        i_ext = torch.zeros(6, 50, dtype=torch.float64)
        beta, threshold = torch.tensor(0.9, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)
        consts = (torch.tensor(keep, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64))
        new_mem, new_in, spikes = update(mem, i_in, i_ext, beta, threshold, *consts)
        (new_mem.pow(2).sum() + spikes.sum()).backward()
        results.append((new_mem.detach(), new_in.detach(), spikes.detach(), mem.grad, i_in.grad,
                        recorded_operations(new_mem, spikes)))
    (m1, n1, s1, gm1, gi1, ops1), (m2, n2, s2, gm2, gi2, ops2) = results
    assert torch.equal(m1, m2) and torch.equal(n1, n2) and torch.equal(s1, s2)
    assert torch.equal(gm1, gm2) and torch.equal(gi1, gi2)
    assert s1.sum() > 0 and (m1 > 1.0).any()  # spikes and resets both happened
    assert ops2 < ops1, (ops1, ops2)


def _example(a, b, c, one, zero):  # (a kernel-style function to transform)
    kept = where(a > 0, one * b, b)  # noqa: F821 - `where` is bound by neurosim.kernel.bind
    return kept + zero - c * zero, c * 0.0


def test_identities_are_removed_and_other_uses_kept():
    import inspect

    fast = specialize(_example, {"one": 1.0, "zero": 0.0})
    assert fast is not _example and "where" in inspect.getsource(_example)
    math = differentiable_math(resolve(None, "test"))
    a, b, c = torch.randn(5), torch.randn(5), torch.randn(5)
    one, zero = torch.tensor(1.0), torch.tensor(0.0)
    out, zeros = bind(fast, math)(a, b, c, one, zero)
    want, want_zeros = bind(_example, math)(a, b, c, one, zero)
    assert torch.equal(out, want) and torch.equal(zeros, want_zeros)
    assert fast.__code__.co_names.count("where") == 0  # where(c, b, b) went too
    assert specialize(_example, {"one": 0.5}) is _example  # not an identity: unchanged
    assert specialize(_example, {}) is _example
    fn = eval("lambda a, one: one * a")  # no source to read: unchanged
    assert specialize(fn, {"one": 1.0}) is fn


def _rebinds(v, keep):
    keep = keep * 2.0
    return v * keep, v


def test_a_function_that_rebinds_a_known_name_or_closes_over_variables_is_left_alone():
    assert specialize(_rebinds, {"keep": 1.0}) is _rebinds
    gain = 3.0

    def closure(v, keep):
        return keep * v * gain, v

    assert specialize(closure, {"keep": 1.0}) is closure


def _returns_a_number(x, one):
    return x * 2.0, one * 1.0


def test_zero_outputs_are_the_values_returned_as_x_times_zero():
    from neurosim.models.lif import LIF
    from neurosim.specialize import zero_outputs

    assert zero_outputs(SnnTorchLeaky.update) == {1}  # i_in * 0.0: synaptic input used once
    assert zero_outputs(_example) == {1}
    assert zero_outputs(_returns_a_number) == frozenset()
    assert 0 not in zero_outputs(LIF.update)  # (v is never zeros)
    assert zero_outputs(eval("lambda x: x * 0.0")) == frozenset()  # no source: none known


def test_a_differentiable_run_gives_the_same_with_and_without_the_shortcuts(monkeypatch):
    """The 0/1 constants written in and the input sums started from their first term
    change no value and no gradient (float64, a two-layer leaky network with biases)."""
    import neurosim as ns
    from neurosim.backends import torch_unroll

    def run():
        net = ns.Network(dt=1.0, batch=3, seed=2, backend="torch", dtype="float64")
        src = net.population(20, ns.SpikeGenerator([], []), name="src")
        one = net.population(1, ns.SpikeGenerator([], []), name="one")
        hid = net.population(30, SnnTorchLeaky(beta=0.9, threshold=1.0), name="hid")
        out = net.population(5, SnnTorchLeaky(beta=0.8, threshold=1.0, subtract=0.0), name="out")
        gen = torch.Generator().manual_seed(0)
        projections = [
            net.projection(src, hid, weight=torch.randn(20, 30, generator=gen, dtype=torch.float64).numpy() * 0.5,
                           receptor="syn", delay=0, trainable=True),
            net.projection(one, hid, weight=torch.randn(1, 30, generator=gen, dtype=torch.float64).numpy() * 0.2,
                           receptor="syn", delay=0, trainable=True),
            net.projection(hid, out, weight=torch.randn(30, 5, generator=gen, dtype=torch.float64).numpy() * 0.6,
                           receptor="syn", delay=1, trainable=True)]
        x = (torch.rand(12, 3, 20, generator=gen, dtype=torch.float64) < 0.4).double()
        res = net.unroll(12, spikes={"src": x, "one": torch.ones(12, 3, 1, dtype=torch.float64)},
                         record={"out": ["mem", "spikes"], "hid": "spikes"})
        (res["out"]["mem"].pow(2).sum() + res["hid"]["spikes"].sum()).backward()
        return res, [p.parameter.grad.clone() for p in projections]

    fast, fast_grads = run()
    monkeypatch.setattr(torch_unroll, "specialize", lambda fn, known: fn)
    monkeypatch.setattr(torch_unroll, "zero_outputs", lambda fn: frozenset())
    plain, plain_grads = run()
    assert plain["hid"]["spikes"].sum() > 10
    for pop in ("out", "hid"):
        for var in fast[pop]:
            assert torch.equal(fast[pop][var], plain[pop][var])
    for a, b in zip(fast_grads, plain_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def _broadcasting_where(x, th, one):
    return where(x > one * th, th, th) * 1.0, x  # noqa: F821 - where(c, th, th) has c's shape


def test_a_specialization_that_changes_a_shape_is_caught_at_its_first_call():
    from neurosim.backends.torch_update import same_outputs

    math = differentiable_math(resolve(None, "test"))
    plain = bind(_broadcasting_where, math)
    fast = bind(specialize(_broadcasting_where, {"one": 1.0}), math)
    x, th = torch.randn(4, 3), torch.tensor(0.5)
    assert fast(x, th, 1.0)[0].shape == () and plain(x, th, 1.0)[0].shape == (4, 3)
    assert not same_outputs(fast, plain, (x, th, torch.tensor(1.0)))
    leaky = bind(specialize(SnnTorchLeaky.update, {"keep": 1.0, "i_bias": 0.0}), math)
    args = (torch.rand(2, 5) * 2, torch.randn(2, 5), torch.zeros(2, 5), torch.tensor(0.9),
            torch.tensor(1.0), torch.tensor(1.0), torch.tensor(0.0))
    assert same_outputs(leaky, bind(SnnTorchLeaky.update, math), args)


def test_an_update_that_would_return_a_bare_number_fails_its_first_call_check():
    from neurosim.backends.torch_update import same_outputs

    fast = specialize(_returns_a_number, {"one": 1.0})
    x, one = torch.randn(3), torch.tensor(1.0)
    assert not isinstance(fast(x, one)[1], torch.Tensor)
    assert not same_outputs(fast, _returns_a_number, (x, one))


def test_a_graded_network_with_delays_back_propagates():
    """A graded population read through a delay: the run reads its value ring, which a
    later step overwrites, so the graph must hold a copy (and an input passed straight
    through by GradedInput must not be the input array itself)."""
    import neurosim as ns

    net = ns.Network(dt=1.0, batch=2, seed=0, backend="torch", dtype="float64")
    x = net.population(3, ns.GradedInput(), name="x")
    h = net.population(4, ns.Graded("tanh"), name="h")
    proj = net.projection(x, h, weight=torch.full((3, 4), 0.3, dtype=torch.float64).numpy(), receptor="in",
                          delay=2, trainable=True)
    x.inputs["i_ext"].copy_(torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 0.0]], dtype=torch.float64))
    out = net.unroll(6, record={"h": "r"})
    out["h"]["r"].sum().backward()
    assert proj.parameter.grad.abs().max() > 0
    assert out["h"]["r"][0].abs().max() == 0 and out["h"]["r"][3].abs().max() > 0  # arrives after 2 steps


def _match_rebinds(v, keep):
    match 2.0:
        case keep:
            pass
    return v * keep, v


def test_match_captures_and_except_names_count_as_rebinding():
    assert specialize(_match_rebinds, {"keep": 1.0}) is _match_rebinds
