"""Unsupervised STDP learning of MNIST digits (Diehl & Cook 2015), then evaluation.

    python examples/mnist_stdp.py                      # 100 neurons, 5000 images, about 2 minutes
    python examples/mnist_stdp.py --neurons 100 --train 60000 --test 10000 --batch 16

Trains on the first --train training images, assigns each neuron the digit it
responds to most (from the responses to the last --assign of those images, with
learning off), and
classifies the first --test test images by the "all" and "proportion" schemes.
The HDF5 log holds the excitatory spikes during the test, and under results/ the final weights,
thresholds, assignments and accuracies. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

import h5py
import numpy as np

from neurosim.datasets import DatasetError, load_mnist
from neurosim.networks.diehl_cook import DiehlCook2015


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=100, help="excitatory neurons (default 100)")
    parser.add_argument("--train", type=int, default=5000, help="training images (default 5000)")
    parser.add_argument("--test", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--assign", type=int, default=10000,
                        help="label neurons from the last N training images (default 10000, "
                             "as the paper's code; at most --train)")
    parser.add_argument("--batch", type=int, default=16, help="samples simulated side by side")
    parser.add_argument("--backend", default=None, choices=["numba", "torch"],
                        help="default: numba on cpu, torch on cuda")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None,
                        help="directory with the MNIST IDX files (default: $NEUROSIM_DATA/mnist, "
                             "~/.cache/neurosim/datasets/mnist, or ../shared/datasets/mnist)")
    parser.add_argument("--download", action="store_true",
                        help="fetch MNIST from the usual mirrors if it is not found (checked by MD5)")
    parser.add_argument("--log", default=None, help="HDF5 log (default runs/mnist-<time>.h5)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    progress = False if args.no_progress else None
    data = args.data
    if data is None and not os.environ.get("NEUROSIM_DATA"):
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                            "datasets", "mnist")
        data = here if os.path.isdir(here) else None
    log = args.log
    if log is None:
        os.makedirs("runs", exist_ok=True)
        log = datetime.datetime.now().strftime("runs/mnist-%Y%m%d-%H%M%S-%f.h5")
    try:
        x_train, y_train = load_mnist("train", data, download=args.download)
        x_test, y_test = load_mnist("test", data, download=args.download)
        if not (0 < args.train <= len(x_train) and 0 < args.test <= len(x_test)):
            raise ValueError(f"--train must be in 1..{len(x_train)} and --test in 1..{len(x_test)}")
        if args.assign < 1:
            raise ValueError("--assign must be at least 1")
        dc = DiehlCook2015(args.neurons, batch=args.batch, seed=args.seed, backend=args.backend,
                           device=args.device, log=log)
        dc.net.compile()  # compile (or load cached kernels) before the clock starts
        t0 = time.perf_counter()
        dc.train(x_train[:args.train], progress=progress)
        train_seconds = time.perf_counter() - t0
        assign = slice(args.train - min(args.assign, args.train), args.train)
        dc.assign_labels(dc.respond(x_train[assign], progress=progress), y_train[assign])
        dc.net.spike_monitor(dc.exc)  # the log keeps the spikes of the test samples
        counts = dc.respond(x_test[:args.test], progress=progress)
    except (ValueError, TypeError, OSError, DatasetError) as exc:
        print(f"mnist_stdp.py: error: {exc}", file=sys.stderr)
        return 2
    accuracy = {s: float((dc.predict(counts, s) == y_test[:args.test]).mean())
                for s in ("all", "proportion")}
    with h5py.File(log, "r+") as f:
        g = f.create_group("results")
        g["weights"] = dc.input_exc.weight_matrix().astype(np.float32)
        g["theta"] = dc.exc.state["theta"][0].numpy()
        g["assignments"] = dc.assignments
        g.attrs.update({"accuracy_all": accuracy["all"], "accuracy_proportion": accuracy["proportion"],
                        "train_samples": args.train, "test_samples": args.test})
    print(f"Diehl & Cook (2015), {args.neurons} neurons, batch {args.batch}: trained on {args.train} "
          f"images in {train_seconds:.1f} s ({args.train / train_seconds:.1f} samples/s)")
    print(f"  test accuracy on {args.test} images: {100 * accuracy['all']:.1f}% (all), "
          f"{100 * accuracy['proportion']:.1f}% (proportion weighting); log: {log}")
    print(json.dumps({"accuracy": accuracy["proportion"], "accuracy_all": accuracy["all"],
                      "train_samples": args.train, "test_samples": args.test,
                      "neurons": args.neurons, "batch": args.batch,
                      "train_seconds": round(train_seconds, 2),
                      "samples_per_second": round(args.train / train_seconds, 2), "log": log}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
