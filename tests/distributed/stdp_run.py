"""A data-parallel STDP run for the tests: Poisson inputs drive LIF neurons through a
plastic dense projection (pair STDP, additive, clipped to [0, 4]). Alone it runs batch
``--batch``; under ``torchrun`` with N processes each runs ``--batch / N`` rows of it.
Process 0 writes the final weights and the spikes to ``--out`` (npz).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch.distributed as dist
from common import leave

import neurosim as ns
from neurosim.distributed import Partition


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--weight-window", type=int, default=None)
    args = parser.parse_args()
    dp, batch = None, args.batch
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("gloo")
        dp = Partition.from_process_group()
        batch = args.batch // dp.size
    net = ns.Network(dt=0.5, seed=11, batch=batch, backend=args.backend, data_parallel=dp,
                     weight_window=args.weight_window)
    inp = net.population(60, ns.PoissonSource(rate=40.0), name="input")
    out = net.population(12, ns.LIF(tau_m=10.0), name="out", init={"v": ns.Uniform(-65.0, -55.0)})
    proj = net.projection(inp, out, ns.AllToAll(), weight=ns.Uniform(1.0, 4.0), sparse=False)
    net.add_rule(proj, ns.rules.STDP(a_plus=0.08, a_minus=0.085, w_max=4.0))
    net.add_rule(proj, ns.rules.WeightNormalization(150.0, every=200))
    net.spike_monitor(out)
    net.run(args.duration, progress=False)
    if dp is None or dp.rank == 0:
        steps, neurons, rows = net.reader().spikes("out")
        np.savez(args.out, weight=proj.weight_matrix(), step=steps, neuron=neurons, batch=rows,
                 reductions=np.array(net._exchange.calls if dp else 0))
    return leave(dp)


if __name__ == "__main__":
    sys.exit(main())
