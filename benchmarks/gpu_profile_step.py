"""What one torch-backend step costs on a GPU: kernel launches, host syncs, top operators.

For the GPU issue (a sync-free step in CUDA graphs): counts, per simulated step of
CUBA, the CUDA kernels launched and the calls that wait for the device, from the
torch profiler.

    python benchmarks/gpu_profile_step.py --neurons 1000000 --steps 50
"""

from __future__ import annotations

import argparse
import collections
import json
import time

import torch
from torch.profiler import ProfilerActivity, profile

import neurosim as ns
from neurosim.networks import build_cuba

SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpy", "cudaMemcpyAsync",
              "cudaEventSynchronize")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    net = ns.Network(dt=0.1, seed=1, backend="torch", device="cuda")
    cuba = build_cuba(net, args.neurons)
    net.spike_monitor(cuba.exc)
    net.run(steps=200, progress=False)  # warm-up, past the delays
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    net.run(steps=args.steps, progress=False)
    torch.cuda.synchronize()
    per_step_ms = 1e3 * (time.perf_counter() - t0) / args.steps
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        net.run(steps=args.steps, progress=False)
        torch.cuda.synchronize()
    events = prof.events()
    kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    runtime = collections.Counter(e.name for e in events if e.name.startswith("cuda"))
    syncs = {k: v for k, v in runtime.items() if k in SYNC_CALLS}
    ops = collections.Counter()
    for e in events:
        if e.name.startswith("aten::") and e.cpu_parent is None:
            ops[e.name] += 1
    result = {
        "neurons": args.neurons, "steps": args.steps, "ms_per_step": round(per_step_ms, 3),
        "kernels_per_step": round(kernels / args.steps, 1),
        "runtime_calls_per_step": {k: round(v / args.steps, 2) for k, v in runtime.most_common(8)},
        "syncing_calls_per_step": {k: round(v / args.steps, 2) for k, v in syncs.items()},
        "top_level_aten_ops_per_step": {k: round(v / args.steps, 2) for k, v in ops.most_common(15)},
    }
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=15))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
