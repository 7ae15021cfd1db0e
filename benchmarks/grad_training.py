"""Surrogate-gradient training of one spiking MNIST classifier in neurosim and its peers.

    python benchmarks/grad_training.py                       # 1 epoch each, all installed peers
    python benchmarks/grad_training.py --epochs 1 --limit 8192 --test-limit 2000   # a quick look
    python benchmarks/grad_training.py --interleave 60   # batch times, neurosim and snnTorch alternating

The network (784-1000-10 leaky neurons, T = 25, batch 128, Adam lr 5e-4, rate-coded
inputs, loss on the output membrane at every step) and what is timed are described in
``benchmarks/grad_training_peers.py``; neurosim trains it with
:class:`neurosim.networks.rate_classifier.RateClassifier` (``Network.unroll``, BPTT, and
the online SLTT method with ``--online``). Every trainer gets the same torch thread
count (``--threads``, default 2). neurosim and snnTorch have the same dynamics (the
reset lags one step); the first weights are the same ``nn.Linear`` draws everywhere.
One table, one run, one machine: the rows are comparable with each other, and only
roughly with another machine's or another load's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from grad_training_peers import PEERS, peer_versions  # noqa: E402


def train_neurosim(train_x: Any, train_y: Any, test_x: Any, test_y: Any, *, epochs: int,
                   steps: int = 25, batch: int = 128, hidden: int = 1000, seed: int = 0,
                   device: str = "cpu", limit: int | None = None, threads: int = 2,
                   progress: bool = True, method: str = "bptt") -> dict[str, Any]:
    """Train and test neurosim's RateClassifier the way the peers are trained."""
    import neurosim
    from neurosim.networks.rate_classifier import RateClassifier

    torch.set_num_threads(threads)
    x, y = train_x[:limit] if limit else train_x, train_y[:limit] if limit else train_y
    clf = RateClassifier(hidden=hidden, steps=steps, batch=batch, seed=seed, device=device)
    opt = torch.optim.Adam(clf.parameters(), lr=5e-4, betas=(0.9, 0.999))
    start = time.perf_counter()
    for epoch in range(epochs):
        clf.train_epoch(x, y, opt, method, progress if progress else False,
                        desc=f"neurosim {method} epoch {epoch + 1}/{epochs}")
    seconds = time.perf_counter() - start
    accuracy = clf.evaluate(test_x, test_y, False)
    samples = len(x) // batch * batch * epochs
    return {"peer": f"neurosim ({method})", "version": neurosim.__version__, "train_samples": samples,
            "seconds": seconds, "samples_per_second": samples / seconds, "test_accuracy": accuracy,
            "epochs": epochs}


def interleaved(train_x: Any, train_y: Any, batches: int, threads: int, seed: int) -> dict[str, Any]:
    """One training batch of neurosim (BPTT) and one of snnTorch, in turn (each first
    every other time), ``batches`` times in one process (after 3 warm-up batches each):
    the median time per batch of each, so that the machine's load changes both alike."""
    import statistics

    import torch.nn.functional as F

    from grad_training_peers import _encode, _SnnTorchNet
    from neurosim.networks.rate_classifier import RateClassifier

    torch.set_num_threads(threads)
    n = (batches + 3) * 128
    x = np.asarray(train_x[:n], dtype=np.float32).reshape(-1, 784) / 255.0
    y = np.asarray(train_y[:n])
    clf = RateClassifier(hidden=1000, steps=25, batch=128, seed=seed)
    opt = torch.optim.Adam(clf.parameters(), lr=5e-4, betas=(0.9, 0.999))
    torch.manual_seed(seed)
    model = _SnnTorchNet(1000)
    opt2 = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.999))
    gen = torch.Generator().manual_seed(seed + 1)
    xs, ys = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)

    def ours(k: int) -> None:
        opt.zero_grad(set_to_none=True)
        clf.loss_and_backward(x[128 * k:128 * (k + 1)], y[128 * k:128 * (k + 1)])
        opt.step()

    def theirs(k: int) -> None:
        idx = slice(128 * k, 128 * (k + 1))
        _, mem = model(_encode(xs[idx], 25, gen))
        loss = F.cross_entropy(mem.reshape(-1, 10), ys[idx].repeat(25), reduction="sum") / 128
        opt2.zero_grad(set_to_none=True)
        loss.backward()
        opt2.step()

    times: dict[str, list[float]] = {"neurosim": [], "snntorch": []}
    pair = (("neurosim", ours), ("snntorch", theirs))
    for k in range(batches + 3):
        for name, step in (pair if k % 2 == 0 else pair[::-1]):  # (each goes first half the time)
            start = time.perf_counter()
            step(k)
            if k >= 3:
                times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {"batches": batches, "median_ms": {k: round(v * 1000, 2) for k, v in med.items()},
            "speed_ratio": med["snntorch"] / med["neurosim"]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--peers", default=",".join(PEERS),
                    help=f"comma-separated peers besides neurosim; installed: {','.join(PEERS)}")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="training samples per epoch (default all)")
    ap.add_argument("--test-limit", type=int, default=None, help="test samples (default all 10,000)")
    ap.add_argument("--online", action="store_true", help="also neurosim's online (SLTT) method")
    ap.add_argument("--data", default=None, help="folder with the MNIST IDX files (or its parent)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--interleave", type=int, default=None, metavar="BATCHES",
                    help="instead: time BATCHES training batches of neurosim and snnTorch alternately")
    args = ap.parse_args(argv)
    if args.interleave is not None and args.interleave < 1:
        ap.error("--interleave must be a positive number of batches")
    if args.interleave is not None and (args.limit is not None or args.online or args.epochs != 1):
        ap.error("--interleave times neurosim and snnTorch on --interleave batches: "
                 "drop --limit, --online and --epochs")
    if args.epochs < 1 or (args.limit is not None and args.limit < 128) or args.threads < 1:
        ap.error("--epochs and --threads must be positive and --limit at least one batch (128)")
    if args.test_limit is not None and args.test_limit < 1:
        ap.error("--test-limit must be positive")
    unknown = [p for p in args.peers.split(",") if p and p not in ("snntorch", "norse", "spikingjelly")]
    if unknown:
        ap.error(f"--peers: unknown {unknown}; known: snntorch, norse, spikingjelly")
    from neurosim.datasets import DatasetNotFoundError
    from neurosim.datasets.mnist import load_mnist

    shared = [os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "datasets")]
    try:
        train_x, train_y = load_mnist("train", args.data, also_look_in=shared)
        test_x, test_y = load_mnist("test", args.data, also_look_in=shared)
    except DatasetNotFoundError as exc:
        ap.error(f"MNIST not found; looked in {', '.join(exc.searched)}: pass --data DIR")
    test_x, test_y = test_x[:args.test_limit], test_y[:args.test_limit]
    if args.interleave is not None:
        if (args.interleave + 3) * 128 > len(train_x):
            ap.error(f"--interleave {args.interleave}: MNIST has {len(train_x)} training images, "
                     f"enough for {len(train_x) // 128 - 3} batches")
        if "snntorch" not in PEERS:
            ap.error("--interleave compares with snnTorch, which is not installed")
        load = os.getloadavg()[0]
        r = interleaved(train_x, train_y, args.interleave, args.threads, args.seed)
        print(f"machine: {os.cpu_count()} cores, torch threads {args.threads}, load before {load:.2f}; "
              f"{r['batches']} batches of 128 each, alternating")
        print(f"median ms per batch: neurosim (BPTT) {r['median_ms']['neurosim']}, "
              f"snnTorch {r['median_ms']['snntorch']}; neurosim / snnTorch speed {r['speed_ratio']:.2f}x")
        return
    common = dict(epochs=args.epochs, limit=args.limit, seed=args.seed, threads=args.threads,
                  progress=not args.no_progress)
    runs = [("neurosim", lambda: train_neurosim(train_x, train_y, test_x, test_y, **common))]
    for name in [p for p in args.peers.split(",") if p]:
        if name not in PEERS:
            print(f"{name}: not installed (pip install -c constraints.txt -e '.[grad]')", file=sys.stderr)
            continue
        runs.append((name, lambda fn=PEERS[name]: fn(train_x, train_y, test_x, test_y, **common)))
    if args.online:
        runs.append(("online", lambda: train_neurosim(train_x, train_y, test_x, test_y,
                                                      method="online", **common)))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads {args.threads}, load before {os.getloadavg()[0]:.2f}; "
          f"{args.epochs} epoch(s) of {args.limit or len(train_x)} images, test on {len(test_y)}")
    print("| trainer | version | train samples | seconds | samples/s | test accuracy |")
    print("|---|---|---:|---:|---:|---:|")
    results = []
    for _, run in runs:
        r = run()
        results.append(r)
        print(f"| {r['peer']} | {r['version']} | {r['train_samples']} | {r['seconds']:.1f} | "
              f"{r['samples_per_second']:.0f} | {100 * r['test_accuracy']:.2f}% |", flush=True)
    snn = next((r for r in results if r["peer"] == "snntorch"), None)
    ours = results[0]
    if snn is not None:
        print(f"neurosim / snnTorch training speed: "
              f"{ours['samples_per_second'] / snn['samples_per_second']:.2f}x")
    print(json.dumps({"versions": peer_versions(), "threads": args.threads,
                      "load_after": round(os.getloadavg()[0], 2), "test_samples": len(test_y),
                      "results": results}, default=lambda v: float(np.asarray(v))))


if __name__ == "__main__":
    main()
