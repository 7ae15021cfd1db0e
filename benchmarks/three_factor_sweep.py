"""Train StructuredRecurrentSNN once per configuration and print one JSON line each.

    python benchmarks/three_factor_sweep.py '{"ntrain": 20000, "ntest": 2000}' '{"ntrain": 20000, "ntest": 2000, "lr_hidden": 1e-6}'

Each argument is a JSON object: ``ntrain`` / ``ntest`` (the first images of MNIST's
training and test sets; default 5,000 and 1,000) and any keyword of
``StructuredRecurrentSNN`` (e.g. ``k_readout``, ``modulators``, ``lr_hidden``, ``steps``).
One epoch over the ``ntrain`` images, then the test accuracy on the ``ntest`` images;
the line gives the training accuracy seen during the pass, the test accuracy, and the
training time. This is how the ablations in the README were made.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    from neurosim.datasets import load_mnist
    from neurosim.networks.structured_snn import StructuredRecurrentSNN

    x, y = load_mnist("train")
    xt, yt = load_mnist("test")
    for text in argv:
        try:
            kw = json.loads(text)
        except json.JSONDecodeError as exc:
            print(f"three_factor_sweep.py: error: not a JSON object: {text!r} ({exc})", file=sys.stderr)
            return 2
        ntrain, ntest = int(kw.pop("ntrain", 5000)), int(kw.pop("ntest", 1000))
        try:
            model = StructuredRecurrentSNN(**kw)
        except (TypeError, ValueError) as exc:
            print(f"three_factor_sweep.py: error: {text}: {exc}", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        train_acc = model.train_epoch(x[:ntrain], y[:ntrain], progress=False)
        t1 = time.perf_counter()
        test = model.evaluate(xt[:ntest], yt[:ntest], progress=False)
        print(json.dumps({**kw, "ntrain": ntrain, "ntest": ntest, "train_acc": round(train_acc, 4),
                          "test": test, "train_s": round(t1 - t0, 1),
                          "samples_per_second": round(ntrain / (t1 - t0), 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
