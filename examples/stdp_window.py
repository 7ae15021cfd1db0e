"""Measure the STDP window of neurosim's STDP rule and plot it against the exponentials.

    python examples/stdp_window.py                # writes runs/stdp_window.png

Each of 81 isolated synapses sees one presynaptic spike and one (forced)
postsynaptic spike at a different delay from -100 to +100 ms; the measured weight
changes are plotted over A+ exp(-dt/tau+) and -A- exp(dt/tau-).
"""

from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import neurosim as ns  # noqa: E402
from neurosim import rules  # noqa: E402

A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS, DT = 0.01, 0.012, 16.8, 33.7, 0.1


def measure(deltas: np.ndarray, backend: str) -> np.ndarray:
    n, arrival = deltas.size, 150.0
    net = ns.Network(dt=DT, seed=0, backend=backend, dtype="float64")
    pre = net.population(n, ns.SpikeGenerator(np.full(n, arrival - DT), np.arange(n)), name="pre")
    teacher = net.population(n, ns.SpikeGenerator(arrival + deltas - DT, np.arange(n)), name="teacher")
    post = net.population(n, ns.LIF(tau_syn_e=0.01, t_ref=0.0), name="post")
    net.projection(teacher, post, ns.OneToOne(), weight=2e5)  # forces one post spike each
    plastic = net.projection(pre, post, ns.OneToOne(), weight=0.5, sparse=False)
    net.add_rule(plastic, rules.STDP(a_plus=A_PLUS, a_minus=A_MINUS, tau_plus=TAU_PLUS,
                                     tau_minus=TAU_MINUS, w_min=-10.0, w_max=10.0))
    net.run(arrival + deltas.max() + 50.0, progress=False)
    return np.diag(plastic.weight_matrix()) - 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/stdp_window.png",
                        help="PNG to write (default runs/stdp_window.png)")
    parser.add_argument("--backend", default="numba")
    args = parser.parse_args()
    deltas = np.arange(-100.0, 100.01, 2.5)
    dw = measure(deltas, args.backend)
    fine = np.linspace(-100, 100, 801)
    theory = np.where(fine >= 0, A_PLUS * np.exp(-fine / TAU_PLUS), -A_MINUS * np.exp(fine / TAU_MINUS))
    expected = np.where(deltas >= 0, A_PLUS * np.exp(-deltas / TAU_PLUS),
                        -A_MINUS * np.exp(deltas / TAU_MINUS))
    err = np.max(np.abs(dw - expected) / np.abs(expected))
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    ax.plot(fine, theory, color="0.6", lw=2, label="A+ exp(-dt/tau+), -A- exp(dt/tau-)")
    ax.plot(deltas, dw, "o", ms=4, color="C3", label=f"measured ({args.backend} backend)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("t_post - t_pre (ms)")
    ax.set_ylabel("weight change")
    ax.set_title(f"STDP window (max relative error {100 * err:.3f}%)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out)
    print(f"wrote {args.out}; max relative error {100 * err:.4f}% over {deltas.size} delays")


if __name__ == "__main__":
    main()
