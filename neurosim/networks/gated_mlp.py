"""An MLP on the engine with gated hidden populations: TauGate's modes, and a LoRA reference.

:class:`GatedMLP` builds one :class:`~neurosim.Network` (torch backend, a batch of
samples): an input population (:class:`~neurosim.GradedInput`, the image as values),
hidden populations with ``gated=True``, and an identity readout, joined by trainable
delay-0 projections without biases. Two neuron kinds:

* graded (default): ReLU units; one step computes the whole forward pass;
* spiking (``spiking=True``): :class:`~neurosim.SnnTorchLeaky` hidden layers driven by the
  image as a constant input for ``steps`` steps (direct encoding); the readout is the
  identity population's mean over the steps (a non-spiking integrator, as snnTorch
  tutorials read out membrane potential).

Forward passes are :meth:`~neurosim.Network.unroll` calls, so pretraining the weights
and training the gates are ordinary torch optimisation of ``net.parameters()``. With
``lora_rank`` each hidden layer also gets a low-rank adapter: a small identity
population of ``rank`` units between the layer's input and the layer, with trainable
``A`` (``d_in x rank``) and ``B`` (``rank x d_out``, starting at zero), so the layer
receives ``x W + (x A) B``, LoRA's form (Hu et al. 2021), on the engine as well.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from neurosim.models.graded import Graded, GradedInput
from neurosim.models.snntorch_leaky import SnnTorchLeaky
from neurosim.network import Network

#: the mode that leaves a frozen graded network as it was: gain 1 and, under the hard
#: activity gate, an offset below every ReLU output (r >= 0 > -1 passes unchanged)
NEUTRAL_GRADED = {"gain": 1.0, "offset": -1.0}
NEUTRAL_SPIKING = {"gain": 1.0, "offset": 0.0}


class GatedMLP:
    """Build the network; :meth:`logits` runs it on images.

    Args:
        sizes: widths, input to classes (default 784-256-256-10).
        batch: the network's batch (a smaller batch is padded).
        spiking: spiking hidden layers (see the module docstring), else graded ReLU.
        steps: time steps per image (spiking).
        lora_rank: add LoRA adapters of this rank to every hidden layer (0: none).
        weights: ``(n_in, n_out)`` arrays to start from (default: ``nn.Linear``'s
            initialisation, drawn from ``seed``).
    """

    def __init__(self, sizes: Sequence[int] = (784, 256, 256, 10), *, batch: int = 128,
                 spiking: bool = False, steps: int = 8, lora_rank: int = 0, seed: int = 0,
                 weights: Sequence[np.ndarray] | None = None, device: str = "cpu") -> None:
        sizes = [int(s) for s in sizes]
        if len(sizes) < 3 or min(sizes) < 1:
            raise ValueError(f"GatedMLP: sizes must be at least input, one hidden layer and "
                             f"classes, all positive, got {sizes}")
        if steps < 1 or lora_rank < 0:
            raise ValueError(f"GatedMLP: steps must be >= 1 and lora_rank >= 0, got {steps}, {lora_rank}")
        self.sizes, self.batch, self.spiking = sizes, int(batch), bool(spiking)
        self.steps = int(steps) if spiking else 1
        self.net = net = Network(batch=self.batch, backend="torch", dt=1.0, seed=seed, device=device)
        rng = np.random.default_rng(seed)
        if weights is None:  # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            weights = [rng.uniform(-1, 1, size=(a, b)) / np.sqrt(a) for a, b in zip(sizes[:-1], sizes[1:])]
        if [tuple(np.shape(w)) for w in weights] != list(zip(sizes[:-1], sizes[1:])):
            raise ValueError(f"GatedMLP: weights of shapes {[tuple(np.shape(w)) for w in weights]} "
                             f"do not fit sizes {sizes}")
        L = len(sizes) - 1
        self.input = net.population(sizes[0], GradedInput(), name="x")
        self.hidden = [net.population(n, SnnTorchLeaky() if spiking else Graded("relu"), name=f"h{l}",
                                      gated=True) for l, n in enumerate(sizes[1:-1], start=1)]
        self.output = net.population(sizes[-1], Graded("identity"), name="out")
        layers = [self.input] + self.hidden + [self.output]
        receptor = "syn" if spiking else "in"
        self.layers = []
        self.adapters: list[tuple] = []
        for l in range(L):
            post = layers[l + 1]
            rec = "in" if post is self.output else receptor
            self.layers.append(net.projection(layers[l], post, weight=np.asarray(weights[l], np.float32),
                                              receptor=rec, delay=0, sparse=False, trainable=True,
                                              name=f"W{l + 1}"))
            if lora_rank and post is not self.output:
                a = net.population(lora_rank, Graded("identity"), name=f"lora{l + 1}")
                down = net.projection(layers[l], a, receptor="in", delay=0, sparse=False, trainable=True,
                                      weight=rng.normal(0, 1 / np.sqrt(sizes[l]), size=(sizes[l], lora_rank)).astype(np.float32),
                                      name=f"A{l + 1}")
                up = net.projection(a, post, weight=np.zeros((lora_rank, sizes[l + 1]), np.float32),
                                    receptor=rec, delay=0, sparse=False, trainable=True, name=f"B{l + 1}")
                self.adapters.append((down, up))
        neutral = NEUTRAL_SPIKING if spiking else NEUTRAL_GRADED
        for pop in self.hidden:
            pop.gate.add_mode("upright", **neutral)
            pop.gate.use("upright")
            if not spiking:
                pop.gate.activity_gate = "hard"

    # -- running ----------------------------------------------------------------------
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores of images ``x`` ``(N, sizes[0])``, any N, batch by batch (with the
        graph when called with gradients on)."""
        out = []
        for lo in range(0, x.shape[0], self.batch):
            chunk = x[lo:lo + self.batch]
            n = chunk.shape[0]
            self.net.reset_state()  # each batch starts afresh (and drops the last graph)
            inp = self.input.inputs["i_ext"]
            inp.zero_()
            inp[:n] = chunk.to(inp.dtype)
            r = self.net.unroll(self.steps, record={self.output: "r"})["out"]["r"]
            out.append(r.mean(0)[:n])
        return torch.cat(out)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.logits(x).argmax(1) == labels).float().mean())

    @torch.no_grad()
    def active_fraction(self, x: torch.Tensor) -> float:
        """The fraction of hidden units that send something (graded: a nonzero value;
        spiking: at least one spike over the steps), over the samples of ``x``."""
        active, total = 0.0, 0
        for lo in range(0, x.shape[0], self.batch):
            chunk = x[lo:lo + self.batch]
            n = chunk.shape[0]
            self.net.reset_state()
            self.input.inputs["i_ext"].zero_()
            self.input.inputs["i_ext"][:n] = chunk
            out = self.net.unroll(self.steps, record={pop: "spikes" for pop in self.hidden})
            for pop in self.hidden:
                sent = out[pop.name]["spikes"][:, :n]  # (steps, n, width)
                active += float((sent != 0).any(0).float().sum())
                total += n * pop.n
        return active / total

    # -- what trains ------------------------------------------------------------------
    def weight_parameters(self) -> list[torch.nn.Parameter]:
        return [p.parameter for p in self.layers]

    def adapter_parameters(self) -> list[torch.nn.Parameter]:
        return [p.parameter for pair in self.adapters for p in pair]

    def gate_parameters(self) -> list[torch.nn.Parameter]:
        return [p for pop in self.hidden for p in pop.gate.make_trainable()]

    def freeze_weights(self) -> None:
        for p in self.weight_parameters():
            p.requires_grad_(False)

    def weights(self) -> list[np.ndarray]:
        """Copies of the layer weights ``(n_in, n_out)``."""
        return [p.weight.detach().cpu().numpy().copy() for p in self.layers]

    def use_mode(self, name: str) -> None:
        for pop in self.hidden:
            pop.gate.use(name)
