"""Make one picture of each ``neurosim plot`` kind from a real run (for docs/plots.md).

    python examples/plot_gallery.py                       # PNGs in runs/gallery/
    python examples/plot_gallery.py --out docs/img --mnist-log runs/mnist-....h5

Runs the CUBA network (4,000 LIF neurons, 1 s) with spikes of both populations,
the membrane potential of a few neurons and, on a side projection from a Poisson
population to 40 readout neurons with STDP, weight snapshots, into
``runs/gallery.h5`` (``--log``; kept, so that ``neurosim inspect`` and ``neurosim plot``
can be tried on it, and replaced by the next run); then draws a raster, population
rates, rate/ISI/CV histograms, the weight matrix and state traces with the same
functions as the command line. With ``--mnist-log`` (a log of
``examples/mnist_stdp.py``) it also draws the learned receptive fields as 28x28 tiles.

The PNGs go to ``runs/gallery/`` unless ``--out`` names another folder: the
pictures tracked in ``docs/img`` are replaced only when asked for explicitly.
"""

from __future__ import annotations

import argparse
import os
import sys

import neurosim as ns
from neurosim import plots, rules
from neurosim.networks.cuba import build_cuba


def record(path: str, seed: int = 1, neurons: int = 4000, duration_ms: float = 1000.0) -> None:
    net = ns.Network(dt=0.1, seed=seed, log=path)
    cuba = build_cuba(net, neurons)
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
    net.run(duration_ms, progress=False)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join("runs", "gallery"),
                        help="folder for the PNGs (default runs/gallery; docs/img for the docs)")
    parser.add_argument("--log", default=os.path.join("runs", "gallery.h5"),
                        help="the run's log, kept (default runs/gallery.h5; replaced if it exists)")
    parser.add_argument("--mnist-log", default=None, help="a log written by examples/mnist_stdp.py")
    parser.add_argument("--neurons", type=int, default=4000, help="CUBA size (default 4000)")
    parser.add_argument("--duration", type=float, default=1000.0, help="run length, ms (default 1000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    os.makedirs(args.out, exist_ok=True)
    if os.path.dirname(args.log):
        os.makedirs(os.path.dirname(args.log), exist_ok=True)
    if os.path.exists(args.log):
        os.remove(args.log)  # this script's own log from a previous run
    record(args.log, neurons=args.neurons, duration_ms=args.duration)
    with ns.LogReader(args.log) as reader:
        made = [plots.raster(reader, os.path.join(args.out, "plot_raster.png"), stop_ms=500.0),
                plots.rates(reader, os.path.join(args.out, "plot_rates.png"), population=None),
                plots.isi(reader, os.path.join(args.out, "plot_isi.png"), population="exc"),
                plots.weights(reader, os.path.join(args.out, "plot_weights.png")),
                plots.state(reader, os.path.join(args.out, "plot_state.png"), stop_ms=300.0)]
    if args.mnist_log:
        with ns.LogReader(args.mnist_log) as reader:
            made.append(plots.weights(reader, os.path.join(args.out, "plot_receptive_fields.png"),
                                      tiles=(28, 28), size=(900, 800)))
    print("\n".join(made + [args.log]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
