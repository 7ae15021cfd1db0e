"""Delay-0 projections: spikes arrive in the step they are fired, in a safe order."""

from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns


def _first_spikes(engine, delay, reverse):
    """Step of the first spike of a chain a -> b -> c, where a fires at step 0 and each
    synapse alone brings its target over threshold."""
    net = ns.Network(dt=1.0, **engine)
    leaky = dict(beta=0.5, threshold=1.0)
    names = ["c", "b", "a"] if reverse else ["a", "b", "c"]
    pops = {n: net.population(1, ns.SnnTorchLeaky(i_bias=1.5 if n == "a" else 0.0, **leaky), name=n)
            for n in names}
    net.projection(pops["a"], pops["b"], weight=2.0, receptor="syn", delay=delay)
    net.projection(pops["b"], pops["c"], weight=2.0, receptor="syn", delay=delay)
    for n in "abc":
        net.spike_monitor(pops[n])
    net.run(steps=6, progress=False)
    return [int(net.reader().spikes(n)[0][0]) for n in "abc"]


@pytest.mark.parametrize("reverse", [False, True])
def test_delay_zero_delivers_in_the_same_step_whatever_the_order_of_creation(engine, reverse):
    assert _first_spikes(engine, 0, reverse) == [0, 0, 0]
    assert _first_spikes(engine, 1, reverse) == [0, 1, 2]
    assert _first_spikes(engine, 2, reverse) == [0, 2, 4]


def test_the_schedule_puts_a_delay_zero_delivery_between_its_two_populations():
    net = ns.Network(dt=1.0)
    c = net.population(2, ns.SnnTorchLeaky(), name="c")
    b = net.population(2, ns.SnnTorchLeaky(), name="b")
    a = net.population(2, ns.SnnTorchLeaky(), name="a")
    net.projection(a, b, weight=1.0, receptor="syn", delay=0, name="ab")
    net.projection(b, c, weight=1.0, receptor="syn", delay=0, name="bc")
    net.projection(c, a, weight=1.0, receptor="syn", delay=1, name="ca")
    neurons = [(e.kind, e.obj.name) for e in net.schedule["neurons"].entries]
    assert neurons == [("population", "a"), ("delivery", "ab"), ("population", "b"),
                       ("delivery", "bc"), ("population", "c")]
    assert [e.obj.name for e in net.schedule["deliver"].entries] == ["ca"]


def test_a_loop_of_delay_zero_projections_is_refused_by_name():
    net = ns.Network(dt=1.0)
    a = net.population(2, ns.SnnTorchLeaky(), name="a")
    b = net.population(2, ns.SnnTorchLeaky(), name="b")
    net.projection(a, b, weight=1.0, receptor="syn", delay=0, name="ab")
    net.projection(b, a, weight=1.0, receptor="syn", delay=0, name="ba")
    with pytest.raises(ValueError, match=r"\['ab', 'ba'\] form a loop of delay-0"):
        net.run(steps=1, progress=False)
    with pytest.raises(ValueError, match="steps >= 0"):
        net.projection(a, b, weight=1.0, receptor="syn", delay=-1)


def test_a_delay_zero_self_projection_is_a_loop():
    net = ns.Network(dt=1.0)
    a = net.population(3, ns.SnnTorchLeaky(), name="a")
    net.projection(a, a, ns.FixedProbability(0.5), weight=np.ones((3, 3)), receptor="syn", delay=0,
                   name="aa")
    with pytest.raises(ValueError, match="loop of delay-0"):
        net.compile()


def test_the_loop_error_names_only_the_projections_in_the_loop():
    net = ns.Network(dt=1.0)
    a, b, c = (net.population(2, ns.SnnTorchLeaky(), name=n) for n in "abc")
    net.projection(a, b, weight=1.0, receptor="syn", delay=0, name="ab")
    net.projection(b, a, weight=1.0, receptor="syn", delay=0, name="ba")
    net.projection(b, c, weight=1.0, receptor="syn", delay=0, name="bc")
    with pytest.raises(ValueError, match=r"projections \['ab', 'ba'\] form a loop"):
        net.compile()
