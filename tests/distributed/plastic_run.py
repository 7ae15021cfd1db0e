"""Learning on split populations, for the tests: under ``torchrun`` each process learns on
its share of each plastic projection (the synapses onto its neurons); alone it is the
one-process reference. STDP on a share-drawn CSR projection and on a dense one drawn whole
and cut, BCM (postsynaptic neuron state) on a recurrent one, and reward-modulated STDP
(per-synapse eligibility, a scalar dopamine signal set by a callback). 40 ms, a state file
(``--out`` with ``.state.h5``), loaded back, 20 ms more. Process 0 writes the spikes.

    python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        tests/distributed/plastic_run.py --backend numba --out two.npz
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from common import finish, join

import neurosim as ns


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    partition = join()
    net = ns.Network(dt=0.1, seed=7, backend=args.backend, partition=partition)
    drive = net.population(150, ns.PoissonSource(rate=40.0), name="drive")
    a = net.population(211, ns.LIF(tau_m=10.0, v_thresh=-55.0), name="a")
    b = net.population(57, ns.LIF(tau_m=10.0, v_thresh=-55.0), name="b")
    da = net.projection(drive, a, ns.PairwiseBernoulli(0.1), weight=ns.Uniform(1.0, 4.0), delay=2,
                        name="drive_a")
    db = net.projection(drive, b, ns.FixedProbability(0.3), weight=ns.Uniform(0.5, 2.0), delay=1,
                        sparse=False, name="drive_b")
    aa = net.projection(a, a, ns.PairwiseBernoulli(0.05, allow_autapses=False), weight=0.5, delay=3,
                        name="a_a")
    ab = net.projection(a, b, ns.FixedInDegree(20), weight=1.0, delay=2, name="a_b")
    net.add_rule(da, ns.rules.STDP(w_max=6.0), name="stdp_drive_a")
    net.add_rule(db, ns.rules.STDP(w_max=3.0), name="stdp_drive_b")
    net.add_rule(aa, ns.rules.BCM(), name="bcm_a_a")
    net.modulators.add("dopamine")
    net.add_rule(ab, ns.rules.RewardModulatedSTDP(modulator="dopamine", tau_eligibility=50.0,
                                                   w_max=3.0), name="rstdp_a_b")

    def reward(net: ns.Network) -> None:  # a reward pulse every 5 ms (the same in every process)
        net.modulators.set("dopamine", 1.0 if net.clock.step % 50 == 0 else 0.0)
    net.add_callback(reward, every=1)
    net.spike_monitor(a)
    net.spike_monitor(b)
    state = os.path.splitext(args.out)[0] + ".state.h5"
    initial = {name: proj.weight.clone() for name, proj in net.projections.items()}
    net.run(40.0, progress=False)
    net.save_state(state, overwrite=True)
    net.load_state(state)
    net.run(20.0, progress=False)
    # (this process's share) which weights the rules changed
    out: dict[str, np.ndarray] = {f"{name}_changed": np.array(not torch.equal(w, net.projections[name].weight))
                                  for name, w in initial.items()}
    if partition is None or partition.rank == 0:
        reader = net.reader()
        for name in ("a", "b"):
            steps, neurons, _ = reader.spikes(name)
            out[f"{name}_step"], out[f"{name}_neuron"] = steps, neurons
    return finish(partition, args.out, **out)


if __name__ == "__main__":
    sys.exit(main())
