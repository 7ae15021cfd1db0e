"""Data-parallel counter-current learning for the tests: a small CCLNet MLP on synthetic
data, one epoch in batches of --batch, alone or under torchrun (each process its share
of every batch, gradients summed). Process 0 writes the trained weights to --out."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
from common import finish, join

from neurosim.networks.ccl import CCLNet
from neurosim.networks.ccl_training import Split, Trainer, fit


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    dp = join()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (75,), generator=gen)  # 75: the last batch is partial (11)
    x = torch.randn(4, 32, generator=gen)[labels] + 0.5 * torch.randn(75, 32, generator=gen)
    model = CCLNet.mlp((32, 24, 24, 4), seed=1)
    trainer = Trainer(model, lr=0.5, clip=1.0, data_parallel=dp)
    result = fit(model, trainer, Split(x[:64], labels[:64]), Split(x[64:], labels[64:]), epochs=2,
                 batch=args.batch, seed=3, progress=False, data_parallel=dp)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return finish(dp, args.out, train_loss=np.array([h["train_loss"] for h in result.history]), **state)


if __name__ == "__main__":
    sys.exit(main())
