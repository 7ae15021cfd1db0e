"""The torch backend's step: microseconds per step and operators per step, CUBA by size.

    python benchmarks/torch_step.py --sizes 4000,64000 --duration 200
    python benchmarks/torch_step.py --device cuda --sizes 64000,1000000,4000000

Each size runs CUBA (``neurosim/networks/cuba.py``) with a spike counter on the
excitatory population, after a 20 ms warm-up, once with the static step
(``Network(static_step=True)``, the default: padded spike lists, the step counter on
the device, no host synchronisation) and once with the per-entry step it replaced
(``static_step=False``). It then counts the torch operators of one step with
``torch.profiler`` (``aten::`` calls; on CUDA also kernel launches and
synchronisations). Prints one line per run, then a table.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import neurosim as ns
from neurosim.networks import build_cuba


def build(n: int, device: str, static: bool, seed: int) -> ns.Network:
    net = ns.Network(dt=0.1, seed=seed, backend="torch", device=device, static_step=static)
    cuba = build_cuba(net, n)
    net.spike_counter(cuba.exc, name="exc_counts")
    return net


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def ops_per_step(net: ns.Network, device: str, steps: int = 20) -> dict[str, float]:
    """aten operators (and on CUDA kernel launches and syncs) per step, over ``steps``."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    net.run(steps=steps, progress=False)  # (warm: nothing first-time in the profile)
    with profile(activities=activities) as prof:
        net.run(steps=steps, progress=False)
        sync(device)
    events = prof.events()
    # top-level aten calls only: an op's internal calls are not separate work
    aten = [e for e in events if e.name.startswith("aten::") and
            (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))]
    out = {"aten_ops": len(aten) / steps}
    if device == "cuda":
        out["launches"] = sum(e.name in ("cudaLaunchKernel", "cuLaunchKernel", "cudaGraphLaunch")
                              for e in events) / steps
        out["syncs"] = sum("Synchronize" in e.name for e in events) / steps
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,64000")
    parser.add_argument("--duration", type=float, default=200.0, help="biological ms per run")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--paths", default="static,per-entry",
                        help="which steps to run: static, per-entry, or both (comma-separated)")
    args = parser.parse_args()
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        for path in args.paths.split(","):
            if path not in ("static", "per-entry"):
                parser.error(f"--paths: unknown step {path!r}; use static and/or per-entry")
            if args.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            net = build(n, args.device, path == "static", args.seed)
            net.run(20.0, progress=False)  # warm-up (and, on the first run, any compilation)
            sync(args.device)
            first = time.perf_counter() - t0
            t1 = time.perf_counter()
            net.run(args.duration, progress=False)
            sync(args.device)
            run = time.perf_counter() - t1
            steps = int(round(args.duration / net.dt))
            counter = next(m for m in net.monitors.values() if m.name == "exc_counts")
            spikes = int(counter.counts.sum())
            row = {"neurons": n, "step": path, "us_per_step": round(1e6 * run / steps, 1),
                   "s_per_bio_s": round(run * 1000.0 / args.duration, 3),
                   "build_and_warmup_s": round(first, 2), "exc_spikes": spikes,
                   **{k: round(v, 1) for k, v in ops_per_step(net, args.device).items()}}
            if args.device == "cuda":
                row["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            print(json.dumps(row), flush=True)
            rows.append(row)
            del net
    keys = list(rows[0])
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")


if __name__ == "__main__":
    main()
