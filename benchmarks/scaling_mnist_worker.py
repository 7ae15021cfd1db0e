"""One training run of the Diehl & Cook (2015) network for ``benchmarks/scaling.py``:
alone (batch ``--batch``) or under ``torchrun`` (each of N processes ``--batch / N`` rows
of every batch, data-parallel). Prints one JSON line (process 0): samples per second,
the time spent summing weight changes, and the final weights' checksum; ``--weights``
saves the final weights (npy) for comparing 1 and N processes."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch.distributed as dist

from neurosim.datasets import load_mnist
from neurosim.distributed import Partition
from neurosim.distributed.launch import leave_torchrun
from neurosim.networks.diehl_cook import DiehlCook2015


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--neurons", type=int, default=100)
    parser.add_argument("--train", type=int, default=480)
    parser.add_argument("--batch", type=int, default=16, help="the whole batch (all processes)")
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--weight-updates", default="step", choices=["step", "sample"])
    parser.add_argument("--data", default=None, help="MNIST folder (default: as examples/mnist_stdp.py)")
    args = parser.parse_args()
    dp, batch = None, args.batch
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("gloo")
        dp = Partition.from_process_group()
        if args.batch % dp.size:
            raise SystemExit(f"--batch {args.batch} must be a multiple of the {dp.size} processes")
        batch = args.batch // dp.size
    beside_clone = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "datasets")
    x, _ = load_mnist("train", args.data, also_look_in=[os.path.normpath(beside_clone)])
    model = DiehlCook2015(args.neurons, batch=batch, seed=args.seed, backend=args.backend,
                          data_parallel=dp,
                          weight_window="sample" if args.weight_updates == "sample" else None)
    model.train(x[:args.batch], progress=False)  # compile and warm up (not timed)
    t0 = time.perf_counter()
    model.train(x[args.batch:args.batch + args.train], progress=False)
    seconds = time.perf_counter() - t0
    w = model.input_exc.weight_matrix()
    if dp is None or dp.rank == 0:
        if args.weights:
            np.save(args.weights, w)
        reduction = model.net._exchange
        print(json.dumps({"processes": 1 if dp is None else dp.size, "batch": args.batch,
                          "weight_updates": args.weight_updates,
                          "samples": args.train, "seconds": round(seconds, 3),
                          "samples_per_second": round(args.train / seconds, 2),
                          "reduce_seconds": round(reduction.seconds, 3) if dp else 0.0,
                          "steps": model.net.clock.step, "weight_sum": float(w.sum())}))
    leave_torchrun(dp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
