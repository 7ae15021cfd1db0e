"""Fully test-time adaptation on shifted MNIST: a neuromodulated Hebbian scheme against Tent-style entropy.

    python examples/mnist_tta.py                  # 3 seeds x 5 shifts x 5 methods, about 20 minutes
    python examples/mnist_tta.py --seeds 1 --epochs 1

A small CNN (neurosim.networks.adaptation.SourceCNN) is trained on MNIST (the first 50,000
training images), then meets each shifted copy of the 10,000 test images as an
unlabelled stream of batches of 200; it adapts online and predicts each batch. Shifts,
all made offline: rotation by 30 degrees, Gaussian noise (sigma 0.5), inversion, low
contrast (0.4 + 0.3 x) and blur (sigma 1.5 pixels). Methods (see the module
neurosim.networks.adaptation for what is the paper's and what is ours):

* ``source_only``: no adaptation;
* ``entropy_only``: Tent-style, the neuromodulator layer (per-channel gain and offset
  after conv1) takes an Adam step on the prediction's entropy per batch;
* ``hebbian_modulator``: bottom-up, the soft-Hebbian rule on conv1, its rate scaled by the
  normalised entropy of the current prediction (a neuromodulator: conv1 learns as much as
  the network is unsure), and a homeostatic rule on the modulator; then the same entropy
  step (NHL's order);
* ablations: ``soft_hebbian_entropy`` (NHL read literally: soft-Hebbian conv1 at a fixed
  rate, then the entropy step) and ``homeostatic_entropy`` (no Hebbian step).

Hyperparameters (modulator Adam lr 1e-3, Hebbian lr 0.1 and temperature 1, homeostatic
rate 1, the entropy gate on the Hebbian step) were chosen on the same shifts of training
images 50,000-55,000, never on the test set; ``--validate`` prints that comparison. The
log (HDF5, ``--log``) holds the configuration, the source training loss per epoch and
seed, the accuracy of every seed, shift and method (``weights/accuracy`` with the names
in its attributes) and the means; the last line printed is JSON.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time

from neurosim.cli_args import add_training_run_flags, log_path, positive_int, training_run_error

SHIFTS = ("rotate", "noise", "invert", "contrast", "blur")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=positive_int, default=3, help="source models (seeds --seed, --seed+1, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=positive_int, default=2, help="epochs of source training")
    parser.add_argument("--batch", type=positive_int, default=200, help="stream batch size")
    parser.add_argument("--train", type=positive_int, default=50000, help="source training images")
    parser.add_argument("--test", type=positive_int, default=10000, help="test images per stream")
    parser.add_argument("--validate", action="store_true",
                        help="instead: compare the methods on shifted training images 50,000-55,000")
    add_training_run_flags(parser, "tta")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    t_start = time.perf_counter()
    print("[starting: importing torch and neurosim]", file=sys.stderr, flush=True)
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from neurosim.datasets import DatasetError, load_mnist
    from neurosim.datasets.transforms import blur, gaussian_noise, invert, low_contrast, rotate
    from neurosim.networks.adaptation import METHODS, SourceCNN, adapt_stream, train_source
    from neurosim.recording.training_log import TrainingLog

    beside_clone = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                 "..", "shared", "datasets"))
    log, training_log = args.log, None
    methods = list(METHODS)
    try:
        if args.threads:
            torch.set_num_threads(args.threads)
        dev = torch.device(args.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"--device {args.device}: torch sees no CUDA device here; use --device cpu")
        if args.train > 50000:
            raise ValueError(f"--train {args.train}: at most 50,000 (images 50,000-55,000 validate)")
        if log is not None or not args.validate:  # (validation alone writes no log)
            log = log_path(log, "tta")
        images, labels = load_mnist("train", args.data, also_look_in=[beside_clone])
        test_images, test_labels = load_mnist("test", args.data, also_look_in=[beside_clone])

        def tensor(x):
            return (torch.as_tensor(x).float() / 255.0).unsqueeze(1)

        x_train, y_train = tensor(images[:args.train]).to(dev), torch.as_tensor(labels[:args.train]).long().to(dev)
        if args.validate:
            x_eval, y_eval = tensor(images[50000:55000]), torch.as_tensor(labels[50000:55000]).long()
        else:
            x_eval, y_eval = tensor(test_images[:args.test]), torch.as_tensor(test_labels[:args.test]).long()

        def shifted(name, seed):
            gen = torch.Generator().manual_seed(seed)
            x = {"rotate": lambda: rotate(x_eval[:, 0], 30.0).unsqueeze(1),
                 "noise": lambda: gaussian_noise(x_eval, 0.5, gen),
                 "invert": lambda: invert(x_eval), "contrast": lambda: low_contrast(x_eval),
                 "blur": lambda: blur(x_eval, 1.5)}[name]()
            return x.to(dev)

        seeds = [args.seed + k for k in range(args.seeds)]
        if not args.validate:
            attrs = {"example": "mnist_tta", "seeds": seeds, "epochs": args.epochs, "batch": args.batch,
                     "train_samples": len(x_train), "test_samples": len(x_eval), "shifts": list(SHIFTS),
                     "methods": methods, "created_at": datetime.datetime.now().isoformat(),
                     "command": " ".join([os.path.basename(sys.argv[0])] + (argv if argv is not None else sys.argv[1:]))}
            results = methods + ["seconds"]
            training_log = TrainingLog(log, attrs, ["seed", "epoch", "train_loss"],
                                       {"accuracy": ((len(seeds), len(SHIFTS), len(methods)), "f8")}, results)
        table = np.zeros((len(seeds), len(SHIFTS), len(methods)))
        bar = tqdm(total=len(seeds) * len(SHIFTS) * len(methods), unit="stream",
                   disable=args.no_progress or None)
        for s, seed in enumerate(seeds):
            torch.manual_seed(seed)
            model = SourceCNN().to(dev)
            bar.set_description(f"seed {seed}: training the source model")

            def on_epoch(epoch, loss, seed=seed):
                if training_log is not None:
                    training_log.add_epoch({"seed": seed, "epoch": epoch, "train_loss": loss})
                print(f"seed {seed}, source epoch {epoch}: loss {loss:.4f}", file=sys.stderr, flush=True)

            train_source(model, x_train, y_train, epochs=args.epochs, seed=seed, progress=on_epoch)
            for k, shift in enumerate(SHIFTS):
                x = shifted(shift, 1000 * seed + k)
                for m, method in enumerate(methods):
                    bar.set_description(f"seed {seed}: adapting to {shift} ({method})")
                    table[s, k, m] = adapt_stream(model, x, y_eval.to(dev), method, batch=args.batch)
                    bar.update(1)
        bar.close()
        seconds = time.perf_counter() - t_start
        means = {method: float(table[:, :, m].mean()) for m, method in enumerate(methods)}
        if training_log is not None:
            training_log.finish({"accuracy": table}, {**means, "seconds": seconds})
    except KeyboardInterrupt:
        if training_log is not None:
            training_log.close()
        print(f"mnist_tta.py: interrupted; the log {log} keeps the finished epochs, marked incomplete",
              file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError, DatasetError) as exc:
        if training_log is not None:
            training_log.close()
        print(f"mnist_tta.py: error: {training_run_error(exc, log)}", file=sys.stderr)
        return 2
    split = "validation (training images 50,000-55,000)" if args.validate else "test"
    print(f"accuracy % on the shifted {split} streams, mean over {len(seeds)} seed(s)", file=sys.stderr)
    print("| shift | " + " | ".join(methods) + " |", file=sys.stderr)
    print("|---" * (len(methods) + 1) + "|", file=sys.stderr)
    for k, shift in enumerate(SHIFTS):
        print(f"| {shift} | " + " | ".join(f"{100 * table[:, k, m].mean():.2f}" for m in range(len(methods)))
              + " |", file=sys.stderr)
    print("| mean | " + " | ".join(f"{100 * means[m]:.2f}" for m in methods) + " |", file=sys.stderr)
    out = {k: round(v, 4) for k, v in means.items()}
    out["per_shift"] = {shift: {m: round(float(table[:, k, j].mean()), 4) for j, m in enumerate(methods)}
                        for k, shift in enumerate(SHIFTS)}
    out.update({"seeds": seeds, "epochs": args.epochs, "split": "validation" if args.validate else "test",
                "seconds": round(seconds, 1), "log": log})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
