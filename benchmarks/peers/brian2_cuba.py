"""Peer runner: the Vogels & Abbott (2005) CUBA network in Brian2.

Builds the same network as ``neurosim.networks.cuba.build_cuba`` (N LIF
neurons, 80% excitatory, connection probability 80/N on all four pathways,
1.62 mV / -9 mV jumps on 5 ms / 10 ms exponential currents, exact
integration, dt = 0.1 ms, zero synaptic delay), simulates it and prints one
JSON line with timings, spike counts and peak memory as the last stdout line.

Usage::

    python brian2_cuba.py --neurons 4000 --duration 1000 --seed 1 --mode runtime
    python brian2_cuba.py --neurons 4000 --duration 1000 --seed 1 --mode cpp_standalone --threads 1

Timing: ``run_seconds`` is Brian2's own timing of the simulation loop
(``device._last_run_time``: the Python loop in runtime mode, the C++
``Network::run`` loop in standalone mode, wall clock via ``omp_get_wtime``
when OpenMP is on). ``build_seconds`` is the rest of the wall time up to the
end of ``run()``: construction, code generation, compilation and, in
standalone mode, the binary's set-up (synapse creation, array I/O).
For cpp_standalone ``peak_rss_mb`` is this process's peak plus the peak of
the simulation binary alone (measured with ``/usr/bin/time``, so the
compiler's memory is not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from typing import Any

import brian2 as b2
from brian2 import Equations, NeuronGroup, SpikeMonitor, Synapses, ms, mV


def build_and_run(n: int, duration_ms: float, seed: int) -> dict[str, Any]:
    """Build the CUBA network in the current Brian2 device, run it, return counts."""
    b2.seed(seed)
    b2.defaultclock.dt = 0.1 * ms
    n_exc = round(0.8 * n)
    p = min(1.0, 80.0 / n)
    eqs = Equations("""
        dv/dt = (ge + gi - (v - El)) / taum : volt (unless refractory)
        dge/dt = -ge / taue : volt
        dgi/dt = -gi / taui : volt
    """, taum=20 * ms, taue=5 * ms, taui=10 * ms, El=-49 * mV)
    group = NeuronGroup(n, eqs, threshold="v > -50*mV", reset="v = -60*mV",
                        refractory=5 * ms, method="exact")
    group.v = "-60*mV + rand() * 10*mV"
    group.ge = 0 * mV
    group.gi = 0 * mV
    exc, inh = group[:n_exc], group[n_exc:]
    syn_e = Synapses(exc, group, on_pre="ge += 1.62*mV")  # E->E and E->I
    syn_e.connect(p=p)
    syn_i = Synapses(inh, group, on_pre="gi += -9*mV")    # I->E and I->I
    syn_i.connect(p=p)
    mon = SpikeMonitor(group)
    b2.run(duration_ms * ms)
    idx = mon.i[:]
    return {"group": group, "n_exc": n_exc, "spikes": len(idx),
            "exc_spikes": int((idx < n_exc).sum())}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=4000)
    ap.add_argument("--duration", type=float, default=1000.0, help="ms")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mode", choices=["runtime", "cpp_standalone", "cuda_standalone"], default="runtime",
                    help="cuda_standalone: Brian2CUDA (pip install brian2cuda; a GPU and nvcc)")
    ap.add_argument("--threads", type=int, default=1,
                    help="OpenMP threads (cpp_standalone; 0 = no OpenMP)")
    args = ap.parse_args(argv)

    b2.prefs.logging.console_log_level = "WARNING"
    out: dict[str, Any] = {}
    tmpdir = None
    rss_file = None
    if args.mode == "cpp_standalone":
        tmpdir = tempfile.mkdtemp(prefix="brian2_cuba_")
        rss_file = os.path.join(tmpdir, "binary_maxrss_kb.txt")
        b2.set_device("cpp_standalone", directory=tmpdir, build_on_run=True)
        b2.prefs.devices.cpp_standalone.openmp_threads = args.threads
        b2.prefs.devices.cpp_standalone.run_cmd_unix = [
            "/usr/bin/time", "-f", "%M", "-o", rss_file, "./main"]
    elif args.mode == "cuda_standalone":
        import brian2cuda  # noqa: F401  (registers the cuda_standalone device)

        tmpdir = tempfile.mkdtemp(prefix="brian2cuda_cuba_")
        b2.set_device("cuda_standalone", directory=tmpdir, build_on_run=True)
    t0 = time.perf_counter()
    res = build_and_run(args.neurons, args.duration, args.seed)
    total = time.perf_counter() - t0
    device = b2.get_device()
    run_s = float(device._last_run_time)

    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.mode == "cpp_standalone":
        tool = "brian2 cpp_standalone"
        with open(rss_file) as f:
            binary_kb = int(f.read().split()[-1])
        rss_kb += binary_kb
        out["binary_rss_mb"] = round(binary_kb / 1024, 1)
        out["compile_seconds"] = round(sum(v or 0.0 for v in device.timers["compile"].values()), 3)
        out["openmp_threads"] = args.threads
        shutil.rmtree(tmpdir, ignore_errors=True)
    elif args.mode == "cuda_standalone":
        tool = "brian2cuda"
        out["compile_seconds"] = round(sum(v or 0.0 for v in device.timers["compile"].values()), 3)
        shutil.rmtree(tmpdir, ignore_errors=True)
    else:
        tool = "brian2 runtime"
        cls = type(res["group"].state_updater.codeobj).__name__  # e.g. CythonCodeObject
        out["codegen"] = cls.replace("CodeObject", "").lower()
    seconds = args.duration / 1000.0
    result = {
        "tool": tool, "version": b2.__version__, "neurons": args.neurons,
        "duration_ms": args.duration, "build_seconds": round(total - run_s, 3),
        "run_seconds": round(run_s, 3), "spikes": res["spikes"],
        "rate_hz": round(res["exc_spikes"] / (res["n_exc"] * seconds), 3),
        "peak_rss_mb": round(rss_kb / 1024, 1), **out,
    }
    sys.stdout.flush()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
