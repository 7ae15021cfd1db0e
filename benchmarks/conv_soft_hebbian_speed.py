"""Speed of the soft-Hebbian rule on a convolution: the engine (numba, torch) against the
torch function over unfolded patches, in one run.

    python benchmarks/conv_soft_hebbian_speed.py              # batch 32, 1 thread
    python benchmarks/conv_soft_hebbian_speed.py --batch 8 --steps 50

The network: 28 x 28 graded inputs, a ``Convolution`` of 16 kernels 5 x 5 with padding 2
(287,296 tied synapses) onto 16 x 28 x 28 graded units, their channels competing at
each position, and ``SoftHebbian`` on the kernels. One engine step is the delivery, the
competition and the rule. The reference is what ``examples/mnist_tta.py`` does per
batch: ``conv2d`` and ``conv_soft_hebbian_delta`` (unfold and matrix products). The
engine evaluates the rule per synapse and sample (a generic recipe); the function uses
that the rule is linear in the inputs. Say the machine and its load when quoting.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def engine_step_seconds(backend: str, images: torch.Tensor, kernels: torch.Tensor, steps: int) -> float:
    import neurosim as ns
    from neurosim.rules import SoftHebbian

    batch = images.shape[0]
    net = ns.Network(backend=backend, batch=batch, dt=1.0, seed=0, threads=1)
    conv = ns.Convolution((1, 28, 28), 16, 5, padding=2)
    x = net.population(784, ns.GradedInput(), name="x")
    u = net.population(16 * 784, ns.Graded("identity"), name="u")
    proj = net.projection(x, u, conv, weight=kernels.numpy(), receptor="in", delay=0)
    net.modulators.add_soft_competition("y", u, temperature=1.0, channels=16)
    net.add_rule(proj, SoftHebbian(competition="y", lr=1e-4))
    x.inputs["i_ext"].copy_(images.reshape(batch, -1))
    net.run(steps=2, progress=False)  # compile (cached on disk) and warm up
    t0 = time.perf_counter()
    net.run(steps=steps, progress=False)
    return (time.perf_counter() - t0) / steps


def function_step_seconds(images: torch.Tensor, kernels: torch.Tensor, steps: int) -> float:
    from neurosim.rules.soft_hebbian import conv_soft_hebbian_delta

    w = kernels.clone()
    t0 = time.perf_counter()
    for _ in range(steps):
        torch.nn.functional.conv2d(images, w, padding=2)
        w = w + 1e-4 * conv_soft_hebbian_delta(images, w, 1.0, padding=2)
    return (time.perf_counter() - t0) / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    if args.batch < 1 or args.steps < 1:
        parser.error("--batch and --steps must be positive")
    torch.set_num_threads(1)
    images = torch.rand(args.batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    kernels = torch.randn(16, 1, 5, 5, generator=torch.Generator().manual_seed(1)) * 0.2
    rows = [("neurosim, numba", engine_step_seconds("numba", images, kernels, args.steps)),
            ("neurosim, torch", engine_step_seconds("torch", images, kernels, args.steps)),
            ("torch function (conv2d + conv_soft_hebbian_delta)", function_step_seconds(images, kernels, args.steps))]
    print(f"| form (batch {args.batch}, 1 thread) | ms per step |")
    print("|---|---|")
    for label, seconds in rows:
        print(f"| {label} | {seconds * 1e3:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
