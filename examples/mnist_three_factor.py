"""A structured recurrent SNN learns MNIST without backpropagation (three-factor rules).

    python examples/mnist_three_factor.py                    # local rules, 1 epoch of all 60,000
    python examples/mnist_three_factor.py --method bptt      # the same network by BPTT
    python examples/mnist_three_factor.py --epochs 5 --lr-decay 0.7   # the README's full configuration

The network (neurosim.networks.StructuredRecurrentSNN; design in its docstring and in
shared/research/algorithms.md section 4): 784 input neurons driven by the pixel
intensities, --hidden locally dense recurrent LIF layers, sparse small-world projections
to a readout of 10 x --per-class neurons. With --method local every plastic projection
learns by an e-prop eligibility rule (presynaptic trace x voltage pseudo-derivative)
gated by a per-sample learning signal: the readout's population error (target rate for
the label's neurons, 0 for the others; --wta keeps only label and winner), broadcast to
each hidden layer through a fixed random matrix and gated per neuron by --modulators
modulatory units. The updates apply once per sample; no autograd graph is built. With
--method bptt the same network (same initial weights) is trained by surrogate-gradient
backpropagation through time (Adam, --lr) on the torch backend.

The HDF5 log (--log) records, for --log-samples test images presented after every epoch
(learning off; the monitors are paused during training), the spikes of every
population, the error, modulator and learning signals at each step and a snapshot of
every projection's weights; its `results` group holds the running training accuracy,
the test accuracy per epoch and the configuration. `neurosim plot LOG learning` draws
both. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

from neurosim.cli_args import add_training_run_flags, log_path, missing_log_file, positive_float, positive_int, training_run_error


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", default="local", choices=["local", "bptt"],
                        help="local: three-factor rules (default); bptt: surrogate gradients")
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=[500],
                        help="hidden layer sizes (default one layer of 500)")
    parser.add_argument("--per-class", type=positive_int, default=10, help="readout neurons per class")
    parser.add_argument("--k-readout", type=positive_int, default=30,
                        help="small-world synapses from each hidden neuron to the readout (default 30)")
    parser.add_argument("--recurrent-delays", type=positive_int, default=1,
                        help="longest recurrent delay in steps; above 1, per-synapse delays growing with "
                             "the distance on the hidden ring (default 1: all delay 1)")
    parser.add_argument("--lr-decay", type=positive_float, default=1.0,
                        help="learning rates are multiplied by this after every epoch (default 1: constant)")
    parser.add_argument("--steps", type=positive_int, default=20, help="time steps (ms) per image")
    parser.add_argument("--train", type=positive_int, default=60000, help="training images (default all 60,000)")
    parser.add_argument("--test", type=positive_int, default=10000, help="test images (default all 10,000)")
    parser.add_argument("--modulators", type=int, default=20, help="modulatory units (0: no gate)")
    parser.add_argument("--wta", action="store_true", help="winner-take-all teaching signal")
    parser.add_argument("--teaching", default="error", choices=["error", "clamp"],
                        help="clamp: also drive the label's readout neurons while training")
    # (--modulators, --wta, --teaching, --lr-hidden, --lr-readout: the local method only; --lr: bptt)
    parser.add_argument("--lr-hidden", type=positive_float, default=0.02, help="local rules, hidden layers")
    parser.add_argument("--lr-readout", type=positive_float, default=0.01, help="local rules, readout")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (bptt)")
    parser.add_argument("--backend", default="numba", choices=["numba", "torch"],
                        help="engine of the local method (bptt runs on torch)")
    parser.add_argument("--log-samples", type=positive_int, default=None,
                        help="test images presented with the monitors on after each epoch (default and most: --batch)")
    parser.add_argument("--seed", type=int, default=0)
    add_training_run_flags(parser, "three-factor")
    args = parser.parse_args(argv)
    if args.modulators < 0:
        parser.error(f"--modulators must be >= 0, got {args.modulators}")
    if args.log_samples is not None and args.log_samples > args.batch:
        parser.error(f"--log-samples {args.log_samples} must be at most --batch ({args.batch}): the "
                     "sampled images are presented as one batch")
    if args.k_readout > 10 * args.per_class:
        parser.error(f"--k-readout {args.k_readout} must be at most the readout's size, 10 x --per-class "
                     f"= {10 * args.per_class}")
    if args.wta and args.teaching == "clamp":
        parser.error("--wta and --teaching clamp do not mix (the teacher makes the label win)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    t_start = time.perf_counter()
    print("[starting: importing torch and neurosim]", file=sys.stderr, flush=True)
    import h5py
    import numpy as np
    import torch

    from neurosim.datasets import DatasetError, load_mnist
    from neurosim.distributed.launch import join_torchrun
    from neurosim.networks.structured_snn import StructuredRecurrentSNN

    progress = False if args.no_progress else None
    dp, args.device = join_torchrun(args.device)  # under torchrun: data-parallel
    say = print
    if dp is not None:
        if args.batch % dp.size:
            print(f"mnist_three_factor.py: error: --batch {args.batch} must be a multiple of the "
                  f"{dp.size} processes (each runs --batch / processes rows)", file=sys.stderr)
            return 2
        if missing_log_file("mnist_three_factor.py", args.log):
            return 2
        if dp.rank != 0:
            progress, say = False, (lambda *a, **k: None)

    beside_clone = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                 "..", "shared", "datasets"))
    log, model = args.log, None
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}: torch sees no CUDA device here; use --device cpu")
        log = log_path(log, "three-factor")
        x_train, y_train = load_mnist("train", args.data, also_look_in=[beside_clone])
        x_test, y_test = load_mnist("test", args.data, also_look_in=[beside_clone])
        x_train, y_train = x_train[:args.train], y_train[:args.train]
        x_test, y_test = x_test[:args.test], y_test[:args.test]
        if len(x_train) < args.batch:
            raise ValueError(f"--train {args.train} leaves fewer images than --batch {args.batch}")
        samples = min(args.log_samples or args.batch, len(x_test))
        model = StructuredRecurrentSNN(hidden=args.hidden, per_class=args.per_class, steps=args.steps,
                                       batch=args.batch, method=args.method, backend=args.backend,
                                       modulators=args.modulators, wta=args.wta, teaching=args.teaching,
                                       lr_hidden=args.lr_hidden, lr_readout=args.lr_readout, lr=args.lr,
                                       k_readout=args.k_readout, recurrent_delays=args.recurrent_delays,
                                       seed=args.seed, device=args.device,
                                       log=log, threads=args.threads, data_parallel=dp)
        net = model.net
        # what the log keeps of the sampled presentations (paused while training)
        monitors = [net.spike_monitor(p) for p in (model.input, *model.hidden, model.readout)]
        monitors += [net.weight_monitor(p, every=args.steps) for p in net.projections.values()]
        if args.method == "local":
            names = ["error"] + (["modulators"] if args.modulators else [])
            names += [f"learning{l}" if args.modulators else f"broadcast{l}" for l in range(len(args.hidden))]
            monitors += [net.modulator_monitor(n, every=1) for n in names]

        def sampled_presentation() -> None:
            for m in monitors:
                m.active = True
            try:
                model.predict(x_test[:samples], progress=False, labels=y_test[:samples])
            finally:
                for m in monitors:
                    m.active = False

        for m in monitors:
            m.active = False
        sampled_presentation()  # before learning
        running, seen, history = [], [], []
        window: list[float] = []
        trained = 0

        def note_batch(k: int, accuracy: float) -> None:
            nonlocal trained
            trained += args.batch
            window.append(accuracy)
            if len(window) == 25:  # the running training accuracy, every 25 batches
                running.append(float(np.mean(window)))
                seen.append(trained)
                window.clear()

        train_seconds = 0.0
        for epoch in range(1, args.epochs + 1):
            t0 = time.perf_counter()
            train_acc = model.train_epoch(x_train, y_train, progress,
                                          desc=f"epoch {epoch}/{args.epochs}: train ({args.method})",
                                          on_batch=note_batch)
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            accuracy = model.evaluate(x_test, y_test, progress, desc=f"epoch {epoch}/{args.epochs}: test")
            sampled_presentation()
            history.append({"epoch": epoch, "train_accuracy": train_acc, "test_accuracy": accuracy,
                            "train_seconds": seconds})
            if args.lr_decay != 1.0:
                model.decay_learning_rates(args.lr_decay)
            done = len(x_train) // args.batch * args.batch
            say(f"epoch {epoch}: train accuracy {100 * train_acc:.2f}%, test accuracy {100 * accuracy:.2f}% "
                  f"on {len(x_test)} images, trained in {seconds:.1f} s ({done / seconds:.0f} samples/s)",
                  flush=True)
    except KeyboardInterrupt:
        if model is not None:
            model.net.log.close()
        print(f"mnist_three_factor.py: interrupted; the log {log} keeps what was recorded, marked incomplete",
              file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError, DatasetError) as exc:
        if model is not None and hasattr(model.net.log, "close"):
            model.net.log.close()
        print(f"mnist_three_factor.py: error: {training_run_error(exc, log)}", file=sys.stderr)
        return 2
    net.log.close()
    if dp is not None:
        from neurosim.distributed.launch import leave_torchrun

        leave_torchrun(dp)
        if dp.rank != 0:
            return 0
    trained_samples = len(x_train) // args.batch * args.batch * args.epochs
    with h5py.File(log, "r+") as f:
        g = f.create_group("results")
        g["train_accuracy"] = np.asarray(running, dtype=np.float64)
        g["train_accuracy"].attrs["every_batches"] = 25
        g["train_samples_seen"] = np.asarray(seen, dtype=np.int64)
        g["sample_labels"] = np.asarray(y_test[:samples], dtype=np.int64)  # of the sampled presentations
        for key in ("train_accuracy", "test_accuracy", "train_seconds"):
            g[f"epochs/{key}"] = np.array([h[key] for h in history], dtype=np.float64)
        g.attrs.update({"example": "mnist_three_factor", "method": args.method, "steps": args.steps,
                        "batch": args.batch, "hidden": json.dumps(args.hidden), "per_class": args.per_class,
                        "modulators": args.modulators, "wta": args.wta, "teaching": args.teaching,
                        "k_readout": args.k_readout, "recurrent_delays": args.recurrent_delays,
                        "lr_decay": args.lr_decay, "seed": args.seed, "train_samples": trained_samples,
                        "test_samples": len(x_test),
                        "log_samples": samples, "readout": "readout", "classes": 10})
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"test_accuracy": history[-1]["test_accuracy"], "train_samples": trained_samples,
                      "seconds": round(train_seconds, 2),
                      "samples_per_second": round(trained_samples / train_seconds, 1),
                      "method": args.method, "epochs": args.epochs, "hidden": args.hidden,
                      "steps": args.steps, "batch": args.batch, "modulators": args.modulators,
                      "processes": dp.size if dp else 1,
                      "recurrent_delays": args.recurrent_delays,
                      "wta": args.wta, "teaching": args.teaching, "backend": "torch" if args.method == "bptt"
                      else args.backend, "accuracy_per_epoch": [round(h["test_accuracy"], 4) for h in history],
                      "total_seconds": round(time.perf_counter() - t_start, 1),
                      "peak_rss_mb": round(peak_rss_mb, 1), "log": log}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
