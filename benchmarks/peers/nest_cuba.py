"""Peer runner: the Vogels & Abbott (2005) CUBA network in NEST.

Builds the same network as ``neurosim.networks.cuba.build_cuba`` with NEST's
``iaf_psc_exp`` (exact integration): N neurons, 80% excitatory, connection
probability 80/N on all four pathways (``pairwise_bernoulli``, autapses
allowed), synaptic jumps of 1.62 mV and -9 mV converted to current
amplitudes J = w * C_m / tau_m (20.25 pA and -112.5 pA), delay 0.1 ms (one
step, NEST's minimum; ``--delay`` for longer ones), dt = 0.1 ms. Prints one JSON line with timings, spike
counts and peak memory as the last stdout line.

Usage::

    python nest_cuba.py --neurons 4000 --duration 1000 --seed 1 --threads 2

Timing: ``build_seconds`` covers node creation, connection and
``nest.Prepare()`` (where NEST 3.10 builds its connection infrastructure,
``time_communicate_prepare``); ``run_seconds`` is the wall time of
``nest.Run(duration)``, the update loop alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import nest

C_M, TAU_M = 250.0, 20.0  # pF, ms
NEURON = {"C_m": C_M, "tau_m": TAU_M, "E_L": -49.0, "V_th": -50.0, "V_reset": -60.0, "t_ref": 5.0,
              "tau_syn_ex": 5.0, "tau_syn_in": 10.0, "I_e": 0.0}
J_EXC = 1.62 * C_M / TAU_M   # pA, 20.25
J_INH = -9.0 * C_M / TAU_M   # pA, -112.5


def build(n: int, seed: int, threads: int, delay: float = 0.1) -> tuple[Any, Any, int]:
    """Create and connect the CUBA network; return (neurons, spike recorder, n_exc)."""
    nest.ResetKernel()
    nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": threads, "rng_seed": seed,
                          "print_time": False})
    n_exc = round(0.8 * n)
    p = min(1.0, 80.0 / n)
    neurons = nest.Create("iaf_psc_exp", n, params=NEURON)
    neurons.V_m = nest.random.uniform(-60.0, -50.0)
    exc, inh = neurons[:n_exc], neurons[n_exc:]
    rule = {"rule": "pairwise_bernoulli", "p": p, "allow_autapses": True}
    nest.Connect(exc, neurons, rule, {"synapse_model": "static_synapse", "weight": J_EXC,
                                      "delay": delay})
    nest.Connect(inh, neurons, rule, {"synapse_model": "static_synapse", "weight": J_INH,
                                      "delay": delay})
    recorder = nest.Create("spike_recorder")
    nest.Connect(neurons, recorder)
    return neurons, recorder, n_exc


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=4000)
    ap.add_argument("--duration", type=float, default=1000.0, help="ms")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--delay", type=float, default=0.1, help="synaptic delay, ms")
    args = ap.parse_args(argv)

    nest.verbosity = nest.VerbosityLevel.ERROR
    t0 = time.perf_counter()
    neurons, recorder, n_exc = build(args.neurons, args.seed, args.threads, args.delay)
    nest.Prepare()
    t1 = time.perf_counter()
    nest.Run(args.duration)
    t2 = time.perf_counter()
    nest.Cleanup()
    run_s = t2 - t1

    senders = recorder.get("events")["senders"]
    first = neurons[0].global_id
    exc_spikes = int(((senders >= first) & (senders < first + n_exc)).sum())
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "tool": f"nest ({args.threads} threads)", "version": nest.__version__,
        "neurons": args.neurons, "duration_ms": args.duration,
        "build_seconds": round(t1 - t0, 3), "run_seconds": round(run_s, 3),
        "spikes": len(senders),
        "rate_hz": round(exc_spikes / (n_exc * args.duration / 1000.0), 3),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "connect_seconds": round(float(nest.GetKernelStatus("time_construction_connect")), 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
