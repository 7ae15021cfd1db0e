"""The distal reward problem (Izhikevich 2007): dopamine-gated STDP credits the one
synapse whose pre-post coincidence is followed, 1-3 s later, by a reward.

    python examples/distal_reward.py --seconds 3600 --out runs/distal_reward.png

A recurrent network of 800 excitatory (regular spiking) and 200 inhibitory (fast
spiking) Izhikevich neurons, 10% connectivity, 1 ms delays, fires at a few Hz,
driven by Poisson noise. Every excitatory synapse learns with
:class:`~neurosim.rules.RewardModulatedSTDP` (nearest-spike window A+ = 0.1,
A- = 0.15, 20 ms; eligibility 1 s; every 10 ms ``w += (DA) * e`` within [0, 4]),
where dopamine relaxes to a tonic 0.002 with 200 ms and each reward adds 0.5.
One excitatory synapse n1 -> n2 starts at weight 0: whenever n2 fires within 20 ms
after n1, a reward is scheduled 1-3 s later. Many other coincidences happen
between the coincidence and its reward, yet only the chosen synapse is
consistently eligible when dopamine arrives, so it alone climbs to the maximum.

The neurons are stepped as in the paper's ``daspnet.m`` (a custom model below:
uniform noise current, two Euler half-steps, one-step synaptic pulses); the
differences are that connectivity is 10% at random (not exactly 100 targets per
neuron) and the eligibility decays every step rather than every 10 ms.
The task reads the last spike times of n1 and n2 every 10 ms from the rule's
nearest-spike traces (a trace set to 1 at a spike is e^(-s/20 ms) s ms later).

The last line printed is one JSON object (chosen weight, the other weights'
statistics, rewards, rates).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np
from tqdm.auto import tqdm

import neurosim as ns
from neurosim import rules
from neurosim.kernel import where
from neurosim.models.base import NeuronModel, StateVariable
from neurosim.parameters import Parameter

DT = 1.0  # ms, as in the paper's code
TAU_TRACE = -1.0 / math.log(0.95)  # the code multiplies its STDP traces by 0.95 each ms
TAU_ELIGIBILITY = -10.0 / math.log(0.99)  # ... its eligibility by 0.99 every 10 ms
TAU_DOPAMINE = -1.0 / math.log(0.995)  # ... and dopamine by 0.995 each ms


class ReferenceIzhikevich(NeuronModel):
    r"""The Izhikevich neuron exactly as stepped in the reference code (1 ms steps).

    Input :math:`I = i_{syn} + A (\xi - 1/2)` (synaptic input of this step plus
    uniform noise, :math:`\xi \sim U[0, 1)`), then two Euler half-steps of
    :math:`v' = 0.04 v^2 + 5 v + 140 - u + I` and one of :math:`u' = a (0.2 v - u)`;
    :math:`v \ge 30` is a spike: :math:`v \leftarrow -65`, :math:`u \leftarrow u + d`.
    Synaptic input lasts one step (``i_syn`` is cleared after use).
    """

    parameters = {
        "a": Parameter(0.02, "1/ms", "recovery rate", low=0.0, low_open=True),
        "d": Parameter(8.0, "1", "reset increment of u"),
        "noise": Parameter(13.0, "1", "peak-to-peak amplitude of the uniform noise current", low=0.0),
        "v_init": Parameter(-65.0, "mV", "initial membrane potential"),
    }
    state_variables = {
        "v": StateVariable("mV", "membrane potential", init="v_init"),
        "u": StateVariable("1", "recovery variable", init="u_init"),
        "i_syn": StateVariable("1", "synaptic input of this step", 0.0),
    }
    random_inputs = ("xi",)
    receptors = {"exc": "i_syn", "inh": "i_syn"}

    def initial_values(self, p):
        return {"u_init": 0.2 * np.asarray(p["v_init"])}

    def constants(self, p, dt):
        if dt != 1.0:
            raise ValueError("ReferenceIzhikevich steps 1 ms, as the reference code does")
        return {"a": p["a"], "d": p["d"], "noise": p["noise"]}

    @staticmethod
    def update(v, u, i_syn, xi, a, d, noise):
        current = i_syn + noise * (xi - 0.5)
        v = v + 0.5 * ((0.04 * v + 5.0) * v + 140.0 - u + current)
        v = v + 0.5 * ((0.04 * v + 5.0) * v + 140.0 - u + current)
        u = u + a * (0.2 * v - u)
        spiked = v >= 30.0
        v = where(spiked, -65.0, v)
        u = where(spiked, u + d, u)
        return v, u, i_syn * 0.0, spiked


def build(seed: int, backend: str | None = None, log=None):
    net = ns.Network(dt=DT, seed=seed, backend=backend, log=log)
    exc = net.population(800, ReferenceIzhikevich(a=0.02, d=8.0), name="exc")
    inh = net.population(200, ReferenceIzhikevich(a=0.1, d=2.0), name="inh")
    # about 100 targets per neuron: excitatory ones anywhere, inhibitory ones excitatory
    # CSR storage, so that weight[s] is synapse s of synapses()
    ee = net.projection(exc, exc, ns.FixedProbability(0.1), weight=1.0, delay=1, sparse=True)
    ei = net.projection(exc, inh, ns.FixedProbability(0.1), weight=1.0, delay=1, sparse=True)
    net.projection(inh, exc, ns.FixedProbability(0.125), weight=-1.0, delay=1, receptor="inh",
                   sparse=True)
    net.modulators.add("dopamine", tau_ms=TAU_DOPAMINE, baseline=0.002)
    stdp = dict(modulator="dopamine", a_plus=0.1, a_minus=0.15, tau_plus=TAU_TRACE,
                tau_minus=TAU_TRACE, pairing="nearest", tau_eligibility=TAU_ELIGIBILITY, every=10,
                lr=0.1, w_min=0.0, w_max=4.0)  # lr per ms: w += M e every 10 ms
    rule = net.add_rule(ee, rules.RewardModulatedSTDP(**stdp))
    net.add_rule(ei, rules.RewardModulatedSTDP(**stdp))
    return net, exc, inh, ee, rule


class RewardContingency:
    """Schedules a reward 1-3 s after each n2 spike that follows an n1 spike by less than 20 ms.

    Called every few steps (``net.add_callback(task, every=10)``), it reads the
    last spike times of n1 and n2 from the rule's nearest-spike traces: a trace
    set to 1 at a spike has decayed to ``decay**s`` ``s`` steps later.
    """

    def __init__(self, rule, n1: int, n2: int, delay: int, seed: int, amount: float = 0.5,
                 control_rate_hz: float | None = None) -> None:
        self.rule, self.n1, self.n2, self.delay, self.amount = rule, n1, n2, delay, amount
        self.control_rate_hz = control_rate_hz  # control: rewards at random times instead
        self.rng = np.random.default_rng(seed)
        self.pending: list[int] = []
        self.coincidences: list[int] = []
        self.rewards: list[int] = []
        self.last_n2 = -1

    @staticmethod
    def _last(trace, neuron: int, now: int) -> int | None:
        x = float(trace.value[0, neuron])
        if x < 1e-6:  # no spike in the last ~270 ms; tiny float32 values lose the count
            return None
        return now - int(round(math.log(x) / math.log(trace.decay)))

    def __call__(self, net) -> None:
        now = net.clock.step - 1  # the traces hold the state after the previous step
        arrival = self._last(self.rule.x_pre, self.n1, now)  # n1 spike + delay
        fired = self._last(self.rule.x_post, self.n2, now)
        if arrival is not None and fired is not None and fired != self.last_n2:
            n1_fired = arrival - self.delay
            if 0 < (fired - n1_fired) * DT < 20.0:
                self.last_n2 = fired
                self.coincidences.append(fired)
                if self.control_rate_hz is None:
                    self.pending.append(fired + int(self.rng.integers(1000, 3001) / DT))
        if self.control_rate_hz is not None and self.rng.random() < self.control_rate_hz * 10 * DT / 1000:
            self.pending.append(net.clock.step)
        due = [t for t in self.pending if t <= net.clock.step]
        for t in due:
            self.pending.remove(t)
            net.modulators.pulse("dopamine", self.amount)
            self.rewards.append(net.clock.step)


def run(seconds: float, seed: int = 1, backend: str | None = None, log=None,
        progress: bool | None = None, control_rate_hz: float | None = None) -> dict:
    net, exc, inh, ee, rule = build(seed, backend, log)
    rng = np.random.default_rng(seed + 1)
    pre, post = ee.synapses()
    pick = int(rng.integers(len(pre)))
    while pre[pick] == post[pick]:
        pick = int(rng.integers(len(pre)))
    n1, n2 = int(pre[pick]), int(post[pick])
    chosen = pick
    ee.weight.data[chosen] = 0.0
    task = RewardContingency(rule, n1, n2, ee.min_delay, seed, control_rate_hz=control_rate_hz)
    net.add_callback(task, every=10)
    counter_e, counter_i = net.spike_counter(exc), net.spike_counter(inh)
    trajectory = []
    if progress is None:
        progress = sys.stderr.isatty() and not os.environ.get("CI")
    for second in tqdm(range(int(seconds)), unit="s", desc="simulated", disable=not progress):
        net.run(1000.0, progress=False)
        trajectory.append(float(ee.weight[chosen]))
    w = ee.weight.detach().numpy().copy()
    others = np.delete(w, chosen)
    rate_e = float(counter_e.counts.sum()) / exc.n / seconds
    rate_i = float(counter_i.counts.sum()) / inh.n / seconds
    return {"seconds": seconds, "seed": seed, "n1": n1, "n2": n2, "control_rate_hz": control_rate_hz,
            "chosen_weight": float(w[chosen]), "chosen_trajectory": trajectory,
            "others_mean": float(others.mean()), "others_median": float(np.median(others)),
            "others_p99": float(np.percentile(others, 99)),
            "others_at_max": float(np.mean(others >= 3.99)),
            "chosen_rank_percentile": float((others < w[chosen]).mean() * 100),
            "coincidences": len(task.coincidences), "rewards": len(task.rewards),
            "rate_exc_hz": rate_e, "rate_inh_hz": rate_i, "other_weights": others}


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    t = np.arange(1, len(result["chosen_trajectory"]) + 1)
    a.plot(t / 60.0, result["chosen_trajectory"], color="C3", label="chosen synapse")
    a.axhline(result["others_mean"], color="0.4", ls="--", label="mean of the others (end)")
    a.set(xlabel="time (min)", ylabel="weight", ylim=(-0.1, 4.2), title="rewarded synapse")
    a.legend(loc="center right", frameon=False)
    b.hist(result["other_weights"], bins=80, range=(0, 4), color="0.5", log=True)
    b.axvline(result["chosen_weight"], color="C3", label="chosen synapse")
    b.set(xlabel="weight", ylabel="synapses", title=f"exc->exc weights after {result['seconds']:.0f} s")
    b.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3600.0, help="simulated time (default 3600)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default=None, choices=["numba", "torch"])
    parser.add_argument("--out", default=None, help="PNG of the chosen weight and the distribution")
    parser.add_argument("--control", type=float, default=None, metavar="HZ",
                        help="control run: rewards at random times at this rate, not after coincidences")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if not args.seconds >= 1:
        print("distal_reward.py: error: --seconds must be >= 1", file=sys.stderr)
        return 2
    result = run(args.seconds, args.seed, args.backend, progress=False if args.no_progress else None,
                 control_rate_hz=args.control)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        plot(result, args.out)
    traj = result.pop("chosen_trajectory")
    result.pop("other_weights")
    result["chosen_weight_every_10_min"] = traj[599::600]
    print(f"chosen synapse {result['n1']} -> {result['n2']}: weight {result['chosen_weight']:.2f} "
          f"after {args.seconds:.0f} s; other weights mean {result['others_mean']:.2f}, "
          f"99th percentile {result['others_p99']:.2f}; {result['rewards']} rewards")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
