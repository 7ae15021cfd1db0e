"""CCL's baselines on the same MLP: backpropagation, feedback alignment, direct feedback alignment.

* ``"bp"``: the gradient of the cross-entropy through every layer.
* ``"fa"`` (Lillicrap et al., Nat. Commun. 2016): as backprop, but the error goes
  down through a fixed random matrix ``B_l`` (the shape of ``U_l``) instead of
  ``U_l``'s transpose.
* ``"dfa"`` (Nøkland, NeurIPS 2016): the output error ``e = softmax(a_L) - onehot(y)``
  (the cross-entropy's gradient at the logits) reaches every hidden layer directly,
  through a fixed random ``D_l`` (C x d_l): layer ``l``'s activity gets the gradient
  ``e D_l``; each layer's input is detached, so nothing else reaches it.

Forward weights start as ``nn.Linear``'s default; the fixed feedback matrices are
drawn uniform in ``+-1/sqrt(fan)`` from the same seed. The network has the CCL MLP's
shape (784-256x5-10, ELU, no bias) unless told otherwise.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.networks.ccl import seeded
from neurosim.networks.ccl_layers import activation

METHODS = ("bp", "fa", "dfa")


class _FeedbackAlignedLinear(torch.autograd.Function):
    """``y = x W^T``, whose input gradient goes through the fixed ``B`` instead of ``W``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, feedback)
        return x @ weight.T

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        x, feedback = ctx.saved_tensors
        return grad @ feedback, grad.T @ x, None


class AlignmentMLP(nn.Module):
    """An MLP trained by ``method`` (one of :data:`METHODS`).

    Args:
        sizes: layer widths, input to classes.
        method: ``"bp"``, ``"fa"`` or ``"dfa"``.
        activation_name: hidden activation (ELU, as CCL's MLP).
        seed: initial weights and the fixed feedback matrices.
    """

    def __init__(self, sizes: Sequence[int] = (784, 256, 256, 256, 256, 256, 10), method: str = "bp", *,
                 activation_name: str = "elu", seed: int | None = None) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"AlignmentMLP: method must be one of {METHODS}, got {method!r}")
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"AlignmentMLP: sizes must be >= 2 positive widths, got {sizes}")
        self.method, self.sizes, self.classes = method, sizes, sizes[-1]
        self.activation_name = activation_name
        self.phi = activation(activation_name)
        with seeded(seed):
            self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:]))
            if method == "fa":
                for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
                    bound = 1.0 / math.sqrt(a)
                    self.register_buffer(f"feedback{l}", torch.empty(b, a).uniform_(-bound, bound))
            if method == "dfa":
                bound = 1.0 / math.sqrt(self.classes)
                for l, b in enumerate(sizes[1:-1]):
                    self.register_buffer(f"feedback{l}", torch.empty(self.classes, b).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (the same forward pass for every method)."""
        x = x.reshape(x.shape[0], -1)
        for l, layer in enumerate(self.layers):
            x = layer(x)
            if l < len(self.layers) - 1:
                x = self.phi(x)
        return x

    def training_loss(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A loss whose ``backward`` leaves the method's weight changes in ``.grad``."""
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.classes):
            raise ValueError(f"AlignmentMLP: labels must lie in 0..{self.classes - 1}, got values "
                             f"from {int(labels.min())} to {int(labels.max())}")
        x = x.reshape(x.shape[0], -1)
        if self.method == "bp":
            logits = self.forward(x)
            return F.cross_entropy(logits, labels), logits
        if self.method == "fa":
            for l, layer in enumerate(self.layers):
                x = _FeedbackAlignedLinear.apply(x, layer.weight, getattr(self, f"feedback{l}"))
                if l < len(self.layers) - 1:
                    x = self.phi(x)
            return F.cross_entropy(x, labels), x
        hidden = []
        for layer in self.layers[:-1]:
            x = self.phi(layer(x.detach()))
            hidden.append(x)
        logits = self.layers[-1](x.detach())
        loss = F.cross_entropy(logits, labels)
        with torch.no_grad():  # the gradient of the mean cross-entropy at the logits
            error = (F.softmax(logits, dim=1) - F.one_hot(labels, self.classes).to(logits.dtype)) / len(labels)
        # sum(h * g) has gradient g at h: each hidden layer gets e D_l and nothing else
        injected = sum((h * (error @ getattr(self, f"feedback{l}"))).sum() for l, h in enumerate(hidden))
        return loss + injected - injected.detach(), logits

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"forward": list(self.layers.parameters())}
