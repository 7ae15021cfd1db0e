"""A partitioned run whose projections are drawn share by share (connectors drawn by
postsynaptic neuron), for the tests: under ``torchrun`` each process draws only the
synapses onto its neurons; alone it is the one-process reference. Writes the spikes, each
projection's synapse count in this process (process 0) and the whole's, and a state file
(``--out`` with ``.state.h5`` for ``.npz``).

    python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        tests/distributed/share_draw_run.py --out two.npz
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from common import finish, join

import neurosim as ns


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    partition = join()
    net = ns.Network(dt=0.1, seed=11, backend=args.backend, partition=partition)
    drive = net.population(100, ns.PoissonSource(rate=60.0), name="drive")
    a = net.population(301, ns.LIF(tau_m=10.0, v_thresh=-55.0), name="a")
    b = net.population(203, ns.LIF(tau_m=10.0, v_thresh=-55.0), name="b")
    net.projection(drive, a, ns.PairwiseBernoulli(0.1), weight=ns.Uniform(2.0, 6.0), name="drive_a")
    net.projection(drive, b, ns.FixedInDegree(12), weight=4.0, name="drive_b")
    # dense (above 10% of pairs), no autapses, scalar weight, delay of 2 steps
    net.projection(a, a, ns.PairwiseBernoulli(0.3, allow_autapses=False), weight=0.4, delay=2,
                   name="a_a")
    net.projection(a, b, ns.PairwiseBernoulli(0.05), weight=ns.Normal(1.5, 0.3), delay=3, name="a_b")
    net.projection(b, a, ns.FixedInDegree(9), weight=ns.Normal(-2.0, 0.2), receptor="inh", name="b_a")
    net.projection(b, b, ns.FixedInDegree(6, allow_autapses=False), weight=-1.0, receptor="inh",
                   delay=4, name="b_b")
    # drawn whole and cut, beside the others
    net.projection(a, b, ns.FixedProbability(0.05), weight=0.5, delay=2, name="cut_a_b")
    net.spike_monitor(a)
    net.spike_monitor(b)
    state = os.path.splitext(args.out)[0] + ".state.h5"
    net.run(40.0, progress=False)
    net.save_state(state, overwrite=True)
    net.load_state(state)  # (checks the whole structure's fingerprint in every process)
    net.run(20.0, progress=False)
    out: dict[str, np.ndarray] = {}
    if partition is None or partition.rank == 0:
        reader = net.reader()
        for name in ("a", "b"):
            steps, neurons, _ = reader.spikes(name)
            out[f"{name}_step"], out[f"{name}_neuron"] = steps, neurons
    for name, proj in net.projections.items():
        whole = getattr(proj, "whole", None)
        out[f"{name}_nnz"] = np.array(proj.nnz)
        out[f"{name}_whole_nnz"] = np.array(whole["nnz"] if whole else proj.nnz)
        out[f"{name}_share_drawn"] = np.array(whole is not None and "offset" in whole)
    return finish(partition, args.out, **out)


if __name__ == "__main__":
    sys.exit(main())
