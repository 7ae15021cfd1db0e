"""Continuous rules take ``lr`` per ms: the same spike trains give the same weight change
whatever ``dt`` (issue: reward-modulated STDP changed 10x more at dt 0.1 ms than at 1 ms)."""

import numpy as np
import pytest

import neurosim as ns
from neurosim import rules

PRE_MS = np.array([10.0, 50.0, 90.0, 130.0])
POST_MS = np.array([15.0, 45.0, 100.0, 131.0])
TEACHER_W = 2e5


def weight_change(dt: float, factory, backend: str = "torch", every: int = 1,
                  receptor: str = "exc") -> float:
    """One synapse; the pre spike arrives and the post spike happens at the same
    continuous times at every dt, so any difference is the rule's own dt dependence."""
    net = ns.Network(dt=dt, seed=0, backend=backend, dtype="float64")
    net.modulators.add("da", initial=1.0)  # a constant modulator: no decay
    # generator spikes are delivered one step (the delay) later
    pre = net.population(1, ns.SpikeGenerator(PRE_MS - dt, [0] * len(PRE_MS)), name="pre")
    teach = net.population(1, ns.SpikeGenerator(POST_MS - dt, [0] * len(POST_MS)), name="teacher")
    post = net.population(1, ns.LIF(tau_syn_e=0.01, t_ref=0.0), name="post")
    net.projection(teach, post, ns.OneToOne(), weight=TEACHER_W)
    w0 = 1.0 if receptor == "exc" else -1.0
    proj = net.projection(pre, post, ns.OneToOne(), weight=w0, receptor=receptor, sparse=False)
    net.add_rule(proj, factory(every))
    mon = net.spike_monitor(post)
    net.run(200.0, progress=False)
    steps, _, _ = net.reader().spikes("post")
    np.testing.assert_allclose(steps * dt, POST_MS, atol=1e-9)  # the post spikes are as planned
    del mon
    return float(proj.weight[0, 0]) - w0


FACTORIES = {
    "RewardModulatedSTDP": lambda every: rules.RewardModulatedSTDP(
        modulator="da", lr=0.05, every=every, a_plus=0.1, a_minus=0.12, w_min=-10.0, w_max=10.0),
    "Hebb": lambda every: rules.Hebb(lr=1e-6, decay=1e-4, every=every, w_max=10.0),
    "Oja": lambda every: rules.Oja(lr=1e-6, every=every, w_max=10.0),
    "BCM": lambda every: rules.BCM(lr=1e-7, every=every, tau_theta=50.0, w_min=-10.0, w_max=10.0),
}


def rate_homeostasis(every):
    return rules.RateHomeostasis(target_rate_hz=10.0, lr=1e-4, every=every, w_min=-10.0)


@pytest.mark.parametrize("name", sorted(FACTORIES) + ["RateHomeostasis"])
def test_weight_change_converges_as_dt_shrinks(name):
    factory, receptor = FACTORIES.get(name, rate_homeostasis), "inh" if name == "RateHomeostasis" else "exc"
    coarse = weight_change(1.0, factory, receptor=receptor)
    fine = weight_change(0.1, factory, receptor=receptor)
    assert abs(fine) > 1e-4  # the rule did something
    # before lr was per ms, the fine run changed the weight ~10x more than the coarse one
    assert fine == pytest.approx(coarse, rel=0.06)


def test_every_does_not_change_the_rate_of_change():
    one = weight_change(0.1, FACTORIES["RewardModulatedSTDP"], every=1)
    ten = weight_change(0.1, FACTORIES["RewardModulatedSTDP"], every=10)
    assert ten == pytest.approx(one, rel=0.02)


def test_reward_modulated_stdp_dt_independence_holds_on_numba():
    torch_fine = weight_change(0.1, FACTORIES["RewardModulatedSTDP"])
    numba_fine = weight_change(0.1, FACTORIES["RewardModulatedSTDP"], backend="numba")
    numba_coarse = weight_change(1.0, FACTORIES["RewardModulatedSTDP"], backend="numba")
    assert numba_fine == pytest.approx(torch_fine, rel=1e-9)
    assert numba_coarse == pytest.approx(numba_fine, rel=0.06)


def test_event_rules_change_per_spike_pair_whatever_dt():
    def stdp(every):
        return rules.STDP(a_plus=0.1, a_minus=0.12, w_min=-10.0, w_max=10.0, every=every)
    coarse, fine = weight_change(1.0, stdp), weight_change(0.1, stdp)
    assert fine == pytest.approx(coarse, rel=1e-6)
