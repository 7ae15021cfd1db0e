"""Writing a new local learning rule: a postsynaptically gated Hebbian rule.

    python examples/custom_rule.py

The recipe (see neurosim/rules/base.py): subclass ``rules.Rule``, keep traces
(``SpikeTrace``) in ``setup``, update them in ``update_traces`` and return the
weight change from ``weight_change``, built with ``self.outer`` (per-synapse
products, dense or CSR, summed over the batch). The rule is tensor code, so it
runs on both backends. This one implements

    dw_ij = lr * x_i * s_j * (w_max - w_ij)

(potentiate inputs that were recently active when the neuron fires, with a soft
upper bound), then checks it does what it says on a small network.
"""

from __future__ import annotations

import argparse

import numpy as np

import neurosim as ns
from neurosim import rules


class GatedHebb(rules.Rule):
    """dw_ij = lr * x_i * s_j * (w_max - w_ij): x_i presynaptic trace, s_j postsynaptic spike."""

    def __init__(self, *, tau_ms: float = 20.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tau_ms = tau_ms

    def setup(self) -> None:
        p, net = self.projection, self.net
        self.x_pre = rules.SpikeTrace((net.batch, p.pre.n), self.tau_ms, net.dt, "all",
                                      p.device, p.dtype)

    def reset(self) -> None:
        self.x_pre.reset()

    def update_traces(self, t: int) -> None:
        self.x_pre.update(self.pre_spikes(t))
        self._post = self.post_spikes(t)

    def weight_change(self, t: int):
        w = self.projection.weight
        return self.lr * self.outer(self.x_pre.value, self._post) * (self.w_max - w)


def main() -> None:
    for backend in ("torch", "numba"):
        net = ns.Network(dt=0.1, seed=1, backend=backend)
        active = net.population(20, ns.PoissonSource(rate=40.0), name="active")
        silent = net.population(20, ns.PoissonSource(rate=0.0), name="silent")
        out = net.population(5, ns.LIF(i_bias=14.0), name="out")
        p_active = net.projection(active, out, weight=1.0)
        p_silent = net.projection(silent, out, weight=1.0)
        for proj in (p_active, p_silent):
            net.add_rule(proj, GatedHebb(lr=0.01, w_max=3.0))
        net.run(500.0, progress=False)
        print(f"{backend}: mean weight from active inputs {p_active.weight_matrix().mean():.3f}, "
              f"from silent inputs {p_silent.weight_matrix().mean():.3f} (both started at 1.0)")
        assert p_active.weight_matrix().mean() > 1.2 and np.all(p_silent.weight_matrix() == 1.0)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
