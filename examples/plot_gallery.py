"""Make one picture of each ``neurosim plot`` kind from a real run (for docs/plots.md).

    python examples/plot_gallery.py --out docs/img [--mnist-log runs/mnist-....h5]

Runs the CUBA network (4,000 LIF neurons, 1 s) with spikes of both populations,
the membrane potential of a few neurons and, on a side projection from a Poisson
population to 40 readout neurons with STDP, weight snapshots, into
``<out>/gallery.h5``; then draws a
raster, population rates, rate/ISI/CV histograms, the weight matrix and state
traces with the same functions as the command line. With ``--mnist-log`` (a log of
``examples/mnist_stdp.py``) it also draws the learned receptive fields as 28x28 tiles.
"""

from __future__ import annotations

import argparse
import os
import sys

import neurosim as ns
from neurosim import plots, rules
from neurosim.networks.cuba import build_cuba


def record(path: str, seed: int = 1) -> None:
    net = ns.Network(dt=0.1, seed=seed, log=path)
    cuba = build_cuba(net, 4000)
    for pop in (cuba.exc, cuba.inh):
        net.spike_monitor(pop)
    net.state_monitor(cuba.exc, "v", neurons=range(5), every=1)
    source = net.population(50, ns.PoissonSource(rate=50.0), name="poisson")
    readout = net.population(40, ns.LIF(), name="readout")
    net.spike_monitor(readout)
    side = net.projection(source, readout, ns.AllToAll(), weight=ns.Uniform(0.0, 3.0),
                          sparse=False, name="poisson_readout")
    net.add_rule(side, rules.STDP(a_plus=0.05, a_minus=0.055, w_max=3.0))
    net.weight_monitor(side, every=2000)
    net.run(1000.0, progress=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="docs/img", help="folder for gallery.h5 and the PNGs")
    parser.add_argument("--mnist-log", default=None, help="a log written by examples/mnist_stdp.py")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    log = os.path.join(args.out, "gallery.h5")
    if os.path.exists(log):
        os.remove(log)  # our own scratch file from a previous run
    record(log)
    with ns.LogReader(log) as reader:
        made = [plots.raster(reader, os.path.join(args.out, "plot_raster.png"), stop_ms=500.0),
                plots.rates(reader, os.path.join(args.out, "plot_rates.png"), population=None),
                plots.isi(reader, os.path.join(args.out, "plot_isi.png"), population="exc"),
                plots.weights(reader, os.path.join(args.out, "plot_weights.png")),
                plots.state(reader, os.path.join(args.out, "plot_state.png"), stop_ms=300.0)]
    if args.mnist_log:
        with ns.LogReader(args.mnist_log) as reader:
            made.append(plots.weights(reader, os.path.join(args.out, "plot_receptive_fields.png"),
                                      tiles=(28, 28), size=(900, 800)))
    os.remove(log)
    print("\n".join(made))
    return 0


if __name__ == "__main__":
    sys.exit(main())
