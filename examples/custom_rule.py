"""Writing a new local learning rule once, and running it compiled on both backends.

    python examples/custom_rule.py

The recipe (see neurosim/rules/recipe.py): subclass ``rules.Rule`` and return a
``Recipe`` from ``recipe()``: the traces the rule keeps and small branch-free hooks
whose argument names say what they read (``w``, a trace, ``<trace>_before``,
``post_v``, a modulator, or a number attribute of the rule such as ``lr``). The
torch backend evaluates the hooks on whole tensors; the numba backend copies
their source into its compiled, event-driven step loop. This rule is

    at each postsynaptic spike: dw_ij = lr * x_i * (w_max - w_ij)

(potentiate inputs that were recently active when the neuron fires, with a soft
upper bound). The example checks that it does what it says, that the numba
backend ran it inside its compiled loop, and that both backends give the same
weights, bit for bit.
"""

from __future__ import annotations

import argparse

import numpy as np

import neurosim as ns
from neurosim import rules
from neurosim.rules.recipe import Recipe, Trace


def gated_potentiation(w, x_pre, lr, w_max):
    """The change at a postsynaptic spike (one synapse, one batch row)."""
    return lr * x_pre * (w_max - w)


class GatedHebb(rules.Rule):
    """dw_ij = lr * x_i * (w_max - w_ij) at postsynaptic spikes; x_i: presynaptic trace."""

    def __init__(self, *, tau_ms: float = 20.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tau_ms = tau_ms

    def recipe(self) -> Recipe:
        return Recipe(traces=(Trace("x_pre", "pre", self.tau_ms),), on_post=gated_potentiation)


def main() -> None:
    weights = {}
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
        weights[backend] = p_active.weight_matrix()
        if backend == "numba":  # the rule ran inside the compiled step loop
            assert net.backend._rules is not None and not net.backend._rules[1]
    same = np.array_equal(weights["torch"], weights["numba"])
    print(f"torch and numba weights identical: {same}")
    assert same


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
