"""The cost of a learning rule without a compiled form (the engine issue's first target).

1000 Poisson inputs (10 Hz) -> 400 LIF neurons, all-to-all with STDP, plus one small
extra projection (100 Poisson inputs -> the 400 neurons, 10%) carrying STDP (the
baseline, compiled on numba), TripletSTDP, Oja or BCM. Prints seconds per biological
second on each backend, and the ratio to the baseline.

    python benchmarks/rule_cliff.py --duration 200
"""

from __future__ import annotations

import argparse
import json
import os
import time

import neurosim as ns
from neurosim import rules

EXTRA = {
    "STDP": lambda: rules.STDP(w_max=1.0),  # the baseline: the same network, all compiled
    "TripletSTDP": lambda: rules.TripletSTDP(w_max=1.0),
    "Oja": lambda: rules.Oja(lr=1e-6, w_max=1.0),
    "BCM": lambda: rules.BCM(lr=1e-7, w_max=1.0),
}


def build(extra: str, backend: str) -> ns.Network:
    net = ns.Network(dt=0.1, seed=1, backend=backend)
    inp = net.population(1000, ns.PoissonSource(rate=10.0), name="input")
    out = net.population(400, ns.LIF(tau_m=20.0, t_ref=2.0), name="out")
    proj = net.projection(inp, out, ns.AllToAll(), weight=ns.Uniform(0.0, 0.6), sparse=False)
    net.add_rule(proj, rules.STDP(w_max=1.0))
    side = net.population(100, ns.PoissonSource(rate=10.0), name="side")
    p2 = net.projection(side, out, ns.FixedProbability(0.1), weight=ns.Uniform(0.0, 0.5))
    net.add_rule(p2, EXTRA[extra]())
    net.spike_counter(out)
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=200.0, help="biological ms per run")
    parser.add_argument("--backends", default="numba,torch")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} cores; {args.duration:g} ms per run")
    rows = []
    for backend in args.backends.split(","):
        base = None
        for extra in EXTRA:
            net = build(extra, backend)
            net.compile()
            net.run(5.0, progress=False)  # warm-up
            t0 = time.perf_counter()
            net.run(args.duration, progress=False)
            per_bio_s = (time.perf_counter() - t0) * 1000.0 / args.duration
            base = base if base is not None else per_bio_s
            row = {"backend": backend, "extra rule": extra, "s_per_bio_s": round(per_bio_s, 3),
                   "vs baseline": round(per_bio_s / base, 1)}
            print(f"{backend:6s} + {extra:12s} {per_bio_s:9.3f} s per biological s "
                  f"({per_bio_s / base:7.1f}x)", flush=True)
            rows.append(row)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
