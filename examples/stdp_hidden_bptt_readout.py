"""A local rule and gradients in one run: the hidden layer learns by STDP while the
readout learns by BPTT.

    python examples/stdp_hidden_bptt_readout.py                 # 2,560 images, 1 epoch, 40 s
    python examples/stdp_hidden_bptt_readout.py --hidden 400 --train 20000

The network is the rate-coded classifier of examples/mnist_bptt.py (784 -> hidden ->
10 SnnTorchLeaky neurons, delay-0 projections). Its input -> hidden weights are not
optimised: an STDP rule (pair-based, all-to-all, bounds [-1, 1]) changes them at every
step of every unrolled batch, in place, while the same steps build the graph through
which Adam trains the hidden -> output weights and biases. To show what the rule adds,
the same run is made twice from the same seed: once with STDP learning and once with
the rule frozen (the readout then learns on the fixed random hidden layer). The test
accuracy of each arm is printed; the last line is one JSON object.

What it shows is the mechanics, not a good unsupervised learner: plain pair STDP with
no competition between hidden neurons (no lateral inhibition, no homeostasis) makes
their inputs alike, and the readout does worse on them than on the frozen random
layer (with the defaults, on a 2-core CPU: 45.1% against 71.7% on 1,000 test images).
Diehl & Cook's network (examples/mnist_stdp.py) adds the competition STDP needs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from neurosim.cli_args import positive_int


def run_arm(stdp_on: bool, args, data) -> dict:
    import torch

    from neurosim import rules
    from neurosim.networks.rate_classifier import RateClassifier

    x_train, y_train, x_test, y_test = data
    clf = RateClassifier(hidden=args.hidden, steps=args.steps, batch=args.batch, seed=args.seed)
    hidden_in, readout = clf.projections
    hidden_in.parameter.requires_grad_(False)  # learned by the rule, not by gradient
    # nn.Linear's initial weights barely drive the hidden layer without training: scale them
    hidden_in.set_weights(hidden_in.weight * args.init_scale)
    stdp = clf.net.add_rule(hidden_in, rules.STDP(a_plus=args.a_plus, a_minus=1.05 * args.a_plus,
                                                  tau_plus=20.0, tau_minus=20.0, w_min=-1.0, w_max=1.0,
                                                  learning=stdp_on))
    optimizer = torch.optim.Adam([p for p in clf.parameters() if p.requires_grad], lr=args.lr)
    before = hidden_in.weight_matrix()
    t0 = time.perf_counter()
    arm = "STDP hidden" if stdp_on else "frozen hidden"
    for epoch in range(args.epochs):
        clf.train_epoch(x_train, y_train, optimizer, "bptt", None if not args.no_progress else False,
                        desc=f"{arm}: epoch {epoch + 1}/{args.epochs}")
    seconds = time.perf_counter() - t0
    stdp.learning = False  # the test does not learn
    accuracy = clf.evaluate(x_test, y_test, None if not args.no_progress else False, desc=f"{arm}: test")
    changed = float(abs(hidden_in.weight_matrix() - before).mean())
    return {"arm": arm, "test_accuracy": accuracy, "seconds": round(seconds, 1),
            "mean_abs_hidden_weight_change": changed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=positive_int, default=200)
    parser.add_argument("--steps", type=positive_int, default=25)
    parser.add_argument("--batch", type=positive_int, default=128)
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--train", type=positive_int, default=2560, help="training images (default 2,560)")
    parser.add_argument("--test", type=positive_int, default=1000, help="test images (default 1,000)")
    parser.add_argument("--a-plus", type=float, default=1e-6,
                        help="STDP potentiation per pair (summed over the batch; default 1e-6)")
    parser.add_argument("--init-scale", type=float, default=3.0,
                        help="factor on the initial input -> hidden weights (default 3)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam learning rate of the readout (default 5e-3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive_int, default=None)
    parser.add_argument("--data", default=None, metavar="DIR", help="folder with the MNIST IDX files")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    import numpy as np
    import torch

    from neurosim.datasets import DatasetError, DatasetNotFoundError, load_mnist

    beside_clone = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                 "..", "shared", "datasets"))
    try:
        if not (args.lr > 0 and args.a_plus >= 0 and np.isfinite(args.init_scale)):
            raise ValueError("--lr must be positive, --a-plus non-negative and --init-scale finite")
        if args.threads:
            torch.set_num_threads(args.threads)
        x_train, y_train = load_mnist("train", args.data, also_look_in=[beside_clone])
        x_test, y_test = load_mnist("test", args.data, also_look_in=[beside_clone])
        data = (x_train[:args.train], y_train[:args.train], x_test[:args.test], y_test[:args.test])
        if len(data[0]) < args.batch:
            raise ValueError(f"--train must be at least --batch ({args.batch})")
        results = [run_arm(True, args, data), run_arm(False, args, data)]
    except DatasetNotFoundError as exc:
        print(f"stdp_hidden_bptt_readout.py: error: MNIST not found; looked in "
              f"{', '.join(exc.searched)}. Pass --data DIR or set NEUROSIM_DATA=DIR", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError, RuntimeError, DatasetError) as exc:
        print(f"stdp_hidden_bptt_readout.py: error: {exc}", file=sys.stderr)
        return 2
    for r in results:
        print(f"{r['arm']}: test accuracy {100 * r['test_accuracy']:.2f}% on {len(data[2])} images "
              f"(readout trained by BPTT in {r['seconds']} s; mean |change| of hidden weights "
              f"{r['mean_abs_hidden_weight_change']:.2e})")
    print(json.dumps({"hidden": args.hidden, "train_samples": len(data[0]), "epochs": args.epochs,
                      "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
