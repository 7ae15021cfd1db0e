"""Vogels & Abbott (2005) CUBA network: build, run, log to HDF5, summarise.

    python examples/cuba.py --neurons 4000 --duration 1000 --seed 1

Split across processes (each steps its share of the neurons; the same spikes as one
process; see docs/distributed.md):

    torchrun --standalone --nproc-per-node 2 examples/cuba.py --neurons 64000 --log-file runs/c.h5

(``--log`` is also accepted, but torchrun takes it for its own ``--log-dir`` when the
flags come after the script; ``--log-file`` avoids that.)

The last line printed is one JSON object with the figures of the run (by process 0).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import sys
import time

import torch

import neurosim as ns
from neurosim.networks import build_cuba
from neurosim.recording import LogInUseError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=4000, help="network size (default 4000)")
    parser.add_argument("--duration", type=float, default=1000.0, help="biological time, ms (default 1000)")
    parser.add_argument("--dt", type=float, default=0.1, help="time step, ms (default 0.1)")
    parser.add_argument("--delay", type=float, default=None,
                        help="synaptic delay, ms (default one step); a partitioned run exchanges "
                             "spikes once per delay")
    parser.add_argument("--connection-p", type=float, default=None,
                        help="connection probability (default 80 / neurons: 80 inputs per neuron "
                             "at any size, 2%% at 4,000)")
    parser.add_argument("--connector", default="fixed-probability",
                        choices=["fixed-probability", "pairwise-bernoulli"],
                        help="how the random connectivity is drawn (default fixed-probability); "
                             "pairwise-bernoulli draws by postsynaptic neuron: under torchrun each "
                             "process draws only the synapses onto its neurons")
    parser.add_argument("--backend", default="numba", choices=["numba", "torch"],
                        help="simulation backend (default numba)")
    parser.add_argument("--parallel", action="store_true",
                        help="numba: update neurons on all cores (pays for large networks)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads while stepping (default: torch 1, numba --parallel the free "
                             "cores; see neurosim/threads.py)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--seed", type=int, default=1, help="run seed (default 1)")
    parser.add_argument("--log", "--log-file", dest="log", default=None,
                        help="HDF5 log path (default runs/cuba-<time>.h5)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --log file (by default an existing log is kept "
                             "and the run refused)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    for flag, value in (("--neurons", args.neurons), ("--duration", args.duration), ("--dt", args.dt),
                        ("--threads", args.threads or 1)):
        if not value > 0:
            print(f"cuba.py: error: {flag} must be positive, got {value:g}", file=sys.stderr)
            return 2
    if args.connection_p is not None and not 0 < args.connection_p <= 1:
        print(f"cuba.py: error: --connection-p must be in (0, 1], got {args.connection_p:g}",
              file=sys.stderr)
        return 2
    from neurosim.distributed.launch import join_torchrun

    partition, args.device = join_torchrun(args.device)  # under torchrun: a partitioned run
    writer = partition is None or partition.rank == 0
    log = args.log
    if log is None and partition is not None:
        print("cuba.py: error: --log-file is required when launched by torchrun (every process "
              "must name the same file)", file=sys.stderr)
        return 2
    if log is None:
        os.makedirs("runs", exist_ok=True)
        log = datetime.datetime.now().strftime("runs/cuba-%Y%m%d-%H%M%S-%f.h5")
    elif os.path.dirname(log):
        os.makedirs(os.path.dirname(log), exist_ok=True)  # e.g. --log runs/x.h5 in a fresh clone
    net = None
    try:
        t0 = time.perf_counter()
        net = ns.Network(dt=args.dt, seed=args.seed, backend=args.backend, device=args.device,
                         log=ns.HDF5Log(log, overwrite=args.overwrite) if writer else None,
                         parallel=args.parallel, threads=args.threads, partition=partition)
        delay_steps = 1 if args.delay is None else int(round(args.delay / args.dt))
        if delay_steps < 1:
            print(f"cuba.py: error: --delay must be at least one step ({args.dt:g} ms), got "
                  f"{args.delay:g}", file=sys.stderr)
            return 2
        cuba = build_cuba(net, args.neurons, connection_p=args.connection_p, delay_steps=delay_steps,
                          draw_by_post=args.connector == "pairwise-bernoulli")
        net.spike_monitor(cuba.exc)
        net.spike_monitor(cuba.inh)
        if partition is None:  # (a population split across processes takes spike monitors only)
            net.state_monitor(cuba.exc, ["v", "i_e", "i_i"], neurons=range(5), every=10)
        build_seconds = time.perf_counter() - t0
        synapses = sum(p.describe()["synapses"] for p in cuba.projections)
        compile_seconds = net.compile()  # numba: generate and compile (or load cached) kernels
        t1 = time.perf_counter()
        net.run(args.duration, progress=None if not args.no_progress else False)
        run_seconds = time.perf_counter() - t1
    except LogInUseError:
        print(f"cuba.py: error: --log {log}: another run is writing that file; choose another path",
              file=sys.stderr)
        return 2
    except FileExistsError:
        print(f"cuba.py: error: --log {log}: the file already exists; choose another --log, or add "
              f"--overwrite to replace it", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as exc:
        print(f"cuba.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if net is None or not os.path.exists(log):
            print("cuba.py: interrupted before the run started; no log written", file=sys.stderr)
        else:
            print(f"cuba.py: interrupted at {net.time_ms:g} ms; the log {log} holds the run up to "
                  f"there and is marked incomplete", file=sys.stderr)
        return 130

    exchange_seconds = net._exchange.seconds if net._exchange is not None else 0.0
    if partition is not None:
        from neurosim.distributed.launch import leave_torchrun

        leave_torchrun(partition)
        if not writer:
            return 0
    with ns.LogReader(log) as reader:
        summary = reader.summary()
    pops = summary["populations"]
    spikes = sum(p.get("spikes", 0) for p in pops.values())
    print(f"CUBA network: {args.neurons} LIF neurons, {args.duration:g} ms at dt {args.dt:g} ms "
          f"({args.backend} on {args.device}, seed {args.seed})")
    print(f"  build {build_seconds:.2f} s, compile {compile_seconds:.2f} s, run {run_seconds:.2f} s"
          + (f" ({partition.size} processes; exchanging spikes {exchange_seconds:.2f} s)"
             if partition is not None else ""))
    for name, p in pops.items():
        print(f"  {name}: {p['size']} neurons, {p.get('spikes', 0)} spikes, {p.get('rate_hz', 0):.2f} Hz")
    print(f"  log: {log} (completed: {summary['completed']})")
    print(json.dumps({"neurons": args.neurons, "duration_ms": args.duration, "dt_ms": args.dt,
                      "delay_steps": delay_steps,
                      "backend": args.backend, "device": args.device, "seed": args.seed,
                      "connector": args.connector, "synapses": synapses,
                      "build_seconds": round(build_seconds, 4),
                      "compile_seconds": round(compile_seconds, 4), "run_seconds": round(run_seconds, 4),
                      "processes": 1 if partition is None else partition.size,
                      "exchange_seconds": round(exchange_seconds, 4),
                      "spikes": spikes, "rate_hz": pops["exc"]["rate_hz"],
                      "rate_inh_hz": pops["inh"]["rate_hz"], "log": log,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      **({"peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}
                         if args.device.startswith("cuda") else {})}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
