"""CUBA benchmark: neurosim (numba, torch) beside Brian2 and NEST, in one invocation.

    python benchmarks/cuba.py                       # 4,000, 16,000 and 64,000 neurons, 1 s
    python benchmarks/cuba.py --sizes 4000 --tools numba,brian2-cpp
    python benchmarks/cuba.py --device cuda --sizes 64000,1000000,4000000

Every tool runs the same Vogels & Abbott (2005) network (LIF, 80% excitatory,
about 80 inputs per neuron, exponential current synapses, dt 0.1 ms; see
``neurosim/networks/cuba.py``) in its own subprocess, so that peak memory is per
tool. Peers run where installed (``pip install -c constraints.txt -e ".[bench]"``)
and are skipped otherwise. Each tool reports its network construction (plus code
generation and compilation) separately from the simulation loop; the table also
gives the wall time of the whole process (import, build, compile, run) and the
ratio of each tool's run time to neurosim numba's (above 1: neurosim is faster).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def commands(tool: str, n: int, duration: float, seed: int, log_dir: str) -> list[str] | None:
    py = sys.executable
    cuba = os.path.join(ROOT, "examples", "cuba.py")
    log = os.path.join(log_dir, f"{tool}-{n}.h5")
    if tool.startswith("numba") or tool.startswith("torch"):
        backend = "torch" if tool.startswith("torch") else "numba"
        return [py, cuba, "--neurons", str(n), "--duration", str(duration), "--seed", str(seed),
                "--backend", backend, "--log", log, "--no-progress"] + (
                    ["--parallel", "--threads", "2"] if tool == "numba-parallel" else []) + (
                    ["--device", "cuda"] if tool == "torch-cuda" else [])
    if tool.startswith("brian2"):
        if importlib.util.find_spec("brian2") is None:
            return None
        if tool == "brian2-cuda" and importlib.util.find_spec("brian2cuda") is None:
            return None
        mode = {"brian2-cpp": "cpp_standalone", "brian2-cuda": "cuda_standalone"}.get(tool, "runtime")
        return [py, os.path.join(HERE, "peers", "brian2_cuba.py"), "--neurons", str(n),
                "--duration", str(duration), "--seed", str(seed), "--mode", mode]
    if tool.startswith("nest"):
        if importlib.util.find_spec("nest") is None:
            return None
        return [py, os.path.join(HERE, "peers", "nest_cuba.py"), "--neurons", str(n),
                "--duration", str(duration), "--seed", str(seed), "--threads", tool.split("-")[1]]
    raise ValueError(f"unknown tool {tool!r}")


LABELS = {"numba-cold": "neurosim numba (cold cache)", "numba": "neurosim numba",
          "numba-parallel": "neurosim numba (2 cores)",
          "torch": "neurosim torch (cpu)", "torch-cuda": "neurosim torch (cuda)",
          "brian2-cuda": "brian2cuda", "brian2-runtime": "brian2 runtime",
          "brian2-cpp": "brian2 cpp_standalone", "nest-1": "nest (1 thread)",
          "nest-2": "nest (2 threads)"}


def run_tool(tool: str, n: int, duration: float, seed: int, log_dir: str,
             timeout: float) -> dict | None:
    cmd = commands(tool, n, duration, seed, log_dir)
    if cmd is None:
        return None
    env = dict(os.environ)
    if tool == "numba-cold":
        env["NEUROSIM_CACHE_DIR"] = tempfile.mkdtemp(prefix="neurosim-cold-")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"tool": LABELS[tool], "neurons": n, "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"tool": LABELS[tool], "neurons": n, "error": last[:120]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    build = out["build_seconds"]
    if tool.startswith("numba") or tool == "torch":  # neurosim reports compilation apart
        build += out.get("compile_seconds", 0.0)
    return {"tool": LABELS[tool], "neurons": n, "build_s": build, "run_s": out["run_seconds"],
            "wall_s": wall, "spikes": out["spikes"], "rate_hz": out["rate_hz"],
            "rss_mb": out.get("peak_rss_mb")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4000,16000,64000", help="comma-separated network sizes")
    parser.add_argument("--duration", type=float, default=1000.0, help="biological time, ms")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tools", default=None,
                        help="comma-separated subset of: " + ", ".join(LABELS) + " (default: the "
                        "CPU tools, or with --device cuda: torch-cuda,numba,brian2-cuda)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: neurosim's torch backend on the GPU beside Brian2CUDA (where "
                        "it installs) and neurosim numba on the CPU")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per tool run")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.tools is None:
        args.tools = ("torch-cuda,numba,brian2-cuda" if args.device == "cuda" else
                      "numba-cold,numba,numba-parallel,torch,brian2-runtime,brian2-cpp,nest-1,nest-2")
    tools = args.tools.split(",")
    unknown = [t for t in tools if t not in LABELS]
    if unknown:
        parser.error(f"--tools: unknown {', '.join(unknown)}; choose from {', '.join(LABELS)}")
    rows = []
    with tempfile.TemporaryDirectory() as log_dir:
        for n in (int(s) for s in args.sizes.split(",")):
            for tool in tools:
                if tool == "brian2-runtime" and n > 16000:
                    continue  # minutes per run; the standalone mode is Brian2's fast path
                row = run_tool(tool, n, args.duration, args.seed, log_dir, args.timeout)
                if row is None:
                    print(f"# {LABELS[tool]}: not installed, skipped", file=sys.stderr)
                    continue
                rows.append(row)
                print(f"# {json.dumps(row)}", file=sys.stderr)
    print(f"\nCUBA, {args.duration:g} ms biological time, dt 0.1 ms, seed {args.seed}, "
          f"{os.cpu_count()} CPU cores\n")
    head = (f"{'tool':<28} {'neurons':>8} {'build+compile s':>15} {'run s':>8} {'total s':>8} "
            f"{'spikes':>9} {'rate Hz':>8} {'peak RSS MB':>11} {'run / numba':>11}")
    print(head)
    print("-" * len(head))
    for n in sorted({r["neurons"] for r in rows}):
        ref = next((r["run_s"] for r in rows if r["neurons"] == n and r["tool"] == LABELS["numba"]
                    and "error" not in r), None)
        rates = []
        for r in (r for r in rows if r["neurons"] == n):
            if "error" in r:
                print(f"{r['tool']:<28} {n:>8}  failed: {r['error']}")
                continue
            ratio = f"{r['run_s'] / ref:.2f}" if ref else "-"
            rss = f"{r['rss_mb']:.0f}" if r.get("rss_mb") else "-"
            print(f"{r['tool']:<28} {n:>8} {r['build_s']:>15.2f} {r['run_s']:>8.3f} {r['wall_s']:>8.2f} "
                  f"{r['spikes']:>9} {r['rate_hz']:>8.2f} {rss:>11} {ratio:>11}")
            rates.append(r["rate_hz"])
        if rates:
            spread = (max(rates) - min(rates)) / (sum(rates) / len(rates))
            print(f"{'':<28} {'':>8}  mean excitatory rates within {100 * spread:.0f}% of their mean "
                  f"({'OK' if spread <= 0.2 else 'MORE THAN 20%'})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
