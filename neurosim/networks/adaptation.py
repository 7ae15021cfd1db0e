"""Fully test-time adaptation: a source CNN adapts to a shifted stream without labels.

The NHL scheme (Tang et al., CVPR 2023, "Neuro-Modulated Hebbian Learning for Fully
Test-Time Adaptation"; shared/research/algorithms.md section 2): for each unlabelled
batch of the target stream,

1. bottom-up, local and unsupervised: the first convolution learns by the soft-Hebbian
   competitive rule (:func:`neurosim.rules.soft_hebbian.conv_soft_hebbian_delta`), and a
   neuromodulator layer after it (a per-channel gain and offset, :class:`ChannelModulator`:
   the neuromodulated gate of :mod:`neurosim.gating`, per channel) moves by a homeostatic
   rule towards the gain and offset that give each channel, on this batch, the mean and
   spread of its activity on the source data (each channel sees only its own activity);
2. top-down: the modulator takes one gradient step on the prediction's entropy (Tent's
   objective, Wang et al. 2021), the rest of the network locked;
3. the batch is predicted with the updated network.

In ``hebbian_modulator`` the Hebbian step is itself neuromodulated: its learning rate is
scaled by the normalised entropy ``H(p) / log C`` of the network's current prediction on
the batch (:func:`plasticity_gate`), a scalar signal of uncertainty, so conv1 learns in
proportion to how unsure the network is of the stream, and less on a stream it already
reads well (on blurred digits, read at 96-97%, the gate starts near 0.2).

Which parts are whose: the order (Hebbian step, then the entropy step on the modulator,
then the prediction), the soft-Hebbian bottom-up part on the first convolution and the
entropy-trained modulator are the paper's (from its abstract and Figure 2). Ours: the
modulator's form (a per-channel affine map after conv1) and its homeostatic drive, the
entropy gate on the Hebbian step, the soft-Hebbian form (SoftHebb's plain rule, each
kernel's norm kept after a step so the locked layers above see inputs of the scale they
were trained on), the hyperparameters and the network. We added the homeostatic drive
because the literal reading (soft-Hebbian conv1 plus the entropy step,
``soft_hebbian_entropy``, ungated) did no better than entropy alone on our validation
shifts (examples/mnist_tta.py reports both), and the gate because without it the scheme
fell below the source model on one validation shift (inversion) of five. Baselines: the
source model unchanged, and entropy-only (the same modulator step, nothing bottom-up).
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.rules.soft_hebbian import conv_soft_hebbian_delta

#: what adapts in each method (see the module docstring): the Hebbian step on conv1
#: (None, "plain" or "gated" by the prediction's entropy), then the homeostatic drive and
#: the entropy step on the modulator
METHODS = {"source_only": (None, False, False), "entropy_only": (None, False, True),
           "soft_hebbian_entropy": ("plain", False, True), "homeostatic_entropy": (None, True, True),
           "hebbian_modulator": ("gated", True, True)}


class ChannelModulator(nn.Module):
    """``gain_c * x + offset_c`` per channel: a neuromodulator layer (starts as identity).

    ``source_mean``, ``source_std``: each channel's input statistics on the source data
    (:meth:`record_source`), the set point of :meth:`homeostatic_step`.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(channels))
        self.offset = nn.Parameter(torch.zeros(channels))
        self.register_buffer("source_mean", torch.zeros(channels))
        self.register_buffer("source_std", torch.ones(channels))

    def record_source(self, x: torch.Tensor) -> None:
        """Keep the per-channel mean and standard deviation of input ``x`` ``(N, C, H, W)``."""
        with torch.no_grad():
            self.source_mean.copy_(x.mean((0, 2, 3)))
            self.source_std.copy_(x.std((0, 2, 3)).clamp_min(1e-6))

    def homeostatic_step(self, x: torch.Tensor, rate: float) -> None:
        """Move the gain and offset by ``rate`` (0..1) towards those that map this batch's
        per-channel mean and spread of ``x`` onto the source's (a local rule: each channel
        reads only its own activity)."""
        with torch.no_grad():
            mean, std = x.mean((0, 2, 3)), x.std((0, 2, 3)).clamp_min(1e-6)
            gain = self.source_std / std
            self.gain.mul_(1.0 - rate).add_(rate * gain)
            self.offset.mul_(1.0 - rate).add_(rate * (self.source_mean - gain * mean))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain.view(1, -1, 1, 1) + self.offset.view(1, -1, 1, 1)


class SourceCNN(nn.Module):
    """conv 5x5 (16) -> modulator -> ReLU -> max-pool -> conv 5x5 (32) -> ReLU -> max-pool
    -> linear (10), for 28x28 single-channel images in [0, 1]."""

    def __init__(self, channels: tuple[int, int] = (16, 32), classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels[0], 5, padding=2)
        self.modulator = ChannelModulator(channels[0])
        self.conv2 = nn.Conv2d(channels[0], channels[1], 5, padding=2)
        self.fc = nn.Linear(channels[1] * 7 * 7, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.modulator(self.conv1(x))), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return self.fc(h.flatten(1))


def train_source(model: SourceCNN, images: torch.Tensor, labels: torch.Tensor, *, epochs: int,
                 batch: int = 128, lr: float = 1e-3, seed: int = 0,
                 progress: Callable[[int, float], None] | None = None) -> None:
    """Supervised training on the source domain (Adam, cross-entropy)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(images), generator=gen)
        total = 0.0
        for lo in range(0, len(order), batch):
            idx = order[lo:lo + batch]
            loss = F.cross_entropy(model(images[idx]), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if progress is not None:
            progress(epoch, total / len(images))
    model.eval()
    with torch.no_grad():  # the modulator's set point: conv1's statistics on (some) source data
        model.modulator.record_source(model.conv1(images[:5000]))


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of the softmax predictions."""
    p = F.softmax(logits, dim=1)
    return -(p * F.log_softmax(logits, dim=1)).sum(1).mean()


def hebbian_step(conv: nn.Conv2d, images: torch.Tensor, lr: float, temperature: float) -> None:
    """One soft-Hebbian step on ``conv``'s kernels from a batch, each kernel's norm kept."""
    with torch.no_grad():
        w = conv.weight
        norms = w.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        unit = w / norms  # the rule's prototypes are unit vectors (its Oja-like decay)
        x = conv.padding if isinstance(conv.padding, tuple) else (conv.padding,)
        delta = conv_soft_hebbian_delta(images, unit, temperature, padding=x[0])
        n_patches = images.shape[0] * images.shape[2] * images.shape[3]
        unit = unit + lr * delta / n_patches  # a mean over patches: lr independent of batch size
        w.copy_(unit / unit.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * norms)


def plasticity_gate(model: nn.Module, images: torch.Tensor) -> float:
    """The normalised entropy ``H(p) / log C`` (0..1) of ``model``'s predictions on
    ``images``: the neuromodulator that scales the Hebbian step (high where the network is
    unsure of the stream). ``model`` is in eval mode (as in :func:`adapt_stream`)."""
    with torch.no_grad():
        logits = model(images)
    return float(entropy(logits)) / math.log(logits.shape[1])


def adapt_stream(source: SourceCNN, images: torch.Tensor, labels: torch.Tensor, method: str, *,
                 batch: int = 200, modulator_lr: float = 1e-3, hebbian_lr: float = 0.1,
                 temperature: float = 1.0, homeostatic_rate: float = 1.0) -> float:
    """Accuracy of ``method`` (one of :data:`METHODS`) on the stream ``images`` (in order,
    ``batch`` at a time): each batch adapts a copy of ``source`` (without labels), then is
    predicted; the adaptation carries on from batch to batch (online, no reset). Defaults:
    chosen on shifted images of MNIST's training split (examples/mnist_tta.py)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    hebbian, homeostatic, top_down = METHODS[method]
    model = copy.deepcopy(source)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    opt = None
    if top_down:
        for p in model.modulator.parameters():
            p.requires_grad_(True)
        opt = torch.optim.Adam(model.modulator.parameters(), lr=modulator_lr)
    correct = 0
    for lo in range(0, len(images), batch):
        x = images[lo:lo + batch]
        if hebbian is not None:  # bottom-up: the first layer's kernels, then its channels' set points
            gate = plasticity_gate(model, x) if hebbian == "gated" else 1.0
            hebbian_step(model.conv1, x, hebbian_lr * gate, temperature)
        if homeostatic:
            with torch.no_grad():
                model.modulator.homeostatic_step(model.conv1(x), homeostatic_rate)
        if opt is not None:  # top-down: the modulator descends the prediction's entropy
            loss = entropy(model(x))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            correct += int((model(x).argmax(1) == labels[lo:lo + batch]).sum())
    return correct / len(images)
