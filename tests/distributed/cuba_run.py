"""A CUBA run for the partitioned-run tests: under ``torchrun`` each process steps its
share; alone it is the one-process reference. Process 0 (or the lone process) writes
the spikes of both populations to ``--out`` (npz) and the log to ``--log``.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed/cuba_run.py \
        --backend numba --out two.npz
"""

from __future__ import annotations

import argparse
import datetime
import os
import signal
import sys

import numpy as np
import torch.distributed as dist
from common import leave

import neurosim as ns
from neurosim.distributed import Partition
from neurosim.networks import build_cuba


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--neurons", type=int, default=4000)
    parser.add_argument("--duration", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--out", required=True)
    parser.add_argument("--h5-log", default=None)
    parser.add_argument("--save-state", default=None, help="save the state here after the run")
    parser.add_argument("--load-state", default=None, help="load this state before the run")
    parser.add_argument("--draw-by-post", action="store_true",
                        help="PairwiseBernoulli: each process draws only its share of each projection")
    parser.add_argument("--die-at-step", type=int, default=None,
                        help="process 1 kills itself (SIGKILL) before this step")
    args = parser.parse_args()
    partition = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
        partition = Partition.from_process_group()
    net = ns.Network(dt=0.1, seed=args.seed, backend=args.backend, partition=partition, log=args.h5_log)
    cuba = build_cuba(net, args.neurons, draw_by_post=args.draw_by_post)
    net.spike_monitor(cuba.exc)
    net.spike_monitor(cuba.inh)
    if args.die_at_step is not None and partition is not None and partition.rank == 1:
        def die(net: ns.Network) -> None:
            if net.clock.step == args.die_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
        net.add_callback(die, every=args.die_at_step)
    if args.load_state:
        net.load_state(args.load_state)
    net.run(args.duration, progress=False)
    if args.save_state:
        net.save_state(args.save_state, overwrite=True)
    if partition is None or partition.rank == 0:
        reader = net.reader()
        out = {}
        for name in ("exc", "inh"):
            steps, neurons, rows = reader.spikes(name)
            out[f"{name}_step"], out[f"{name}_neuron"], out[f"{name}_batch"] = steps, neurons, rows
        out["exchange_seconds"] = np.array(net._exchange.seconds if net._exchange else 0.0)
        np.savez(args.out, **out)
    return leave(partition)


if __name__ == "__main__":
    sys.exit(main())
