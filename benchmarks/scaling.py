"""Scaling of partitioned runs: the CUBA network on 1 and N processes (torch.distributed, gloo).

    python benchmarks/scaling.py                          # 64,000 neurons, 1 s, 1 and 2 processes
    python benchmarks/scaling.py --sizes 16000,64000 --processes 1,2 --backends numba,torch
    python benchmarks/scaling.py --weak 32000             # 32,000 neurons per process
    python benchmarks/scaling.py --mnist 16,64 --sizes "" # data-parallel Diehl & Cook training
    python benchmarks/scaling.py --nest /path/to/python   # with NEST (pip install nest-simulator)

Each configuration runs ``examples/cuba.py`` in its own invocation (``torchrun
--standalone`` for more than one process), so every process is fresh and compiled
kernels come from the disk cache (one warm-up run per backend first). Strong
scaling: the same network on more processes; weak scaling: the network grows with
the processes. The table gives the run time (process 0's, without build and
compilation; the build time is its own column: with ``--connectors pairwise-bernoulli``
each process draws only its share of every projection), the share of it spent exchanging spikes (packing, the all_gather and
waiting for the slower process), the speed-up over one process, and whether the
spike count equals the one-process run (it must: the spikes are the same).

The anchor is NEST (``benchmarks/peers/nest_cuba.py``, the same network with
``iaf_psc_exp``) on 1 and N threads, when an interpreter with NEST is given (``--nest``)
or this one has it: the PyPI wheel of NEST 3.10 is built without MPI, so its
shared-memory threads are the parallelism it offers on one machine here.

``--mnist B1,B2``: data-parallel training of the Diehl & Cook (2015) network
(``benchmarks/scaling_mnist_worker.py``, 480 images after a warm-up batch) with whole
batches B on 1 and N processes, for each schedule of weight updates (``--weight-updates``):
``step`` (every step, as the paper: N processes sum every step) and ``sample`` (once per
presentation and once per rest, the weights fixed in between: one sum per window).
Samples per second, the speed-up and the largest difference of the final weights from
the one-process run of the same schedule, and the share of the time spent summing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CUBA = os.path.join(ROOT, "examples", "cuba.py")


def run(n: int, processes: int, backend: str, duration: float, seed: int, log_dir: str,
        delay: float | None = None, connector: str = "fixed-probability",
        connection_p: float | None = None) -> dict:
    log = os.path.join(log_dir, f"{backend}-{n}-{processes}.h5")
    flags = [CUBA, "--neurons", str(n), "--duration", str(duration), "--seed", str(seed),
             "--connector", connector,
             *([] if connection_p is None else ["--connection-p", str(connection_p)]),
             *([] if delay is None else ["--delay", str(delay)]),
             "--backend", backend, "--log-file", log, "--overwrite", "--no-progress"]
    cmd = ([sys.executable, *flags] if processes == 1 else
           [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={processes}", *flags])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_nest(python: str, n: int, threads: int, duration: float, seed: int, delay: float) -> dict:
    cmd = [python, os.path.join(HERE, "peers", "nest_cuba.py"), "--neurons", str(n),
           "--duration", str(duration), "--seed", str(seed), "--threads", str(threads),
           "--delay", str(delay)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def nest_python(given: str | None) -> str | None:
    """The interpreter to run NEST with: ``--nest``, else this one if it has NEST."""
    if given:
        return given
    import importlib.util

    return sys.executable if importlib.util.find_spec("nest") is not None else None


def run_mnist(batch: int, processes: int, weights: str, backend: str, updates: str = "step") -> dict:
    worker = os.path.join(HERE, "scaling_mnist_worker.py")
    flags = [worker, "--batch", str(batch), "--backend", backend, "--weights", weights,
             "--weight-updates", updates]
    cmd = ([sys.executable, *flags] if processes == 1 else
           [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={processes}", *flags])
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def mnist_table(batches: list[int], counts: list[int], backend: str, updates: list[str]) -> None:
    """Each schedule of weight updates on 1 and N processes; speed and weights against the
    one-process run of the same schedule (they must agree: the same learning)."""
    import numpy as np

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for batch in batches:
            for schedule in updates:
                ref = None
                for p in counts:
                    path = os.path.join(tmp, f"w-{batch}-{p}-{schedule}.npy")
                    out = run_mnist(batch, p, path, backend, schedule)
                    w = np.load(path)
                    if ref is None:
                        ref = (out, w)
                    rows.append((batch, schedule, p, out["samples_per_second"],
                                 out["samples_per_second"] / ref[0]["samples_per_second"],
                                 out["reduce_seconds"] / out["seconds"], float(np.abs(w - ref[1]).max())))
                    print(f"mnist batch {batch} weight updates {schedule} processes {p}: "
                          f"{out['samples_per_second']} samples/s", file=sys.stderr, flush=True)
    print(f"\nDiehl & Cook (2015), 100 neurons, 480 MNIST images, {backend}, data-parallel "
          f"(gloo, one machine, {os.cpu_count()} cores)\n")
    print("| whole batch | weight updates | processes | samples/s | vs 1 process | summing share "
          "| max weight difference from 1 process |")
    print("|---|---|---|---|---|---|---|")
    for batch, schedule, p, sps, speedup, share, diff in rows:
        print(f"| {batch} | {schedule} | {p} | {sps:.1f} | {speedup:.2f}x | {100 * share:.0f}% | {diff:.2g} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64000", help="network sizes for strong scaling (comma-separated)")
    parser.add_argument("--weak", type=int, default=None,
                        help="also weak scaling with this many neurons per process")
    parser.add_argument("--processes", default="1,2", help="process counts (comma-separated)")
    parser.add_argument("--backends", default="numba,torch")
    parser.add_argument("--duration", type=float, default=1000.0, help="biological time, ms")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delays", default="0.1",
                        help="synaptic delays in ms (comma-separated; 0.1 = the benchmark's one step)")
    parser.add_argument("--connectors", default="fixed-probability",
                        help="CUBA's connectivity (comma-separated): fixed-probability (drawn whole "
                             "and cut in a partitioned run), pairwise-bernoulli (each process draws "
                             "only its share)")
    parser.add_argument("--connection-p", type=float, default=None,
                        help="CUBA's connection probability (default 80 / neurons); e.g. 0.02 at "
                             "64,000 neurons: 82 million synapses, where building dominates")
    parser.add_argument("--mnist", default="",
                        help="whole batches for data-parallel Diehl & Cook training (comma-separated)")
    parser.add_argument("--nest", default=None, metavar="PYTHON",
                        help="an interpreter with NEST installed, for the anchor rows (default: "
                             "this one if it has NEST, else none)")
    parser.add_argument("--weight-updates", default="step,sample",
                        help="--mnist: schedules of weight updates (step: every step; sample: once "
                             "per presentation and rest, the weights fixed in between)")
    args = parser.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x]
    counts = [int(x) for x in args.processes.split(",") if x]
    backends = [b for b in args.backends.split(",") if b]
    delays = [float(x) for x in args.delays.split(",") if x]
    connectors = [c for c in args.connectors.split(",") if c]
    rows = []
    if args.mnist:
        mnist_table([int(b) for b in args.mnist.split(",") if b], counts, backends[0],
                    [u for u in args.weight_updates.split(",") if u])
    if not sizes and not args.weak:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            run(2000, 1, backend, 10.0, args.seed, tmp)  # warm the kernel cache
            cases = [("strong", n, p, d, c) for c in connectors for d in delays for n in sizes
                     for p in counts]
            if args.weak:
                cases += [("weak", args.weak * p, p, d, c) for c in connectors for d in delays
                          for p in counts]
            base: dict[tuple[str, int, float, str], dict] = {}
            for kind, n, p, d, c in cases:
                out = run(n, p, backend, args.duration, args.seed, tmp, d, c, args.connection_p)
                key = (kind, n if kind == "strong" else args.weak, d, c)
                ref = base.setdefault(key, out) if p == counts[0] else base[key]
                same = "-" if kind == "weak" else ("yes" if out["spikes"] == ref["spikes"] else "NO")
                rows.append((kind, backend, c, d, n, p, out["build_seconds"], out["run_seconds"],
                             out["exchange_seconds"], ref["run_seconds"] / out["run_seconds"], same,
                             out["peak_rss_mb"]))
                print(f"{kind} {backend} {c} delay {d:g} ms n={n} processes={p}: build "
                      f"{out['build_seconds']:.2f} s, run {out['run_seconds']:.2f} s, "
                      f"exchange {out['exchange_seconds']:.2f} s", file=sys.stderr, flush=True)
        nest = nest_python(args.nest)
        if nest is not None and args.connection_p is not None:
            print("--connection-p: the NEST script builds CUBA's 80 inputs per neuron only; "
                  "no anchor rows", file=sys.stderr)
            nest = None
        elif nest is None:
            print("NEST not found (pip install nest-simulator, or --nest PYTHON): no anchor rows",
                  file=sys.stderr)
        for d in delays if nest is not None else ():
            for n in sizes:
                ref = None
                for threads in counts:
                    out = run_nest(nest, n, threads, args.duration, args.seed, d)
                    ref = ref or out
                    rows.append(("strong", "NEST (threads)", "pairwise_bernoulli", d, n, threads,
                                 out.get("build_seconds"), out["run_seconds"], None,
                                 ref["run_seconds"] / out["run_seconds"],
                                 "yes" if out["spikes"] == ref["spikes"] else "no", out["peak_rss_mb"]))
                    print(f"NEST delay {d:g} ms n={n} threads={threads}: run {out['run_seconds']:.2f} s",
                          file=sys.stderr, flush=True)
    inputs = "80 inputs per neuron" if args.connection_p is None else f"p = {args.connection_p:g}"
    print(f"\nCUBA ({inputs}), {args.duration:g} ms at dt 0.1 ms, gloo on one machine "
          f"({os.cpu_count()} cores)\n")
    print("| scaling | backend | connector | delay ms | neurons | processes (NEST: threads) | build s "
          "| run s | exchange share | vs 1 process | same spikes | peak RSS MB (process 0) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, backend, c, d, n, p, build_s, run_s, ex_s, speedup, same, rss in rows:
        share = "-" if ex_s is None else f"{100 * ex_s / run_s:.0f}%"
        build = "-" if build_s is None else f"{build_s:.2f}"
        print(f"| {kind} | {backend} | {c} | {d:g} | {n} | {p} | {build} | {run_s:.2f} | {share} | "
              f"{speedup:.2f}x | {same} | {rss:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
