"""Speed of gating: the CUBA network gated and ungated on the numba backend, in one run.

    python benchmarks/gating_speed.py                      # 4,000 and 16,000 neurons, 1 s
    python benchmarks/gating_speed.py --sizes 4000 --repeats 5

Rows (same network, same seed; only the gates differ):

* ``ungated``: build_cuba as the CUBA benchmark runs it;
* ``gated, neutral mode``: both populations gated, gain 1 and offset 0 (the same spikes);
* ``gated, a mode``: a per-neuron mode in force (gains 0.9-1.1, offsets -1..1 mV);
* ``gated, driven``: the gate set from a per-neuron modulator between two modes. The
  modulator is set from Python (it holds still during a compiled stretch), so numba
  computes the gate between stretches where the signal changed, and runs the stretch
  as with a mode;
* ``gated, driven by a scalar``: the same with one modulator value for all neurons;
* ``ungated, with the moving signals``: the ungated network with the next form's two
  modulators, driving nothing (the reference of that form: the same network without gating);
* ``gated, driven by a moving signal``: a scalar modulator that the step itself changes
  (it decays with ``tau_ms`` 50 towards 0.5 and is driven by the excitatory neurons'
  spikes), so the gate is computed at every step.

Each form is built and compiled once, then the forms run interleaved (one repeat of each
in turn) so machine load affects them alike; the table gives the median seconds per
biological second, the ratio to ungated and to the same network without gating (the
ungated one, or for the moving signal the ungated one with the same modulators). Say the machine and its load when quoting.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch


def build(n: int, form: str, seed: int):
    import neurosim as ns
    from neurosim.networks.cuba import build_cuba

    net = ns.Network(dt=0.1, seed=seed, backend="numba")
    cuba = build_cuba(net, n, gated=form not in ("ungated", "signal only"))
    for k, pop in enumerate((cuba.exc, cuba.inh)):
        if form == "signal only":  # the moving form's modulators, driving no gate
            net.modulators.add(f"da_{pop.name}", tau_ms=50.0, baseline=0.5)
            net.modulators.drive(f"da_{pop.name}", cuba.exc, gain=5.0)
        if form in ("ungated", "signal only"):
            continue
        g = torch.Generator().manual_seed(seed + k)
        pop.gate.add_mode("a", gain=0.9 + 0.2 * torch.rand(pop.n, generator=g),
                          offset=2 * torch.rand(pop.n, generator=g) - 1)
        if form == "mode":
            pop.gate.use("a")
        elif form in ("driven", "scalar", "moving"):
            name = f"da_{pop.name}"
            if form == "scalar":
                net.modulators.add(name)
                net.modulators.set(name, 0.5)
            elif form == "moving":
                net.modulators.add(name, tau_ms=50.0, baseline=0.5)
                net.modulators.drive(name, cuba.exc, gain=5.0)
            else:
                net.modulators.add(name, size=pop.n)
                net.modulators.set(name, torch.rand(pop.n, generator=g))
            pop.gate.drive(name, "neutral", "a")
    counter = net.spike_counter(cuba.exc)
    return net, counter


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4000,16000")
    parser.add_argument("--duration", type=float, default=1000.0, help="ms per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.repeats < 1 or args.duration <= 0:
        parser.error("--repeats and --duration must be positive")
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes takes comma-separated neuron counts, e.g. 4000,16000")
    forms = {"ungated": "ungated", "gated, neutral mode": "neutral", "gated, a mode": "mode",
             "gated, driven by a modulator": "driven", "gated, driven by a scalar": "scalar",
             "ungated, with the moving signals": "signal only",
             "gated, driven by a moving signal": "moving"}
    # (the moving form's reference is the ungated network with the same modulators)
    reference = {"gated, driven by a moving signal": "ungated, with the moving signals"}
    print("| neurons | form | s per biological s (median) | vs ungated | vs the same network ungated "
          "| exc spikes/s/neuron |")
    print("|---|---|---|---|---|---|")
    for n in sizes:
        nets = {label: build(n, form, args.seed) for label, form in forms.items()}
        for net, _ in nets.values():  # compile (cached on disk) and warm up
            net.run(10.0, progress=False)
        times: dict[str, list[float]] = {k: [] for k in nets}
        for r in range(args.repeats):
            for label, (net, _) in nets.items():
                t0 = time.perf_counter()
                net.run(args.duration, progress=False)
                times[label].append(time.perf_counter() - t0)
            print(f"n={n}: repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)
        ref = statistics.median(times["ungated"])
        for label, ts in times.items():
            net, counter = nets[label]
            seconds = (net.clock.time_ms) / 1000.0
            rate = float(counter.counts.sum()) / counter.counts.shape[1] / seconds
            med = statistics.median(ts) * 1000.0 / args.duration
            same = statistics.median(times[reference.get(label, "ungated")])
            print(f"| {n} | {label} | {med:.3f} | {statistics.median(ts) / ref:.2f}x | "
                  f"{statistics.median(ts) / same:.2f}x | {rate:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
