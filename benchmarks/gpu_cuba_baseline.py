"""Torch backend on CUDA today: seconds per biological second of CUBA, by size.

The baseline for the GPU issue (a sync-free step captured in CUDA graphs). Prints one
line per size as it finishes, then a JSON list.

    python benchmarks/gpu_cuba_baseline.py --sizes 4000,64000,1000000 --duration 100
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import neurosim as ns
from neurosim.networks import build_cuba


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,64000,1000000")
    parser.add_argument("--duration", type=float, default=100.0, help="biological ms per size")
    args = parser.parse_args()
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        torch.cuda.empty_cache()  # the previous size's network is gone: peak memory per size
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        net = ns.Network(dt=0.1, seed=1, backend="torch", device="cuda")
        cuba = build_cuba(net, n)
        net.spike_counter(cuba.exc)
        build = time.perf_counter() - t0
        net.run(10.0, progress=False)  # warm-up
        torch.cuda.synchronize()
        t1 = time.perf_counter()
        net.run(args.duration, progress=False)
        torch.cuda.synchronize()
        run = time.perf_counter() - t1
        steps = int(round(args.duration / net.dt))
        row = {"neurons": n, "build_s": round(build, 2), "run_s": round(run, 3),
               "s_per_bio_s": round(run * 1000.0 / args.duration, 2),
               "us_per_step": round(1e6 * run / steps, 1),
               "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
        print(row, flush=True)
        rows.append(row)
        del net, cuba
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
