"""Rules written once (recipes) run compiled on numba and give torch's bits.

Every built-in rule and a user-written one run in one network per layout
(dense or CSR synapses, batch 1 or 4); both engines must give identical weights,
spikes and rule state. A per-sample three-factor update at batch 4 must equal
four batch-1 runs applied in order, and a hook may read a neuron's voltage.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim import rules
from neurosim.rules.recipe import Recipe, Trace


def user_potentiation(w, x_pre, lr, w_max):
    return lr * x_pre * (w_max - w)


class UserRule(rules.Rule):
    """A user's rule: soft-bounded potentiation at postsynaptic spikes."""

    def recipe(self) -> Recipe:
        return Recipe(traces=(Trace("x_pre", "pre", 15.0),), on_post=user_potentiation)


EXCITATORY = {
    "STDP": lambda: rules.STDP(w_max=2.0),
    "STDP soft, nearest": lambda: rules.STDP(w_max=2.0, weight_dependence="multiplicative",
                                             pairing="nearest"),
    "TripletSTDP": lambda: rules.TripletSTDP(w_max=2.0, a2_plus=5e-3),
    "DiehlCookSTDP": lambda: rules.DiehlCookSTDP(w_max=2.0),
    "Hebb": lambda: rules.Hebb(lr=1e-6, decay=1e-4, w_max=2.0),
    "Oja": lambda: rules.Oja(lr=1e-6, w_max=2.0),
    "BCM": lambda: rules.BCM(lr=1e-7, w_max=2.0, tau_theta=100.0),
    "WeightNormalization": lambda: rules.WeightNormalization(12.0, every=7),
    "RewardModulatedSTDP": lambda: rules.RewardModulatedSTDP(modulator="da", w_max=2.0, every=5),
    "user rule": lambda: UserRule(lr=0.01, w_max=2.0),
}
INHIBITORY = {
    "InhibitoryPlasticity": lambda: rules.InhibitoryPlasticity(target_rate_hz=10.0, lr=0.01),
    "RateHomeostasis": lambda: rules.RateHomeostasis(target_rate_hz=10.0, lr=1e-4),
}


def every_rule(backend: str, batch: int, sparse: bool):
    net = ns.Network(dt=0.5, seed=3, backend=backend, batch=batch)
    net.modulators.add("da", tau_ms=50.0, initial=1.0, baseline=0.1)
    src = net.population(30, ns.PoissonSource(rate=40.0), name="src")
    out = net.population(8, ns.LIF(i_bias=14.0), name="out")
    projs = {}
    for name, make in {**EXCITATORY, **INHIBITORY}.items():
        inh = name in INHIBITORY
        proj = net.projection(src, out, ns.FixedProbability(0.5), sparse=sparse,
                              weight=ns.Uniform(-0.1, -0.02) if inh else ns.Uniform(0.02, 0.15),
                              receptor="inh" if inh else "exc")
        net.add_rule(proj, make())
        projs[name] = proj
    net.spike_monitor(out)
    return net, projs


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_every_rule_is_compiled_and_bit_identical_on_both_backends(batch, sparse):
    out = {}
    for backend in ("torch", "numba"):
        net, projs = every_rule(backend, batch, sparse)
        before = {name: p.weight_matrix() for name, p in projs.items()}
        net.run(150.0, progress=False)
        changed = [name for name, p in projs.items()
                   if np.abs(p.weight_matrix() - before[name]).max() > 1e-6]
        assert sorted(changed) == sorted(projs), "every rule changed its weights"
        if backend == "numba":
            inside, outside = net.backend._rules
            assert outside == [] and len(inside) == len(projs)
        out[backend] = ({name: p.weight_matrix() for name, p in projs.items()},
                        net.reader().spikes("out"),
                        {k: v.clone() for k, v in net.state_dict().items() if k.startswith("rules.")})
    steps, _, _ = out["torch"][1]
    assert len(steps) > 20 * batch  # the postsynaptic neurons fired
    for name in out["torch"][0]:
        np.testing.assert_array_equal(out["torch"][0][name], out["numba"][0][name], err_msg=name)
    for x, y in zip(out["torch"][1], out["numba"][1]):
        np.testing.assert_array_equal(x, y)
    for key, value in out["torch"][2].items():
        torch.testing.assert_close(value, out["numba"][2][key], rtol=0, atol=0, msg=key)


def per_sample_network(engine: dict, batch: int, rows: list[int]):
    """Each sample: its own presynaptic and postsynaptic spike trains and its own error."""
    rng = np.random.default_rng(5)
    trains = [(np.sort(rng.choice(np.arange(1, 400), 60, replace=False)) * 0.5,
               rng.integers(0, 12, 60)) for _ in range(4)]
    drive_trains = [(np.sort(rng.choice(np.arange(1, 400), 50, replace=False)) * 0.5,
                     rng.integers(0, 6, 50)) for _ in range(4)]
    errors = np.linspace(-1.0, 1.0, 4 * 6).reshape(4, 6)[::-1].copy()

    def generator(trains_):
        times = np.concatenate([trains_[r][0] for r in rows])
        neurons = np.concatenate([trains_[r][1] for r in rows])
        batch_rows = np.concatenate([np.full(len(trains_[r][0]), k) for k, r in enumerate(rows)])
        return ns.SpikeGenerator(times, neurons, batch=batch_rows)

    net = ns.Network(dt=0.5, seed=1, batch=batch, **engine)
    net.modulators.add("error", size=6, per_sample=True)
    net.modulators.set("error", torch.as_tensor(errors[rows]))
    pre = net.population(12, generator(trains), name="pre")
    drive = net.population(6, generator(drive_trains), name="drive")
    post = net.population(6, ns.LIF(), name="post")
    net.projection(drive, post, ns.OneToOne(), weight=40.0)  # each drive spike makes a post spike
    proj = net.projection(pre, post, ns.AllToAll(), weight=0.0, sparse=False)
    # applied once, at the last step: the batch sum of each sample's error times its eligibility
    net.add_rule(proj, rules.RewardModulatedSTDP(modulator="error", lr=1e-3, w_min=-10.0,
                                                 w_max=10.0, every=399, tau_eligibility=100.0))
    return net, proj


def test_per_sample_three_factor_at_batch_4_equals_four_batch_1_runs_in_order(engine):
    net, proj = per_sample_network(engine, 4, [0, 1, 2, 3])
    net.run(steps=400, progress=False)
    batched = proj.weight_matrix()
    assert np.abs(batched).max() > 1e-4
    weights = None
    for r in range(4):
        single, p1 = per_sample_network(engine, 1, [r])
        if weights is not None:
            p1.set_weights(weights)
        single.run(steps=400, progress=False)
        weights = p1.weight_matrix()
    np.testing.assert_allclose(batched, weights, rtol=1e-5, atol=1e-9)


def voltage_rule_hook(w, x_pre, post_v, lr):
    # potentiation in proportion to how far the membrane is above -60 mV (Clopath-like)
    return lr * x_pre * where(post_v > -60.0, post_v + 60.0, 0.0)


from neurosim.kernel import where  # noqa: E402 - used by the hook above


class VoltageRule(rules.Rule):
    continuous = True

    def recipe(self) -> Recipe:
        return Recipe(traces=(Trace("x_pre", "pre", 10.0),), per_step=voltage_rule_hook)


def test_a_hook_reads_the_postsynaptic_voltage_on_both_backends():
    out = {}
    for backend in ("torch", "numba"):
        net = ns.Network(dt=0.5, seed=2, backend=backend)
        src = net.population(10, ns.PoissonSource(rate=50.0), name="src")
        post = net.population(3, ns.LIF(i_bias=14.0), name="post")
        proj = net.projection(src, post, weight=0.5, sparse=False)
        rule = net.add_rule(proj, VoltageRule(lr=1e-3, w_max=5.0))
        net.run(50.0, progress=False)
        w0, x, v = proj.weight.clone(), rule.x_pre.value.clone(), post.state["v"].clone()
        net.run(steps=1, progress=False)
        # the last step by hand, from the traces and voltages the step itself produced
        x, v = rule.x_pre.value[0], post.state["v"][0]
        expected = w0 + rule.effective_lr * x[:, None] * torch.where(v > -60.0, v + 60.0, 0.0)[None, :]
        torch.testing.assert_close(proj.weight, expected.clamp(0.0, 5.0))
        assert (v > -60.0).any()
        out[backend] = proj.weight_matrix()
    np.testing.assert_array_equal(out["torch"], out["numba"])


def test_unknown_hook_argument_is_named_at_add_rule():
    def hook(w, x_pre, lr, nonsense):
        return lr * x_pre

    class Broken(rules.Rule):
        def recipe(self):
            return Recipe(traces=(Trace("x_pre", "pre", 10.0),), on_post=hook)

    net = ns.Network(dt=0.5)
    a = net.population(3, ns.PoissonSource(rate=5.0))
    b = net.population(2, ns.LIF())
    proj = net.projection(a, b, weight=0.1)
    with pytest.raises(ValueError, match="'nonsense' is not a weight, trace"):
        net.add_rule(proj, Broken())
    proj2 = net.projection(a, b, weight=0.1)
    with pytest.raises(ValueError, match="no state variable 'q'"):
        class ReadsQ(rules.Rule):
            def recipe(self):
                return Recipe(on_post=lambda_free_q)
        net.add_rule(proj2, ReadsQ())


def lambda_free_q(w, post_q):
    return w


def test_the_schedule_is_what_the_numba_kernel_runs_in_that_order():
    import re

    net = ns.Network(dt=0.5, seed=1, backend="numba")
    net.modulators.add("da", tau_ms=100.0)
    net.modulators.add("error", size=4)
    net.modulators.add_random_feedback("hidden", "error", size=6)
    src = net.population(10, ns.PoissonSource(rate=20.0), name="src")
    hid = net.population(6, ns.LIF(), name="hid")
    out = net.population(4, ns.LIF(), name="out")
    p1 = net.projection(src, hid, ns.FixedProbability(0.5), weight=0.5, sparse=True)
    p2 = net.projection(hid, out, weight=0.5, sparse=False)
    net.add_rule(p1, rules.RewardModulatedSTDP(modulator="hidden"))
    net.add_rule(p2, rules.Oja(lr=1e-6))
    net.add_rule(p2, rules.WeightNormalization(2.0, every=10))
    net.step_current(hid, 1.0, start_ms=0.0)
    net.add_callback(lambda n: None, every=5)
    net.spike_monitor(out)
    net.state_monitor(hid, ["v"])
    net.weight_monitor(p2, every=10)
    net.compile()
    entries = net.schedule.entries()
    run_src = net.backend._plan.source.split("def run(")[1]
    seen = [(int(m.group(1)), m.group(2), m.group(3) is not None)
            for m in re.finditer(r"# schedule (\d+): (\w+) [\w ]+?( \[from Python.*\])?$", run_src, re.M)]
    assert [e for e, _, _ in seen] == list(range(len(entries)))  # every entry, in order
    for (e, phase, python), (phase_s, member, kind, _) in zip(seen, entries):
        assert phase == phase_s
        # only step currents, callbacks and the weight snapshot run from Python
        assert python == (kind == "python"), member
    assert sum(python for _, _, python in seen) == 3
    assert "note" not in str(net.schedule)  # nothing falls back to Python


def test_a_rule_applied_at_the_end_of_each_sample(engine):
    """Eligibility follows every step; the weights change only when present() ends a
    presentation, by lr * dt * M * e from the eligibility at that moment."""
    from neurosim.datasets import present

    net = ns.Network(dt=0.5, seed=4, batch=2, **engine)
    net.modulators.add("error", size=5, per_sample=True)
    net.modulators.set("error", torch.tensor([[1.0, -1.0, 0.5, 0.0, 2.0], [-0.5, 1.0, 0.0, 1.0, 1.0]]))
    src = net.population(16, ns.PoissonSource(rate=0.0), name="src")
    out = net.population(5, ns.LIF(i_bias=20.0), name="out")
    proj = net.projection(src, out, weight=0.5, sparse=False)
    rule = net.add_rule(proj, rules.RewardModulatedSTDP(modulator="error", lr=0.05, w_min=-5.0,
                                                        w_max=5.0, apply_at="end_of_sample"))
    assert "on end_of_sample: src_out.RewardModulatedSTDP" in str(net.schedule)
    images = np.random.default_rng(0).random((4, 16)) * 255.0  # pixel values
    seen = []
    original = net.trigger

    def spy(event):
        seen.append((net.clock.step, proj.weight.clone(), rule.eligibility.clone()))
        original(event)
        seen[-1] += (proj.weight.clone(),)

    net.trigger = spy
    for _ in present(net, src, images, duration_ms=50.0, rest_ms=20.0):
        pass
    assert [s for s, *_ in seen] == [100, 240]  # after each presentation of each batch
    m = net.modulators.get("error")
    for step, before, e, after in seen:
        assert np.abs(e.cpu().numpy()).max() > 0
        expected = before + 0.05 * 0.5 * (m[:, None, :] * e).sum(0)
        torch.testing.assert_close(after, expected.clamp(-5.0, 5.0))
    # between events the weights stay as the last event left them
    torch.testing.assert_close(seen[1][1], seen[0][3])


def test_rules_share_the_traces_of_the_same_spikes():
    net, projs = every_rule("numba", 1, False)
    declared = sum(len(r.declared.traces) for r in net.rules.values())
    # Hebb, Oja, BCM (tau 50) share theirs; STDP's and the user rule's pre traces (tau 20/15)
    # differ in tau or mode; every post trace follows the same population
    assert len(net.shared_traces) < declared - 5
    by_type = {type(r).__name__: r for r in net.rules.values()}
    assert by_type["Hebb"].x_pre is by_type["Oja"].x_pre is by_type["BCM"].x_pre
    assert "spike traces (" in str(net.schedule)


def test_each_backend_implements_every_kind_of_schedule_entry():
    from neurosim.backends.numba_codegen import KernelWriter
    from neurosim.backends.torch_backend import TorchBackend
    from neurosim.schedule import KINDS

    for kind in KINDS:
        assert callable(getattr(TorchBackend, f"run_{kind}", None)) or kind == "python", kind
        assert callable(getattr(KernelWriter, f"emit_{kind}", None)), kind
    net = ns.Network(dt=0.5, seed=1, backend="torch")
    src = net.population(10, ns.PoissonSource(rate=20.0), name="src")
    out = net.population(4, ns.LIF(), name="out")
    net.add_rule(net.projection(src, out, weight=0.5), rules.STDP())
    net.spike_monitor(out), net.spike_counter(out), net.state_monitor(out, "v")
    kinds = [kind for *_, kind, _ in net.schedule.entries()]
    assert set(kinds) <= set(KINDS)
    assert {"population", "delivery", "spike_traces", "rule_apply", "record_spikes",
            "count_spikes", "record_state"} <= set(kinds)


def test_the_declared_arrays_are_the_state_backends_step():
    """What a population, projection and monitor declare in arrays() is the very
    tensors the torch backend updates in place (so both backends share one data model)."""
    net = ns.Network(dt=0.5, seed=1, backend="torch", batch=2)
    src = net.population(10, ns.PoissonSource(rate=200.0), name="src")
    out = net.population(4, ns.LIF(), name="out")
    proj = net.projection(src, out, ns.FixedProbability(0.5), weight=3.0, sparse=True, delay=2)
    mon = net.state_monitor(out, ["v", "i_e"], neurons=[1, 2])
    declared = {k: v for k, v in out.arrays().items()}
    assert {"spikes", "state.v", "state.i_e", "input.i_ext", "const.decay_m"} <= set(declared)
    assert set(src.arrays()) >= {"spikes", "key.u", "const.p_spike"}
    assert {"weight", "indices", "block0.indptr"} <= set(proj.arrays())
    net.run(20.0, progress=False)
    net.reset_state()
    net.run(5.0, progress=False)
    for name, t in out.arrays().items():
        assert t is declared[name], name  # updated (and reset) in place, never replaced
    assert declared["state.i_e"].abs().sum() > 0  # spikes arrived
    buf = mon.arrays()["buffer.v"]
    assert buf.shape[1:] == (2, 2)


def grow_by_pre(w, x_pre, lr):
    return lr * x_pre


def column_weight(w):
    return w


def scale_columns(w, d, post_sum, total):
    return (w + d) * (total / post_sum)


class _GrowThenNormalise(rules.Rule):
    """Grows by the presynaptic trace every step, then rescales each column to ``total``."""

    continuous = True

    def __init__(self, total, **kwargs):
        super().__init__(**kwargs)
        self.total = total

    def recipe(self):
        return Recipe(traces=(Trace("x_pre", "pre", 10.0),), per_step=grow_by_pre,
                      column=column_weight, on_apply=scale_columns)


def _column_rule_weights(rule, sparse: bool, seed: int, steps: int, modulated: bool = False):
    """The weights that ``rule()`` (normalising each column to 2) leaves on torch and on
    numba, from 8 Poisson inputs onto 4 LIF neurons (a dopamine signal at 1 if
    ``modulated``, plus an STDP projection keeping post traces busy)."""
    out = {}
    for backend in ("torch", "numba"):
        net = ns.Network(dt=0.5, seed=seed, backend=backend)
        src = net.population(8, ns.PoissonSource(rate=80.0), name="src")
        post = net.population(4, ns.LIF(), name="out")
        if modulated:
            net.modulators.add("da", initial=1.0)
            net.add_rule(net.projection(src, post, weight=3.0, sparse=sparse), rules.STDP())
        proj = net.projection(src, post, ns.FixedProbability(0.7), weight=ns.Uniform(0.1, 1.0),
                              sparse=sparse)
        net.add_rule(proj, rule())
        net.run(steps=steps, progress=False)
        out[backend] = proj.weight_matrix()
    return out


@pytest.mark.parametrize("sparse", [False, True])
def test_a_per_step_rule_with_a_column_sum_agrees_on_both_backends(sparse):
    out = _column_rule_weights(lambda: _GrowThenNormalise(lr=1e-2, w_max=10.0, total=2.0),
                               sparse, seed=0, steps=50)
    np.testing.assert_array_equal(out["numba"], out["torch"])
    np.testing.assert_allclose(out["torch"].sum(0), 2.0, rtol=0.02)


def eligible_gate(e, da, lr):
    return lr * da * e


def pre_pairing(x_post_before):
    return x_post_before


class _GatedThenNormalised(rules.Rule):
    """A three-factor rule (eligibility gated by a modulator) whose weights are then
    rescaled per column: eligibility and a column hook together."""

    def __init__(self, total, **kwargs):
        super().__init__(**kwargs)
        self.total = total

    def recipe(self):
        return Recipe(traces=(Trace("x_post", "post", 20.0),), on_pre=pre_pairing, eligibility=50.0,
                      gate=eligible_gate, signals={"da": "da"}, column=column_weight,
                      on_apply=scale_columns)


@pytest.mark.parametrize("sparse", [False, True])
def test_an_eligibility_rule_with_a_column_sum_compiles_and_agrees(sparse):
    out = _column_rule_weights(lambda: _GatedThenNormalised(lr=1e-1, w_max=10.0, total=2.0),
                               sparse, seed=1, steps=60, modulated=True)
    np.testing.assert_array_equal(out["numba"], out["torch"])
    np.testing.assert_allclose(out["torch"].sum(0), 2.0, rtol=0.02)
