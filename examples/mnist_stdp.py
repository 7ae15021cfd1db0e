"""Unsupervised STDP learning of MNIST digits (Diehl & Cook 2015), then evaluation.

    python examples/mnist_stdp.py                      # 100 neurons, 5000 images, 2 minutes idle
    python examples/mnist_stdp.py --neurons 100 --train 60000 --test 10000 --batch 16
    torchrun --standalone --nproc-per-node 2 examples/mnist_stdp.py --batch 16 --log-file runs/m.h5

Under torchrun the batch is split across the processes (data-parallel: each simulates
--batch / N rows; the weight changes are summed where one process applies them, so the
weights are one process's up to float rounding; see docs/distributed.md). Summing every
step costs one collective per step; --weight-updates sample applies the changes once per
presentation and once per rest (in one process too), one collective each. Process 0
prints and writes.

Trains on the first --train training images, assigns each neuron the digit it
responds to most (from the responses to the last --assign of those images, with
learning off), and
classifies the first --test test images by the "all" and "proportion" schemes.
The HDF5 log holds the excitatory spikes during the test, and in its `results` group the final
weights, thresholds, assignments and accuracies. The last line printed is one JSON object.
Labelling (--assign images) and testing take about as long per image as training.

Where MNIST is looked for, in order: --data DIR (the folder holding the four IDX
files, or its parent), $NEUROSIM_DATA (either form), ../shared/datasets/mnist beside
this clone, ~/.cache/neurosim/datasets/mnist (where --download puts it), and
/usr/share/datasets/mnist.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

FILES = ("train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
         "t10k-labels-idx1-ubyte.gz")


class Phases:
    """Says what the run is doing: a line per phase on stderr (with its time when done),
    so that a user sees progress at start-up and when output is not a terminal."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.quiet = False  # (the other processes of a data-parallel run)

    def say(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:6.1f} s] {text}", file=sys.stderr, flush=True)


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
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="folder with the four MNIST IDX files, or its parent (default: "
                             "$NEUROSIM_DATA, ../shared/datasets beside this clone, "
                             "~/.cache/neurosim/datasets/mnist, /usr/share/datasets/mnist)")
    parser.add_argument("--download", action="store_true",
                        help="fetch MNIST from the usual mirrors if it is not found (checked by MD5)")
    parser.add_argument("--log", "--log-file", dest="log", default=None,
                        help="HDF5 log (default runs/mnist-<time>.h5; under torchrun say --log-file, "
                             "which torchrun does not take for its own --log-dir)")
    parser.add_argument("--weight-updates", default="step", choices=["step", "sample"],
                        help="apply the weight changes every step (the paper's) or once per "
                             "presentation and once per rest, the weights fixed in between; "
                             "the same in one process and under torchrun, where 'sample' "
                             "means one sum of the processes' changes per window instead of "
                             "one per step (much faster)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    progress = False if args.no_progress else None
    phases = Phases()
    # torch and numba take seconds to import: say so, after --help has had its chance
    phases.say("starting: importing torch, numba and neurosim")
    import h5py
    import numpy as np

    from neurosim.datasets import DatasetError, DatasetNotFoundError, DownloadError, load_mnist
    from neurosim.networks.diehl_cook import DiehlCook2015
    from neurosim.cli_args import missing_log_file
    from neurosim.distributed.launch import join_torchrun

    dp, args.device = join_torchrun(args.device)  # under torchrun: data-parallel
    if dp is not None:
        phases.quiet = dp.rank != 0
        if dp.rank != 0:
            progress = False
        if args.batch % dp.size:
            print(f"mnist_stdp.py: error: --batch {args.batch} must be a multiple of the {dp.size} "
                  "processes (each simulates --batch / processes rows)", file=sys.stderr)
            return 2
        if missing_log_file("mnist_stdp.py", args.log):
            return 2
    beside_clone = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                                "datasets")
    log = args.log
    if log is None:
        os.makedirs("runs", exist_ok=True)
        log = datetime.datetime.now().strftime("runs/mnist-%Y%m%d-%H%M%S-%f.h5")
    elif os.path.dirname(log):
        os.makedirs(os.path.dirname(log), exist_ok=True)  # e.g. --log runs/x.h5 in a fresh clone
    try:
        if not (args.train > 0 and args.test > 0 and args.assign > 0 and args.batch > 0
                and args.neurons > 0):
            raise ValueError("--neurons, --train, --test, --assign and --batch must be positive")
        from neurosim.datasets.mnist import MNIST, locate

        found = locate(MNIST, "train", args.data, [os.path.normpath(beside_clone)])
        phases.say(f"loading MNIST from {found}" if found else
                   "loading MNIST" + (" (downloading it)" if args.download else ""))
        x_train, y_train = load_mnist("train", args.data, download=args.download,
                                      also_look_in=[os.path.normpath(beside_clone)])
        x_test, y_test = load_mnist("test", args.data, download=args.download,
                                    also_look_in=[os.path.normpath(beside_clone)])
        if args.train > len(x_train) or args.test > len(x_test):
            raise ValueError(f"--train must be at most {len(x_train)} and --test at most {len(x_test)}")
        phases.say(f"building the network ({args.neurons} neurons, batch {args.batch})")
        dc = DiehlCook2015(args.neurons, batch=args.batch // (dp.size if dp else 1), seed=args.seed,
                           backend=args.backend, device=args.device, log=log, data_parallel=dp,
                           weight_window="sample" if args.weight_updates == "sample" else None)
        phases.say("compiling kernels (the first run of a network structure; cached afterwards)")
        compile_seconds = dc.net.compile()  # before the clock starts
        phases.say(f"compiled in {compile_seconds:.1f} s; train: {args.train} images, learning on")
        t0 = time.perf_counter()
        dc.train(x_train[:args.train], progress=progress, desc="train")
        train_seconds = time.perf_counter() - t0
        assign = slice(args.train - min(args.assign, args.train), args.train)
        n_assign = assign.stop - assign.start
        phases.say(f"trained in {train_seconds:.1f} s ({args.train / train_seconds:.1f} samples/s); "
                   f"label: neurons labelled from {n_assign} training images, learning off")
        dc.assign_labels(dc.respond(x_train[assign], progress=progress, desc="label"), y_train[assign])
        dc.net.spike_monitor(dc.exc)  # the log keeps the spikes of the test samples
        phases.say("compiling the test network (its spike monitor changes the kernel)")
        dc.net.compile()
        phases.say(f"test: {args.test} test images")
        counts = dc.respond(x_test[:args.test], progress=progress, desc="test")
    except DatasetNotFoundError as exc:
        print(f"mnist_stdp.py: error: MNIST not found; looked in {', '.join(exc.searched)}. "
              f"Pass --data DIR (the folder with the four IDX files, or its parent), set "
              f"NEUROSIM_DATA=DIR, or add --download (needs internet)", file=sys.stderr)
        return 2
    except DownloadError as exc:
        print(f"mnist_stdp.py: error: {exc}. Without internet: copy the four files ({FILES}) "
              f"into a folder and pass --data DIR, or set NEUROSIM_DATA=DIR", file=sys.stderr)
        return 2
    except FileExistsError as exc:
        print(f"mnist_stdp.py: error: {exc.filename or exc}: the log exists; choose another "
              f"--log, or leave --log out for a new name under runs/", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError, DatasetError) as exc:
        print(f"mnist_stdp.py: error: {exc}", file=sys.stderr)
        return 2
    accuracy = {s: float((dc.predict(counts, s) == y_test[:args.test]).mean())
                for s in ("all", "proportion")}
    if dp is not None:
        from neurosim.distributed.launch import leave_torchrun

        leave_torchrun(dp)
        if dp.rank != 0:
            return 0
    with h5py.File(log, "r+") as f:
        g = f.create_group("results")
        g["weights"] = dc.input_exc.weight_matrix().astype(np.float32)
        g["theta"] = dc.exc.state["theta"][0].cpu().numpy()
        g["assignments"] = dc.assignments
        g.attrs.update({"accuracy_all": accuracy["all"], "accuracy_proportion": accuracy["proportion"],
                        "train_samples": args.train, "test_samples": args.test})
    total_seconds = time.perf_counter() - phases.t0
    phases.say("done")
    print(f"Diehl & Cook (2015), {args.neurons} neurons, batch {args.batch}: trained on {args.train} "
          f"images in {train_seconds:.1f} s ({args.train / train_seconds:.1f} samples/s); "
          f"the whole run took {total_seconds:.1f} s")
    print(f"  test accuracy on {args.test} images: {100 * accuracy['all']:.1f}% (all), "
          f"{100 * accuracy['proportion']:.1f}% (proportion weighting); log: {log}")
    print(json.dumps({"accuracy": accuracy["proportion"], "accuracy_all": accuracy["all"],
                      "train_samples": args.train, "test_samples": args.test,
                      "neurons": args.neurons, "batch": args.batch,
                      "processes": dp.size if dp else 1, "weight_updates": args.weight_updates,
                      "train_seconds": round(train_seconds, 2),
                      "samples_per_second": round(args.train / train_seconds, 2),
                      "compile_seconds": round(compile_seconds, 2),
                      "total_seconds": round(total_seconds, 2), "log": log}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
