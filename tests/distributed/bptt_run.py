"""Data-parallel gradient training for the tests: a small RateClassifier trained by BPTT
on synthetic images, alone (batch --batch) or under torchrun (each process --batch / N
rows of every batch, gradients summed). Process 0 writes the trained weights and the
predictions to ``--out`` (npz)."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from common import finish, join

from neurosim.networks.rate_classifier import RateClassifier


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--method", default="bptt")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    dp = join()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 48)
    prototypes = rng.random((4, 64))
    images = np.clip(prototypes[labels] + 0.3 * rng.standard_normal((48, 64)), 0, 1)
    clf = RateClassifier(n_in=64, hidden=32, classes=4, steps=8, batch=args.batch, seed=3,
                         data_parallel=dp)
    optimizer = torch.optim.Adam(clf.parameters(), lr=5e-3)
    loss = clf.train_epoch(images[:40], labels[:40], optimizer, args.method, progress=False)
    predictions = clf.predict(images[40:], progress=False)
    return finish(dp, args.out, loss=loss, predictions=predictions,
                  **{name: proj.weight_matrix() for name, proj in clf.net.projections.items()})


if __name__ == "__main__":
    sys.exit(main())
