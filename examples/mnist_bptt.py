"""A spiking MNIST classifier trained by surrogate gradients through the engine.

    python examples/mnist_bptt.py                                  # BPTT, 1 epoch, 784-1000-10
    python examples/mnist_bptt.py --epochs 5                       # the benchmark's target run
    python examples/mnist_bptt.py --method online --epochs 5       # SLTT: memory flat in T

Rate-coded inputs (Bernoulli spikes, probability = pixel intensity, each of --steps
steps) drive 784 -> --hidden -> 10 SnnTorchLeaky neurons (decay 0.95, threshold 1,
reset by subtraction; snnTorch's snn.Leaky step for step) over delay-0 trainable
projections with biases (see neurosim/networks/rate_classifier.py). Loss: the
cross-entropy of the output membrane at every step, summed over steps; Adam, lr 5e-4.
--method bptt back-propagates through all steps; --method online (SLTT, Meng et al.
2023) back-propagates each step's loss through that step alone, so memory does not
grow with --steps. After each epoch the first --test test images are classified by
a normal (graph-free) run: the class with the most output spikes.

The HDF5 log (--log) records every unrolled batch as a run, then the hidden and output
spikes of the last test pass, and in its `results` group the loss and accuracy per
epoch and the final weights. The last line printed is one JSON object.

Where MNIST is looked for: --data DIR, $NEUROSIM_DATA, ../shared/datasets beside this
clone, ~/.cache/neurosim/datasets/mnist, /usr/share/datasets/mnist.

On several processes (data-parallel; each runs --batch / N rows of every batch and the
gradients are summed before each Adam step, as DistributedDataParallel does):

    torchrun --standalone --nproc-per-node 2 examples/mnist_bptt.py --log-file runs/b.h5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from neurosim.cli_args import log_path, missing_log_file, positive_int


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="bptt", choices=["bptt", "online"],
                        help="bptt: through all steps; online: SLTT, memory flat in --steps")
    parser.add_argument("--steps", type=positive_int, default=25, help="time steps per image (T, default 25)")
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--batch", type=positive_int, default=128)
    parser.add_argument("--hidden", type=positive_int, default=1000)
    parser.add_argument("--lr", type=float, default=5e-4, help="Adam learning rate (default 5e-4)")
    parser.add_argument("--train", type=positive_int, default=None,
                        help="train on the first N training images (default all 60,000)")
    parser.add_argument("--test", type=positive_int, default=None,
                        help="test on the first N test images (default all 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads (default: torch's own setting)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="folder with the four MNIST IDX files, or its parent")
    parser.add_argument("--log", "--log-file", dest="log", default=None,
                        help="HDF5 log (default runs/mnist-bptt-<time>.h5; under torchrun say "
                             "--log-file, which torchrun does not take for its --log-dir)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    progress = False if args.no_progress else None
    t_start = time.perf_counter()
    print("[starting: importing torch and neurosim]", file=sys.stderr, flush=True)
    import h5py
    import numpy as np
    import torch

    from neurosim.datasets import DatasetError, DatasetNotFoundError, load_mnist
    from neurosim.networks.rate_classifier import RateClassifier

    from neurosim.distributed.launch import join_torchrun

    dp, args.device = join_torchrun(args.device)  # under torchrun: data-parallel
    if dp is not None:
        if dp.rank != 0:
            progress = False
        if missing_log_file("mnist_bptt.py", args.log):
            return 2
        if args.batch % dp.size:
            print(f"mnist_bptt.py: error: --batch {args.batch} must be a multiple of the {dp.size} "
                  "processes (each runs --batch / processes rows)", file=sys.stderr)
            return 2
    say = (lambda *a, **k: None) if dp is not None and dp.rank != 0 else print

    beside_clone = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                 "..", "shared", "datasets"))
    log = args.log
    try:
        log = log_path(log, "mnist-bptt")
        if args.threads:
            torch.set_num_threads(args.threads)
        if not args.lr > 0:
            raise ValueError(f"--lr must be positive, got {args.lr}")
        x_train, y_train = load_mnist("train", args.data, also_look_in=[beside_clone])
        x_test, y_test = load_mnist("test", args.data, also_look_in=[beside_clone])
        x_train, y_train = x_train[:args.train], y_train[:args.train]
        x_test, y_test = x_test[:args.test], y_test[:args.test]
        if len(x_train) < args.batch:
            raise ValueError(f"--train ({len(x_train)}) must be at least --batch ({args.batch})")
        clf = RateClassifier(hidden=args.hidden, steps=args.steps, batch=args.batch, seed=args.seed,
                             device=args.device, log=log, data_parallel=dp)
        optimizer = torch.optim.Adam(clf.parameters(), lr=args.lr, betas=(0.9, 0.999))
        history = []
        train_seconds = 0.0
        for epoch in range(1, args.epochs + 1):
            t0 = time.perf_counter()
            loss = clf.train_epoch(x_train, y_train, optimizer, args.method, progress,
                                   desc=f"epoch {epoch}/{args.epochs}: train ({args.method})")
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            if epoch == args.epochs:  # the last test pass goes into the log
                clf.net.spike_monitor(clf.hidden), clf.net.spike_monitor(clf.output)
            accuracy = clf.evaluate(x_test, y_test, progress, desc=f"epoch {epoch}/{args.epochs}: test")
            history.append({"epoch": epoch, "loss": loss, "test_accuracy": accuracy,
                            "train_seconds": seconds})
            say(f"epoch {epoch}: loss {loss:.3f}, test accuracy {100 * accuracy:.2f}% on "
                  f"{len(x_test)} images, trained in {seconds:.1f} s "
                  f"({len(x_train) // args.batch * args.batch / seconds:.0f} samples/s)", flush=True)
    except DatasetNotFoundError as exc:
        print(f"mnist_bptt.py: error: MNIST not found; looked in {', '.join(exc.searched)}. Pass "
              "--data DIR (the folder with the four IDX files, or its parent) or set NEUROSIM_DATA=DIR",
              file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"mnist_bptt.py: error: {exc.filename or exc}: the log exists; choose another --log, "
              "or leave --log out for a new name under runs/", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError, RuntimeError, DatasetError) as exc:
        flag = " (--log)" if isinstance(exc, OSError) and getattr(exc, "filename", None) else ""
        print(f"mnist_bptt.py: error: {exc}{flag}", file=sys.stderr)
        return 2
    if dp is not None:
        from neurosim.distributed.launch import leave_torchrun

        leave_torchrun(dp)
        if dp.rank != 0:
            return 0
    clf.net.log.close()
    with h5py.File(log, "r+") as f:
        g = f.create_group("results")
        for name, proj in clf.net.projections.items():
            g[f"weights/{name}"] = proj.weight_matrix().astype(np.float32)
        for key in ("loss", "test_accuracy", "train_seconds"):
            g[key] = np.array([h[key] for h in history])
        g.attrs.update({"method": args.method, "steps": args.steps, "batch": args.batch,
                        "hidden": args.hidden, "lr": args.lr, "seed": args.seed,
                        "train_samples": len(x_train), "test_samples": len(x_test)})
    trained = len(x_train) // args.batch * args.batch * args.epochs
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"test_accuracy": history[-1]["test_accuracy"], "epochs": args.epochs,
                      "method": args.method, "steps": args.steps, "hidden": args.hidden,
                      "batch": args.batch, "processes": dp.size if dp else 1,
                      "seconds": round(train_seconds, 2),
                      "samples_per_second": round(trained / train_seconds, 1),
                      "accuracy_per_epoch": [round(h["test_accuracy"], 4) for h in history],
                      "total_seconds": round(time.perf_counter() - t_start, 1),
                      "peak_rss_mb": round(peak_rss_mb, 1), "log": log}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
