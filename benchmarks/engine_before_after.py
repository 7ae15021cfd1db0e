"""Before/after table of the engine: this checkout against an earlier one, side by side.

    git worktree add /tmp/neurosim-before c441822      # the commit to compare with
    python benchmarks/engine_before_after.py --before /tmp/neurosim-before

Each workload runs in a fresh subprocess per version, alternating before/after for
``--repeats`` rounds (so both see the same machine load); the table gives the
median. Compilation and warm-up are excluded (each worker compiles, runs a short
warm-up, then times). Workloads, all on the numba backend:

* ``cuba 4000`` / ``cuba 64000``: the Vogels & Abbott network, 1 s of biological time;
* ``mnist replay``: Diehl & Cook (2015), 100 neurons, batch 16, 32 training images
  (samples per second of wall time);
* ``distal reward``: Izhikevich's (2007) experiment, 20 s of biological time
  (biological seconds per wall second; the hour takes 3600 / that);
* ``rule cliff``: 1000 Poisson inputs -> 400 LIF with STDP, plus a small extra
  projection with STDP, TripletSTDP or Oja (seconds per biological second).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKER = r'''
import json, os, sys, time
import numpy as np
import neurosim as ns
from neurosim import rules
name = sys.argv[1]
root = sys.argv[2]

def timed(net, ms, warm=20.0):
    net.compile()
    net.run(warm, progress=False)
    t0 = time.perf_counter()
    net.run(ms, progress=False)
    return time.perf_counter() - t0

if name.startswith("cuba"):
    from neurosim.networks import build_cuba
    net = ns.Network(dt=0.1, seed=1, backend="numba")
    build_cuba(net, int(name.split()[1]))
    seconds = timed(net, 1000.0)
    out = {"value": seconds, "unit": "s per bio-s"}
elif name == "mnist replay":
    from neurosim.networks.diehl_cook import DiehlCook2015
    images = np.random.default_rng(0).integers(0, 256, size=(48, 28, 28), dtype=np.uint8)
    dc = DiehlCook2015(100, batch=16, seed=0)
    dc.train(images[:16], progress=False)  # compile and warm up
    t0 = time.perf_counter()
    dc.train(images[16:], progress=False)
    out = {"value": 32 / (time.perf_counter() - t0), "unit": "samples/s"}
elif name == "distal reward":
    sys.path.insert(0, os.path.join(root, "examples"))
    import distal_reward
    distal_reward.run(1.0, seed=1, backend="numba", progress=False)  # compile
    t0 = time.perf_counter()
    distal_reward.run(20.0, seed=1, backend="numba", progress=False)
    out = {"value": 20.0 / (time.perf_counter() - t0), "unit": "bio-s per s"}
else:  # rule cliff + <rule>: the network of benchmarks/rule_cliff.py (in both checkouts)
    import warnings
    sys.path.insert(0, os.path.join(root, "benchmarks"))
    from rule_cliff import build
    warnings.simplefilter("ignore")
    net = build(name.split()[-1], "numba")
    ms = 200.0
    out = {"value": timed(net, ms, warm=5.0) * 1000.0 / ms, "unit": "s per bio-s"}
print(json.dumps(out))
'''

WORKLOADS = ["cuba 4000", "cuba 64000", "mnist replay", "distal reward", "rule cliff + STDP",
             "rule cliff + TripletSTDP", "rule cliff + Oja"]


def measure(root: str, name: str, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=root)
    proc = subprocess.run([sys.executable, "-c", WORKER, name, root], env=env, cwd=root,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="checkout of the earlier version")
    parser.add_argument("--after", default=ROOT, help="checkout of the later version (default: this)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    for path in (args.before, args.after):
        if not os.path.isfile(os.path.join(path, "neurosim", "__init__.py")):
            parser.error(f"--before/--after: {path} is not a neurosim checkout")
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores; median of {args.repeats} alternating runs")
    rows = []
    print(f"{'workload':28s} {'before':>12s} {'after':>12s}  unit          after/before")
    for name in args.workloads.split(","):
        values: dict[str, list[float]] = {"before": [], "after": []}
        unit = ""
        for _ in range(args.repeats):
            for label, root in (("before", args.before), ("after", args.after)):
                res = measure(root, name, args.timeout)
                if "error" in res:
                    print(f"  {name} ({label}): {res['error']}", file=sys.stderr)
                    continue
                values[label].append(res["value"])
                unit = res["unit"]
        med = {k: statistics.median(v) if v else float("nan") for k, v in values.items()}
        ratio = med["after"] / med["before"]
        rows.append({"workload": name, "unit": unit, **med, "after/before": ratio})
        print(f"{name:28s} {med['before']:12.3f} {med['after']:12.3f}  {unit:13s} {ratio:8.2f}",
              flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
