"""A rate-coded spiking classifier trained by surrogate gradients (BPTT or online).

The network of snnTorch's tutorial 5 and of ``benchmarks/grad_training.py``: inputs as
Bernoulli spikes with probability = intensity at each step (a ``PoissonSource`` whose
rate is set per sample), ``n_in -> hidden -> classes`` layers of
:class:`~neurosim.SnnTorchLeaky` neurons (decay ``beta``, threshold 1, reset by
subtraction) joined by delay-0 dense trainable projections, and a bias per neuron (a
trainable projection from one unit that fires every step). Initial weights and biases
are ``nn.Linear``'s, drawn after ``torch.manual_seed(seed)``. The loss is the
cross-entropy of the output membrane potential at every step, summed over steps and
averaged over the batch; the prediction is the class with the most output spikes.

Two ways to compute the gradient:

* ``"bptt"``: backpropagation through time over all ``steps`` (memory grows with T);
* ``"online"``: SLTT (Meng et al., ICCV 2023): the temporal path through the membrane
  is dropped, so each step's loss is back-propagated at once through that step alone
  and the gradients accumulate over the steps; memory does not grow with T.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from neurosim.distributed.collect import by_sample, sum_values
from neurosim.models.poisson import PoissonSource
from neurosim.models.snntorch_leaky import SnnTorchLeaky
from neurosim.network import Network

METHODS = ("bptt", "online")


class RateClassifier:
    """Build the network; :meth:`train_epoch` and :meth:`evaluate` run it.

    Args:
        n_in, hidden, classes: layer sizes.
        steps: time steps per sample (T).
        batch: samples per step of the optimiser (the network's batch).
        beta: membrane decay per step.
        seed: initial weights (``nn.Linear`` after ``torch.manual_seed``), input
            spikes and sample order.
        device, dtype, log, threads: as for :class:`~neurosim.Network`.
        surrogate: of both layers (default atan, see :mod:`neurosim.surrogate`).
        data_parallel: a :class:`~neurosim.distributed.Partition` to train on several
            processes: ``batch`` is then the whole batch, each process runs its
            ``batch / N`` rows of it (input spikes drawn for the whole batch, losses
            normalised by it) and :meth:`train_epoch` sums the gradients across the
            processes before each step of the optimiser (as DistributedDataParallel
            does), so every process keeps the weights one process would have, up to
            float rounding; :meth:`predict` gathers every process's predictions.
    """

    def __init__(self, *, n_in: int = 784, hidden: int = 1000, classes: int = 10, steps: int = 25,
                 batch: int = 128, beta: float = 0.95, seed: int = 0, device: str = "cpu",
                 dtype: str = "float32", log: Any = None, threads: int | None = None,
                 surrogate: Any = None, data_parallel: Any = None) -> None:
        for name, value in (("n_in", n_in), ("hidden", hidden), ("classes", classes),
                            ("steps", steps), ("batch", batch)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"RateClassifier: {name} must be a positive integer, got {value!r}")
        self.steps, self.batch, self.classes, self.seed = int(steps), int(batch), int(classes), seed
        self.dp = data_parallel
        processes = 1 if data_parallel is None else data_parallel.size
        if batch % processes:
            raise ValueError(f"RateClassifier: batch {batch} must be a multiple of the {processes} "
                             "processes (each runs batch / processes rows)")
        #: this process's rows of every batch
        self.rows = slice(0, batch) if data_parallel is None else \
            slice(data_parallel.rank * (batch // processes), (data_parallel.rank + 1) * (batch // processes))
        net = self.net = Network(dt=1.0, batch=batch // processes, seed=seed, device=device,
                                 backend="torch", dtype=dtype, log=log, threads=threads,
                                 data_parallel=data_parallel)
        self.input = net.population(n_in, PoissonSource(rate=0.0), name="input")
        self.bias = net.population(1, PoissonSource(rate=1000.0), name="bias")  # fires every step
        leaky = dict(beta=beta, threshold=1.0, subtract=1.0)
        self.hidden = net.population(hidden, SnnTorchLeaky(**leaky), name="hidden", surrogate=surrogate)
        self.output = net.population(classes, SnnTorchLeaky(**leaky), name="output", surrogate=surrogate)
        with torch.random.fork_rng(devices=[]):  # the caller's random state is left alone
            torch.manual_seed(seed)  # nn.Linear's initialisation, as a torch model of it has
            layers = [torch.nn.Linear(n_in, hidden), torch.nn.Linear(hidden, classes)]
        self.projections = []
        for (pre, post), layer in zip(((self.input, self.hidden), (self.hidden, self.output)), layers):
            w = layer.weight.detach().T.contiguous()
            self.projections.append(net.projection(pre, post, weight=w.numpy(), receptor="syn",
                                                   delay=0, sparse=False, trainable=True))
            net.projection(self.bias, post, weight=layer.bias.detach()[None].numpy(), receptor="syn",
                           delay=0, sparse=False, trainable=True, name=f"bias_{post.name}")
        self.counter = net.spike_counter(self.output)
        self._order = np.random.default_rng(seed)
        # training input spikes: Bernoulli draws of a seeded torch generator, all steps at
        # once (as snntorch.spikegen.rate); testing uses the input population's own stream
        self._spike_gen = torch.Generator(device=net.device).manual_seed(seed)
        # the bias unit fires every step (given, so that its input is computed with the
        # inputs', once for all steps)
        self._bias_spikes = torch.ones(self.steps, net.batch, 1, device=net.device)

    def parameters(self) -> list[torch.nn.Parameter]:
        return self.net.parameters()

    def _intensities(self, images: np.ndarray) -> torch.Tensor:
        """One batch as ``(batch, n_in)`` probabilities in [0, 1] (a last, partial batch is
        padded with empty rows, which the caller ignores)."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32).reshape(len(images), -1))
        if len(x) < self.batch:
            x = torch.cat([x, x.new_zeros(self.batch - len(x), x.shape[1])])
        return x.clamp(0, 1).to(self.net.device)

    def _present(self, images: np.ndarray) -> None:
        """Set the input rates of one batch (intensity in [0, 1] -> that spike probability;
        this process's rows)."""
        rates = self._intensities(images)[self.rows] * (1000.0 / self.net.dt)
        self.input.set_parameters(rate=rates.cpu().numpy())
        self.net.reset_state()

    def encode(self, images: np.ndarray) -> torch.Tensor:
        """``(steps, batch, n_in)`` Bernoulli spikes, probability = intensity, drawn from
        the classifier's seeded generator (for the whole batch; this process's rows)."""
        x = self._intensities(images)
        return torch.bernoulli(x.expand(self.steps, *x.shape), generator=self._spike_gen)[:, self.rows]

    def loss_and_backward(self, images: np.ndarray, labels: np.ndarray, method: str = "bptt") -> float:
        """Present one batch, run ``steps`` steps differentiably and accumulate the gradient
        of the loss into the parameters' ``.grad``; returns the loss."""
        if method not in METHODS:
            raise ValueError(f"RateClassifier: method must be one of {METHODS}, got {method!r}")
        spikes = {"input": self.encode(images), "bias": self._bias_spikes}
        self.net.reset_state()
        y = torch.as_tensor(np.asarray(labels, dtype=np.int64), device=self.net.device)[self.rows]
        if method == "bptt":
            mem = self.net.unroll(self.steps, spikes=spikes,
                                  record={"output": "mem"})["output"]["mem"]
            loss = F.cross_entropy(mem.reshape(-1, self.classes), y.repeat(self.steps),
                                   reduction="sum") / self.batch
            loss.backward()
            return float(loss.detach())
        losses = []

        def step_loss(t: int, values: dict[str, dict[str, torch.Tensor]]) -> None:
            # SLTT: each step's loss back-propagated through that step alone
            loss = F.cross_entropy(values["output"]["mem"], y, reduction="sum") / self.batch
            loss.backward()
            self.net.detach_state()
            losses.append(loss.detach())

        self.net.unroll(self.steps, spikes=spikes, record={"output": "mem"},
                        on_step=step_loss)
        return float(torch.stack(losses).sum())

    def batches(self, n: int, shuffle: bool) -> Iterator[np.ndarray]:
        order = self._order.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n - self.batch + 1 if shuffle else n, self.batch):
            yield order[start:start + self.batch]

    def train_epoch(self, images: np.ndarray, labels: np.ndarray, optimizer: torch.optim.Optimizer,
                    method: str = "bptt", progress: bool | None = None, desc: str = "train") -> float:
        """One pass over shuffled ``images`` (uint8 or [0, 1] floats) in whole batches (a
        last partial batch is dropped); returns the mean loss."""
        scale = 255.0 if np.asarray(images[:1]).dtype == np.uint8 else 1.0
        losses = []
        for idx in tqdm(list(self.batches(len(images), True)), desc=desc, unit="batch",
                        disable=progress is False, leave=False):
            optimizer.zero_grad(set_to_none=True)
            losses.append(self.loss_and_backward(images[idx] / scale, labels[idx], method))
            if self.dp is not None:  # every process's rows: the whole batch's gradient
                from neurosim.distributed import sum_gradients

                sum_gradients(self.parameters(), self.dp)
                losses[-1] = sum_values([losses[-1]], self.dp, self.net.device)[0]
            optimizer.step()
        return float(np.mean(losses)) if losses else math.nan

    def predict(self, images: np.ndarray, progress: bool | None = None, desc: str = "test") -> np.ndarray:
        """The class with the most output spikes in a normal (graph-free) run of each image."""
        scale = 255.0 if np.asarray(images[:1]).dtype == np.uint8 else 1.0
        out = []
        for idx in tqdm(list(self.batches(len(images), False)), desc=desc, unit="batch",
                        disable=progress is False, leave=False):
            self._present(images[idx] / scale)
            self.counter.reset()
            self.net.run(steps=self.steps, progress=False)
            mine = np.arange(self.batch)[self.rows]  # this process's rows of the batch
            real = mine[mine < len(idx)]
            out.append((idx[real], self.counter.counts[:len(real)].argmax(1).cpu().numpy()))
        return by_sample(out, len(images), self.dp)  # (every process's, in a data-parallel run)

    def evaluate(self, images: np.ndarray, labels: np.ndarray, progress: bool | None = None,
                 desc: str = "test") -> float:
        """Accuracy of :meth:`predict` on ``images``."""
        return float((self.predict(images, progress, desc) == np.asarray(labels)).mean())
