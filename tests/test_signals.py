"""Derived signals are computed inside the step (compiled on numba) and equal their
definitions: product, sigmoid gate, population rate, error of spike counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim import rules


def signal_net(backend: str):
    net = ns.Network(dt=0.5, seed=11, backend=backend, batch=3)
    src = net.population(40, ns.PoissonSource(rate=40.0), name="src")
    out = net.population(6, ns.LIF(i_bias=14.0), name="out")
    proj = net.projection(src, out, ns.FixedProbability(0.5), weight=ns.Uniform(0.2, 0.8))
    mods = net.modulators
    mods.add("reward", tau_ms=100.0, initial=1.0)
    mods.add("attention", size=6, initial=0.5)
    mods.add_product("gated", "reward", "attention")
    mods.add_sigmoid("gate", "gated", gain=4.0, threshold=0.2)
    mods.add_rate("src_rate", src, tau_ms=20.0)
    mods.add_rate("out_rates", out, tau_ms=20.0, per_neuron=True)
    mods.add_count_error("error", out, scale=0.5)
    mods.set_target("error", torch.tensor([[3.0] * 6, [0.0] * 6, [1.0] * 6]))
    mods.add_product("error_gate", "error", "gate")
    net.add_rule(proj, rules.RewardModulatedSTDP(modulator="error_gate", w_max=2.0, every=4))
    counter = net.spike_counter(out)
    return net, proj, counter


def test_derived_signals_follow_their_definitions_and_agree_bit_for_bit():
    out = {}
    for backend in ("torch", "numba"):
        net, proj, counter = signal_net(backend)
        if backend == "numba":
            net.compile()
            assert "    rate_signal(" in net.backend._plan.source and "    sigmoid_signal(" in net.backend._plan.source
            assert "count_error_signal(" in net.backend._plan.source
        net.run(100.0, progress=False)
        mods = net.modulators
        values = {m.name: m.value.clone() for m in mods}
        reward, attention = values["reward"], values["attention"]
        torch.testing.assert_close(values["gated"], reward * attention)
        torch.testing.assert_close(values["gate"], torch.sigmoid(4.0 * (values["gated"] - 0.2)))
        counts = counter.counts
        torch.testing.assert_close(values["error"], torch.tensor([[3.0], [0.0], [1.0]]) - 0.5 * counts)
        assert counts.sum() > 10
        assert 25.0 < values["src_rate"].item() < 60.0  # 40 Hz Poisson, filtered over 20 ms
        assert values["out_rates"].shape == (3, 6) and values["out_rates"].max() > 0
        # a new sample: counts start again, the error is the target
        net.reset_state()
        torch.testing.assert_close(mods["error"].value, torch.tensor([[3.0] * 6, [0.0] * 6, [1.0] * 6]))
        out[backend] = values, proj.weight_matrix()
    for name, value in out["torch"][0].items():
        torch.testing.assert_close(value, out["numba"][0][name], rtol=0, atol=0, msg=name)
    np.testing.assert_array_equal(out["torch"][1], out["numba"][1])


def test_the_population_rate_is_the_filtered_spike_fraction():
    net = ns.Network(dt=1.0, seed=2, backend="numba")
    src = net.population(500, ns.PoissonSource(rate=20.0), name="src")
    net.modulators.add_rate("r", src, tau_ms=200.0)
    net.run(2000.0, progress=False)
    assert net.modulators.get("r").item() == pytest.approx(20.0, rel=0.1)


def test_signal_errors():
    net = ns.Network(dt=0.5)
    pop = net.population(3, ns.LIF())
    net.modulators.add("a", size=3)
    net.modulators.add("b", size=4)
    with pytest.raises(ValueError, match="do not broadcast"):
        net.modulators.add_product("ab", "a", "b")
    with pytest.raises(ValueError, match="not a count-error or population-error signal"):
        net.modulators.set_target("a", [1.0, 2.0, 3.0])
    net.modulators.add_count_error("e", pop)
    with pytest.raises(ValueError, match="target must have shape"):
        net.modulators.set_target("e", [1.0, 2.0])
    net.modulators.add_sigmoid("s", "a")
    with pytest.raises(ValueError, match="is computed"):
        net.modulators.set("s", 1.0)


def test_a_count_errors_counts_are_part_of_the_saved_state(tmp_path):
    """Saving mid-sample and loading into a rebuilt network continues the count error
    exactly (its counts so far and its target are state, not only its value)."""
    def build():
        net = ns.Network(dt=0.5, seed=4, backend="numba", batch=2)
        src = net.population(20, ns.PoissonSource(rate=300.0), name="src")
        out = net.population(5, ns.LIF(), name="out")
        net.projection(src, out, weight=4.0)
        net.modulators.add_count_error("err", out, scale=0.5)
        net.modulators.set_target("err", np.full((2, 5), 3.0))
        return net

    net = build()
    net.run(20.0, progress=False)
    assert "modulators.err.counts" in net.state_dict()
    assert float(net.state_dict()["modulators.err.counts"].sum()) > 0
    net.save_state(tmp_path / "mid.h5")
    net.run(20.0, progress=False)
    other = build()
    other.load_state(tmp_path / "mid.h5")
    other.run(20.0, progress=False)
    assert torch.equal(other.modulators.get("err"), net.modulators.get("err"))


def test_a_state_saved_before_count_errors_kept_their_counts_still_loads():
    net = ns.Network(dt=0.5, seed=4, backend="torch")
    out = net.population(5, ns.PoissonSource(rate=300.0), name="out")
    net.modulators.add_count_error("err", out)
    net.run(5.0, progress=False)
    older = {k: v.clone() for k, v in net.state_dict().items()
             if k not in ("modulators.err.counts", "modulators.err.target")}
    net.load_state_dict(older)  # accepted: the counts are kept as they are
    with pytest.raises(ValueError, match="missing"):
        net.load_state_dict({k: v for k, v in older.items() if k != "modulators.err"})
