"""Data-parallel three-factor learning for the tests: a small StructuredRecurrentSNN
(e-prop rules at the end of each sample, per-sample error and gate signals) on synthetic
images, alone (batch --batch) or under torchrun (--batch / N rows per process). Process 0
writes the trained weights, the predictions and the logged error signal to --out."""

from __future__ import annotations

import argparse
import sys

import numpy as np
from common import finish, join

from neurosim.networks.structured_snn import StructuredRecurrentSNN


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", required=True)
    parser.add_argument("--method", default="local")
    args = parser.parse_args()
    dp = join()
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 40)
    prototypes = rng.random((4, 64))
    images = np.clip(prototypes[labels] + 0.2 * rng.standard_normal((40, 64)), 0, 1)
    model = StructuredRecurrentSNN(n_in=64, hidden=[40], classes=4, per_class=5, k_readout=10,
                                   steps=10, batch=args.batch, modulators=6, seed=2, data_parallel=dp,
                                   method=args.method)
    local = args.method == "local"
    if local:  # (BPTT has no error signal)
        mon = model.net.modulator_monitor("error", every=1)
        mon.active = False
    model.train_epoch(images[:32], labels[:32], progress=False)
    if local:
        mon.active = True
    predictions = model.predict(images[32:], progress=False, labels=labels[32:])
    error = (model.net.reader().array("modulators/error/value") if local and (dp is None or dp.rank == 0)
             else np.zeros((0, 8)))
    return finish(dp, args.out, predictions=predictions, error=error,
                  **{name: proj.weight_matrix() for name, proj in model.net.projections.items()})


if __name__ == "__main__":
    sys.exit(main())
