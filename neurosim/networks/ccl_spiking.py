"""Counter-current learning on spiking layers: rate-coded leaky neurons, local losses on rates.

The dual-network scheme of :mod:`neurosim.networks.ccl` with every layer a population of
:class:`~neurosim.SnnTorchLeaky` neurons (decay ``beta``, threshold 1, reset by
subtraction) and every weight matrix a delay-0 trainable projection with
``stop_gradient=True``, run for ``steps`` steps by :meth:`neurosim.Network.unroll`:

* forward network (batch N): the image as Bernoulli spikes (probability = intensity
  each step) -> hidden layers -> C output neurons;
* feedback network (batch C): the C class units, each firing every step for its own
  class -> hidden layers -> ``n_in`` bottom neurons.

A layer's activity is its firing rate over the steps (the input's: its spike rate),
and the pair ``(a_l, b_l)`` is matched by the code's local loss
(:func:`~neurosim.networks.ccl_losses.code_loss`); the class scores are the output
neurons' mean membrane potential, trained by cross-entropy. The gradient of a rate
reaches the layer's weights through the spikes' surrogate derivative and the
membrane's dynamics over the steps; ``stop_gradient`` keeps it from reaching earlier
layers, so every loss trains only its own forward and feedback matrix, as in CCL.
Initial weights are ``nn.Linear``'s (no bias) drawn from ``seed``.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from neurosim.models.poisson import PoissonSource
from neurosim.models.snntorch_leaky import SnnTorchLeaky
from neurosim.network import Network
from neurosim.networks.ccl import seeded
from neurosim.networks.ccl_losses import class_match, code_loss


class SpikingCCL(nn.Module):
    """Both spiking networks; a model for :class:`~neurosim.networks.ccl_training.Trainer`.

    Args:
        sizes: layer widths, input to classes.
        steps: time steps per sample.
        batch: samples per step of the optimiser (the forward network's batch).
        beta: membrane decay per step.
        kappa: weight of the local losses.
        seed: initial weights and input spikes.
        surrogate: spike derivative of every layer (default atan; see :mod:`neurosim.surrogate`).
    """

    def __init__(self, sizes: Sequence[int] = (784, 256, 256, 10), *, steps: int = 16, batch: int = 128,
                 beta: float = 0.9, kappa: float = 0.5, seed: int = 0, surrogate: Any = None,
                 device: str = "cpu") -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"SpikingCCL: sizes must be >= 2 positive widths, got {sizes}")
        if steps < 1 or batch < 1:
            raise ValueError(f"SpikingCCL: steps and batch must be >= 1, got {steps} and {batch}")
        self.sizes, self.steps, self.batch, self.classes = sizes, int(steps), int(batch), sizes[-1]
        self.kappa, self.seed = float(kappa), seed
        L = len(sizes) - 1
        leaky = dict(beta=beta, threshold=1.0, subtract=1.0)
        kw = dict(dt=1.0, seed=seed, backend="torch", device=device)
        self.forward_net = fwd = Network(batch=self.batch, **kw)
        self.feedback_net = fb = Network(batch=self.classes, **kw)
        self.f = [fwd.population(sizes[0], PoissonSource(rate=0.0), name="f0")]
        self.f += [fwd.population(n, SnnTorchLeaky(**leaky), name=f"f{l}", surrogate=surrogate)
                   for l, n in enumerate(sizes[1:], start=1)]
        self.b = [fb.population(n, SnnTorchLeaky(**leaky), name=f"b{l}", surrogate=surrogate)
                  for l, n in enumerate(sizes[:-1])]
        self.b.append(fb.population(self.classes, PoissonSource(rate=0.0), name=f"b{L}"))
        with seeded(seed):
            layers = [(nn.Linear(a, b, bias=False), nn.Linear(b, a, bias=False))
                      for a, b in zip(sizes[:-1], sizes[1:])]
        self.weights = nn.ParameterDict()
        for l, (up, down) in enumerate(layers, start=1):
            u = fwd.projection(self.f[l - 1], self.f[l], weight=up.weight.detach().T.numpy(), receptor="syn",
                               delay=0, sparse=False, trainable=True, stop_gradient=True, name=f"U{l}")
            v = fb.projection(self.b[l], self.b[l - 1], weight=down.weight.detach().T.numpy(), receptor="syn",
                              delay=0, sparse=False, trainable=True, stop_gradient=True, name=f"V{l}")
            self.weights[f"U{l}"], self.weights[f"V{l}"] = u.parameter, v.parameter
        self._gen = torch.Generator(device=fwd.device).manual_seed(seed)
        # the feedback input: class c's unit fires at every step in row c
        self._one_hots = torch.eye(self.classes, device=fwd.device).expand(self.steps, -1, -1)

    # -- the two unrolled runs ----------------------------------------------------------
    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"SpikingCCL: inputs must be (N, {self.sizes[0]}) intensities, got "
                             f"{tuple(x.shape)}")
        if len(x) > self.batch:
            raise ValueError(f"SpikingCCL: a batch of {len(x)} samples; the network holds {self.batch}")
        p = torch.zeros(self.batch, self.sizes[0], device=self.forward_net.device)
        p[:len(x)] = x.clamp(0, 1).to(p.device)
        return torch.bernoulli(p.expand(self.steps, -1, -1), generator=self._gen)

    def _forward_rates(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        spikes = self._encode(x)
        self.forward_net.reset_state()
        record: dict[Any, Any] = {p: "spikes" for p in self.f[1:-1]}
        record[self.f[-1]] = ["spikes", "mem"]
        out = self.forward_net.unroll(self.steps, spikes={"f0": spikes}, record=record)
        n = len(x)
        rates = [spikes.mean(0)[:n]] + [out[p.name]["spikes"].mean(0)[:n] for p in self.f[1:]]
        return rates, out[self.f[-1].name]["mem"].mean(0)[:n]

    def _feedback_rates(self) -> list[torch.Tensor]:
        self.feedback_net.reset_state()
        out = self.feedback_net.unroll(self.steps, spikes={self.b[-1].name: self._one_hots},
                                       record={p: "spikes" for p in self.b[:-1]})
        return [out[p.name]["spikes"].mean(0) for p in self.b[:-1]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (mean output membrane) of any number of samples."""
        out = []
        with torch.no_grad():
            for lo in range(0, len(x), self.batch):
                out.append(self._forward_rates(x[lo:lo + self.batch])[1])
        return torch.cat(out)

    def training_loss(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of the local losses of every pair and the cross-entropy of the scores."""
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.classes):
            raise ValueError(f"SpikingCCL: labels must lie in 0..{self.classes - 1}, got values from "
                             f"{int(labels.min())} to {int(labels.max())}")
        a, scores = self._forward_rates(x)
        b = self._feedback_rates()
        match = class_match(labels, self.classes, scores.dtype)
        local = [code_loss(al, bl, match, self.kappa) for al, bl in zip(a[:-1], b)]
        return sum(local) + F.cross_entropy(scores, labels), scores

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        L = len(self.sizes) - 1
        return {"forward": [self.weights[f"U{l}"] for l in range(1, L + 1)],
                "feedback": [self.weights[f"V{l}"] for l in range(1, L + 1)]}
