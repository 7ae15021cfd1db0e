"""Training speed and memory of the structured SNN: local three-factor rules vs BPTT.

    python benchmarks/three_factor_speed.py                      # T = 10, 20, 40; 20 batches each
    python benchmarks/three_factor_speed.py --steps 20 --batches 50

Each (method, steps) runs in its own process (so its peak resident memory is its own):
it builds StructuredRecurrentSNN (784 -> --hidden -> 10 x 10, batch --batch), trains
2 warm-up batches of MNIST (compilation), then times --batches batches and reports
training samples per second and the process's peak RSS. The local method's memory
should not grow with the steps (its eligibility is per synapse and sample, whatever
T); BPTT's graph grows with T.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from neurosim.cli_args import positive_int

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from neurosim.datasets import load_mnist
from neurosim.networks.structured_snn import StructuredRecurrentSNN
cfg = json.loads(sys.argv[1])
x, y = load_mnist("train", cfg["data"])
x = x.astype(np.float32) / 255.0
model = StructuredRecurrentSNN(hidden=tuple(cfg["hidden"]), steps=cfg["steps"], batch=cfg["batch"],
                               method=cfg["method"], backend=cfg["backend"], seed=0)
b = cfg["batch"]
for k in range(2):
    model.train_batch(x[k * b:(k + 1) * b], y[k * b:(k + 1) * b])
t0 = time.perf_counter()
for k in range(2, 2 + cfg["batches"]):
    model.train_batch(x[k * b:(k + 1) * b], y[k * b:(k + 1) * b])
seconds = time.perf_counter() - t0
print(json.dumps({"samples_per_second": cfg["batches"] * b / seconds,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=positive_int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=[500])
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--batches", type=positive_int, default=20)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    rows = []
    for steps in args.steps:
        for method, backend in (("local", "numba"), ("local", "torch"), ("bptt", "torch")):
            cfg = {"method": method, "backend": backend, "steps": steps, "hidden": args.hidden,
                   "batch": args.batch, "batches": args.batches, "data": args.data}
            proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True,
                                  text=True, env=os.environ)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
                print(f"three_factor_speed.py: error: {method} T={steps}: {last}", file=sys.stderr)
                return 1
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append((method, backend, steps, out["samples_per_second"], out["peak_rss_mb"]))
            print(f"{method:6s} {backend:6s} T={steps:3d}: {out['samples_per_second']:8.1f} samples/s, "
                  f"peak RSS {out['peak_rss_mb']:7.1f} MB", flush=True)
    print()
    print(f"| method | engine | T (steps) | training samples/s | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    for method, backend, steps, sps, rss in rows:
        print(f"| {method} | {backend} | {steps} | {sps:.1f} | {rss:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
