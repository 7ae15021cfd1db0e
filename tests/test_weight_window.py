"""Network(weight_window=K): the weights stay fixed for K steps, the rules' changes wait in
a pending sum, which is clipped and applied when the window ends (and at run ends and
events). Checked against runs that take other paths: learning off (the spikes within a
window), a rule with as_gradient (which accumulates the same changes in .grad without
moving the weights), and the other backend."""

from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns


def _build(backend: str, window: int | None = None, learning: bool = True,
           as_gradient: bool = False, every_norm: int | None = None):
    net = ns.Network(dt=0.5, seed=11, batch=2, backend=backend, weight_window=window)
    inp = net.population(60, ns.PoissonSource(rate=40.0), name="input")
    out = net.population(12, ns.LIF(tau_m=10.0), name="out", init={"v": ns.Uniform(-65.0, -55.0)})
    proj = net.projection(inp, out, ns.AllToAll(), weight=ns.Uniform(1.0, 4.0), sparse=False)
    rule = net.add_rule(proj, ns.rules.STDP(a_plus=0.08, a_minus=0.085, w_max=4.0,
                                            as_gradient=as_gradient))
    rule.learning = learning
    if every_norm is not None:
        net.add_rule(proj, ns.rules.WeightNormalization(150.0, every=every_norm))
    net.spike_monitor(out)
    return net, proj


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_one_window_runs_with_fixed_weights_and_applies_the_summed_change(backend):
    net, proj = _build(backend, window=200)
    w0 = proj.weight_matrix().copy()
    net.run(100.0, progress=False)  # 200 steps: one window
    off, _ = _build(backend, learning=False)
    off.run(100.0, progress=False)
    for a, b in zip(net.reader().spikes("out"), off.reader().spikes("out")):
        assert np.array_equal(a, b)  # the weights did not move within the window
    # as_gradient: the same changes, from the same (unmoving) weights, summed in .grad
    grad_net, grad_proj = _build("torch", as_gradient=True)
    grad_net.run(100.0, progress=False)
    g = grad_proj.weight.grad.numpy()
    expected = np.where(g != 0, np.clip(w0 - g, 0.0, 4.0), w0)
    w = proj.weight_matrix()
    assert np.abs(w - w0).max() > 0.5 and (w == 4.0).sum() > 0  # it learned, up to the bound
    assert np.array_equal(w, expected)


def test_windows_give_the_same_weights_on_both_backends_and_differ_from_every_step():
    runs = {}
    for backend in ("numba", "torch"):
        net, proj = _build(backend, window=100, every_norm=200)
        net.run(150.0, progress=False)  # 300 steps: three windows, normalised at 200
        runs[backend] = proj.weight_matrix()
        assert not net._exchange._open and not net._exchange.rules[0].pending.any()
    assert np.abs(runs["numba"] - runs["torch"]).max() <= 1e-5
    net, proj = _build("numba", every_norm=200)
    net.run(150.0, progress=False)
    assert np.abs(proj.weight_matrix() - runs["numba"]).max() > 1e-3  # a different schedule


def test_a_run_that_ends_inside_a_window_applies_it():
    """30 steps of a 1000-step window: the run's end applies the changes, so weights set
    afterwards are not overwritten by a window opened before."""
    net, proj = _build("numba", window=1000)
    w0 = proj.weight_matrix().copy()
    net.run(15.0, progress=False)
    assert np.abs(proj.weight_matrix() - w0).max() > 0
    net.rules["input_out.STDP"].learning = False
    proj.set_weights(np.full((60, 12), 2.0))
    net.run(20.0, progress=False)
    assert np.array_equal(proj.weight_matrix(), np.full((60, 12), 2.0))


def test_bad_windows_are_refused():
    for bad in (0, -3, 2.5, True, "100"):
        with pytest.raises(ValueError, match="weight_window must be a positive number of steps"):
            ns.Network(weight_window=bad)
    net, _ = _build("numba", window=150, every_norm=200)
    with pytest.raises(ValueError, match="must apply where windows end"):
        net.run(1.0, progress=False)


def test_an_event_within_a_run_leaves_no_change_pending():
    """A callback fires an event 15 steps into a 30-step run of a 100-step window: the
    event applies the window so far, the steps after it open it again, and the run's
    end applies those (nothing waits to fall into the next run)."""
    for backend in ("numba", "torch"):
        net, proj = _build(backend, window=100)
        other = net.projection(net.populations["input"], net.populations["out"], ns.AllToAll(),
                               weight=1.0, sparse=False)
        net.add_rule(other, ns.rules.STDP(a_plus=0.01, a_minus=0.01, w_max=4.0,
                                          apply_at="end_of_sample"))
        net.add_callback(lambda n: n.trigger("end_of_sample") if n.clock.step == 15 else None)
        w0 = proj.weight_matrix().copy()
        net.run(15.0, progress=False)
        rule = net.rules["input_out.STDP"]
        assert not rule.pending.any() and not net._exchange._open
        assert np.abs(proj.weight_matrix() - w0).max() > 0


def test_a_normalisation_of_another_projection_may_come_before_in_rule_order():
    net = ns.Network(dt=0.5, seed=1, weight_window=100)
    inp = net.population(10, ns.PoissonSource(rate=40.0), name="input")
    out = net.population(4, ns.LIF(), name="out")
    a = net.projection(inp, out, ns.AllToAll(), weight=1.0, sparse=False)
    b = net.projection(inp, out, ns.AllToAll(), weight=1.0, sparse=False)
    net.add_rule(a, ns.rules.STDP(w_max=4.0))
    net.add_rule(a, ns.rules.WeightNormalization(10.0, every=100))
    net.add_rule(b, ns.rules.STDP(w_max=4.0))  # added after a's normalisation
    net.run(60.0, progress=False)
    assert net.clock.step == 120
