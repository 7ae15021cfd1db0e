"""A structured recurrent SNN that learns without backpropagation (Tang & Xie 2026's
ingredients; the concrete design is ours, see ``../shared/research/algorithms.md`` §4).

Populations (all :class:`~neurosim.SnnTorchLeaky`: :math:`v \\leftarrow \\beta v + I`, a
spike when :math:`v > 1`, reset by subtracting the threshold; dimensionless, ``dt = 1``):

* ``input``: one neuron per pixel; ``encoding="current"`` drives each with a constant
  current equal to its intensity (a non-leaky integrate-and-fire, ``beta = 1``: a
  regular spike train at ``intensity`` spikes per step), ``"poisson"`` fires it with
  probability ``intensity`` per step;
* ``hidden{l}``: locally dense recurrent layers (``W_rec``: all-to-all within the layer
  without self-connections, delay 1, or with ``recurrent_delays = D > 1`` axonal delays
  that grow with the distance on the layer's ring, from 1 step between neighbours to
  ``D`` steps across it), fed forward densely (``W_ff``, delay 0);
* ``readout``: ``classes x per_class`` neurons (a population code, classes in blocks),
  reached from every hidden layer through sparse small-world projections
  (``W_lr``: :class:`~neurosim.WattsStrogatz` from the hidden ring onto the readout ring,
  ``k_readout`` per hidden neuron, rewired with ``p_rewire``), plastic on their edges;
* modulatory units: ``modulators`` rate units computed in the step from the error.

Learning (``method="local"``: every rule is an :class:`~neurosim.rules.EProp`, no
gradient is computed anywhere):

* teaching at the readout, per sample: the population error
  :math:`E_c = t_c - \\bar n_c / (r_{max} T)` (label one-hot target, mean count of class
  ``c``'s neurons over the ``T`` steps, ``r_max`` the target rate per step), in full or,
  with ``wta``, only for the label and the winning class; with ``teaching="clamp"`` the
  label's readout population is also driven by a current (teacher forcing) while training,
  and its target is raised by the spikes that current alone causes (so the synapses learn
  what the teacher does not supply);
* the readout synapses learn from their own class's error (:math:`L_j = E_{c(j)}`);
* broadcast alignment: layer ``l`` gets :math:`B^l E` through a fixed random ``B^l``
  (``N_l x C``, Samadi, Lillicrap & Tweed 2017);
* modulatory gating: :math:`m = \\sigma(G E)` (``K_m`` units, fixed random ``G``), and each
  hidden neuron's learning signal is :math:`L_j = (B^l E)_j\\, \\sigma((D^l m)_j)`
  (fixed random ``D^l``); ``modulators=0`` leaves the gate out (:math:`L = B^l E`);
* every plastic synapse keeps an e-prop eligibility (presynaptic trace times the
  pseudo-derivative of its neuron's membrane) and changes once per sample by
  :math:`\\eta L_j e_{ji}`, each sample's signal times its own eligibility.

``method="bptt"`` builds the same network with trainable projections on the torch
backend and trains it by backpropagation through time with surrogate spike
derivatives: the cross-entropy of the class spike counts (scaled by ``1/(r_{max} T)``).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from neurosim.connectors import AllToAll, WattsStrogatz
from neurosim.distributed.collect import by_sample, sum_values
from neurosim.distributions import Uniform
from neurosim.models.poisson import PoissonSource
from neurosim.models.snntorch_leaky import SnnTorchLeaky
from neurosim.network import Network
from neurosim.rules.eprop import EProp

METHODS = ("local", "bptt")
ENCODINGS = ("current", "poisson")
TEACHING = ("error", "clamp")


def _positive_int(owner: str, **values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")


def ring_delays(n: int, longest: int) -> np.ndarray | int:
    """Delays (steps) of the synapses within a layer of ``n`` neurons on a ring: 1 between
    neighbours, growing linearly with the ring distance to ``longest`` between opposite
    neurons (an ``(n, n)`` array); just 1 when ``longest`` is 1."""
    if longest == 1:
        return 1
    index = np.arange(n)
    gap = np.abs(index[:, None] - index[None, :])
    distance = np.minimum(gap, n - gap)  # 0 .. n // 2
    far = max(1, n // 2 - 1)
    return 1 + np.rint((longest - 1) * np.clip(distance - 1, 0, None) / far).astype(np.int64)


class StructuredRecurrentSNN:
    """Build the network; :meth:`train_batch`, :meth:`train_epoch`, :meth:`predict` run it.

    Args:
        n_in, hidden, classes, per_class: input size, hidden layer sizes, classes,
            readout neurons per class.
        steps: time steps per sample (``T``, ms at ``dt = 1``).
        batch: samples run together.
        method: ``"local"`` (three-factor rules) or ``"bptt"`` (surrogate gradients).
        backend: for ``"local"``, ``"numba"`` (default) or ``"torch"``; ``"bptt"`` runs on torch.
        beta: membrane decay per step of hidden and readout neurons.
        encoding: ``"current"`` or ``"poisson"`` (see the module docstring).
        k_readout, p_rewire: small-world readout projection (targets per hidden neuron,
            rewiring probability).
        modulators: modulatory units ``K_m`` (0: no gate).
        wta: winner-take-all teaching signal (only label and winner carry an error).
        teaching: ``"error"`` or ``"clamp"`` (also inject ``clamp_current`` into the
            label's readout neurons while training).
        target_rate: ``r_max``, the label population's target spikes per step.
        lr_hidden, lr_readout: learning rates of the local rules (per sample-summed change).
        tau_pre, tau_eligibility: the rules' presynaptic trace and eligibility time
            constants (ms; ``math.inf``: the eligibility sums the sample).
        recurrent_delays: the longest recurrent delay in steps (1: every recurrent synapse
            has delay 1; more: per-synapse delays by ring distance, stored as CSR).
        lr: Adam's learning rate for ``"bptt"``.
        seed, device, log, threads: as :class:`~neurosim.Network`.
        data_parallel: a :class:`~neurosim.distributed.Partition` to train on several
            processes: ``batch`` is the whole batch, each process runs its ``batch / N``
            rows; the local rules' changes are summed at the end of each sample (see
            :mod:`neurosim.distributed.data_parallel`), BPTT's gradients before each
            Adam step; accuracies and predictions are every process's.
    """

    def __init__(self, *, n_in: int = 784, hidden: Sequence[int] = (500,), classes: int = 10,
                 per_class: int = 10, steps: int = 20, batch: int = 32, method: str = "local",
                 backend: str = "numba", beta: float = 0.9, encoding: str = "current",
                 k_readout: int = 30, p_rewire: float = 0.1, modulators: int = 20,
                 wta: bool = False, teaching: str = "error", clamp_current: float = 0.5,
                 target_rate: float = 0.5, lr_hidden: float = 0.02, lr_readout: float = 0.01,
                 tau_pre: float = 10.0, tau_eligibility: float = math.inf,
                 ff_scale: float = 1.5, recurrent_scale: float = 0.5, readout_scale: float = 1.0,
                 recurrent_delays: int = 1, lr: float = 1e-3, seed: int = 0,
                 device: str = "cpu", log: Any = None, threads: int | None = None,
                 data_parallel: Any = None) -> None:
        hidden = tuple(hidden)
        owner = "StructuredRecurrentSNN"
        _positive_int(owner, n_in=n_in, classes=classes, per_class=per_class, steps=steps, batch=batch,
                      k_readout=k_readout, recurrent_delays=recurrent_delays)
        if not hidden:
            raise ValueError(f"{owner}: hidden must list at least one layer size")
        _positive_int(owner, **{f"hidden[{l}]": h for l, h in enumerate(hidden)})
        if isinstance(modulators, bool) or not isinstance(modulators, (int, np.integer)) or modulators < 0:
            raise ValueError(f"{owner}: modulators must be a non-negative integer, got {modulators!r}")
        for name, value, allowed in (("method", method, METHODS), ("encoding", encoding, ENCODINGS),
                                     ("teaching", teaching, TEACHING)):
            if value not in allowed:
                raise ValueError(f"{owner}: {name} must be one of {allowed}, got {value!r}")
        if isinstance(target_rate, bool) or not isinstance(target_rate, (int, float)) or not 0.0 < target_rate <= 1.0:
            raise ValueError(f"{owner}: target_rate must be in (0, 1] spikes per step, got {target_rate!r}")
        if isinstance(clamp_current, bool) or not isinstance(clamp_current, (int, float)) or not (
                math.isfinite(clamp_current) and clamp_current > 0):
            raise ValueError(f"{owner}: clamp_current must be a positive number, got {clamp_current!r}")
        if wta and teaching == "clamp":
            raise ValueError(f"{owner}: wta and teaching='clamp' do not mix: the teacher makes the label "
                             "win, and the winner-take-all error would then spare every wrong class")
        if k_readout > classes * per_class:
            raise ValueError(f"{owner}: k_readout={k_readout} synapses per hidden neuron, but the readout "
                             f"has only {classes * per_class} neurons ({classes} classes x per_class "
                             f"{per_class}); lower k_readout or raise per_class")
        if method == "bptt":
            backend = "torch"
        self.method, self.steps, self.batch, self.classes = method, int(steps), int(batch), int(classes)
        self.per_class, self.hidden_sizes, self.encoding = int(per_class), hidden, encoding
        self.teaching, self.clamp_current, self.target_rate = teaching, float(clamp_current), float(target_rate)
        self.seed = seed
        trainable = method == "bptt"
        self.dp = data_parallel
        processes = 1 if data_parallel is None else data_parallel.size
        if batch % processes:
            raise ValueError(f"{owner}: batch {batch} must be a multiple of the {processes} processes "
                             "(each runs batch / processes rows)")
        share = batch // processes
        #: this process's rows of every batch (all of them in one process)
        self.rows = slice(0, batch) if data_parallel is None else \
            slice(data_parallel.rank * share, (data_parallel.rank + 1) * share)
        net = self.net = Network(dt=1.0, batch=share, seed=seed, device=device, backend=backend,
                                 log=log, threads=threads, data_parallel=data_parallel)
        if encoding == "current":
            self.input = net.population(n_in, SnnTorchLeaky(beta=1.0, threshold=1.0), name="input")
        else:
            self.input = net.population(n_in, PoissonSource(rate=0.0), name="input")
        leaky = dict(beta=beta, threshold=1.0, subtract=1.0)
        self.hidden = [net.population(h, SnnTorchLeaky(**leaky), name=f"hidden{l}")
                       for l, h in enumerate(hidden)]
        self.readout = net.population(classes * per_class, SnnTorchLeaky(**leaky), name="readout")

        # weights: uniform, scaled by the fan-in (a layer of rate ~0.1-0.3 drives the next
        # to fire at similar rates); feed-forward ones with a small positive mean
        def fan(n: int, gain: float, shift: float = 0.0) -> Uniform:
            bound = gain / math.sqrt(n)
            return Uniform(-bound + shift * bound, bound + shift * bound)

        self.feedforward, self.recurrent, self.to_readout = [], [], []
        pre = self.input
        for l, h in enumerate(self.hidden):
            self.feedforward.append(net.projection(pre, h, weight=fan(pre.n, ff_scale), receptor="syn",
                                                   delay=0, sparse=False, trainable=trainable,
                                                   name=f"ff{l}"))
            delayed = recurrent_delays > 1
            self.recurrent.append(net.projection(h, h, AllToAll(allow_autapses=False),
                                                 weight=fan(h.n, recurrent_scale), receptor="syn",
                                                 delay=ring_delays(h.n, recurrent_delays), sparse=delayed,
                                                 trainable=trainable, name=f"rec{l}"))
            self.to_readout.append(net.projection(h, self.readout, WattsStrogatz(k_readout, p_rewire),
                                                  weight=fan(k_readout * h.n / self.readout.n, readout_scale),
                                                  receptor="syn", delay=0, sparse=False,
                                                  trainable=trainable, name=f"lr{l}"))
            pre = h
        self.counter = net.spike_counter(self.readout)
        self._order = np.random.default_rng(seed)
        self.optimizer = None
        if method == "bptt":
            self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
            return

        # -- signals: teaching, broadcast alignment, modulatory gate (computed in the step) --
        mods = net.modulators
        count_scale = 1.0 / (self.target_rate * self.steps)
        mods.add_population_error("error", self.readout, classes, scale=count_scale, wta=wta)
        spread = np.kron(np.eye(classes), np.ones((per_class, 1)))  # class error -> its neurons
        mods.add_linear("readout_error", "error", spread)
        if modulators:
            mods.add_random_feedback("modulator_input", "error", modulators, scale=4.0)
            mods.add_sigmoid("modulators", "modulator_input")  # m = sigma(G E)
        rules = []
        # the rules sum each sample's change over the batch and the steps: per sample and step
        per = 1.0 / (self.batch * self.steps)
        for l, h in enumerate(self.hidden):
            mods.add_random_feedback(f"broadcast{l}", "error", h.n)  # B^l E
            signal = f"broadcast{l}"
            if modulators:
                mods.add_random_feedback(f"gate_input{l}", "modulators", h.n, scale=4.0)
                mods.add_sigmoid(f"gate{l}", f"gate_input{l}")  # sigma(D^l m)
                mods.add_product(f"learning{l}", f"broadcast{l}", f"gate{l}")
                signal = f"learning{l}"
            for proj in (self.feedforward[l], self.recurrent[l]):
                rules.append(net.add_rule(proj, EProp(modulator=signal, lr=lr_hidden * per, tau_pre=tau_pre,
                                                      tau_eligibility=tau_eligibility)))
            rules.append(net.add_rule(self.to_readout[l], EProp(
                modulator="readout_error", lr=lr_readout * per, tau_pre=tau_pre,
                tau_eligibility=tau_eligibility)))
        self.rules = rules
        self._teacher = None
        #: the label's target in the error: 1, plus (clamped) what the teacher alone would fire
        self.label_target = 1.0
        if teaching == "clamp":
            self._teacher = torch.as_tensor(spread.T, dtype=net.dtype, device=net.device) * self.clamp_current
            self._teacher_count = self.teacher_spikes(beta)
            self.label_target = 1.0 + self._teacher_count * count_scale

    def teacher_spikes(self, beta: float) -> int:
        """Spikes the teacher current alone makes a readout neuron fire in one presentation
        (the neuron's equation iterated from rest); the error discounts them, so the
        synapses are taught what the teacher does not already supply."""
        mem, fired, count = 0.0, False, 0
        for _ in range(self.steps):
            mem = beta * mem + self.clamp_current - (1.0 if fired else 0.0)
            fired = mem > 1.0
            count += int(fired)
        return count

    def decay_learning_rates(self, factor: float) -> None:
        """Multiply every learning rate by ``factor`` (e.g. after an epoch): the local
        rules' ``lr``, or Adam's for ``"bptt"``."""
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"StructuredRecurrentSNN: a learning-rate factor must be positive, got {factor!r}")
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] *= factor
            return
        for rule in self.rules:
            rule.lr *= factor

    # -- presenting samples -----------------------------------------------------------
    def _rows(self, images: np.ndarray) -> torch.Tensor:
        """This process's rows of one batch (in one process: all)."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32).reshape(len(images), -1))
        if len(x) < self.batch:  # a last partial batch: empty rows, ignored by the caller
            x = torch.cat([x, x.new_zeros(self.batch - len(x), x.shape[1])])
        return x.clamp(0, 1)[self.rows].to(self.net.device)

    def _mine(self, n: int) -> np.ndarray:
        """Positions in a batch of ``n`` real samples of this process's real rows."""
        at = np.arange(self.batch)[self.rows]
        return at[at < n]

    def present(self, images: np.ndarray, labels: np.ndarray | None = None, train: bool = False) -> None:
        """Set one batch's input (intensities in [0, 1]), its target and, when training with
        ``teaching="clamp"``, the teacher current; start every state afresh."""
        x = self._rows(images)
        if self.encoding == "current":
            self.input.inputs["i_ext"].copy_(x)
        else:
            self.input.set_parameters(rate=(x * (1000.0 / self.net.dt)).cpu().numpy())
        if self.method == "local":
            onehot = torch.zeros(self.batch, self.classes, dtype=self.net.dtype, device=self.net.device)
            if labels is not None:
                onehot[torch.arange(len(labels)), torch.as_tensor(np.asarray(labels), dtype=torch.long)] = 1.0
            onehot = onehot[self.rows]
            self.net.modulators.set_target("error", onehot * (self.label_target if train else 1.0))
            if self._teacher is not None:  # the teacher drives the label's neurons only in training
                self.readout.inputs["i_ext"].copy_(onehot @ self._teacher * float(train))
        self.net.reset_state()
        self.counter.reset()

    def class_counts(self) -> torch.Tensor:
        """Spikes per class over the sample, ``(batch, classes)`` (this process's rows)."""
        return self.counter.counts.view(self.net.batch, self.classes, self.per_class).sum(-1)

    # -- training -----------------------------------------------------------------------
    def train_batch(self, images: np.ndarray, labels: np.ndarray) -> float:
        """Present one batch and learn from it; returns the fraction classified right
        (during the presentation, before its own update)."""
        labels = np.asarray(labels)
        if labels.size and (labels.min() < 0 or labels.max() >= self.classes):
            raise ValueError(f"StructuredRecurrentSNN: labels must lie in 0..{self.classes - 1}")
        if self.method == "bptt":
            return self._bptt_batch(images, labels)
        with torch.no_grad():  # local learning: no graph, anywhere
            self.present(images, labels, train=True)
            self.net.run(steps=self.steps, progress=False)
            self.net.trigger("end_of_sample")
            mine = labels[self._mine(len(labels))]
            counts = self.class_counts()[:len(mine)]
            if self._teacher is not None:  # what the network itself fired, roughly: less the teacher's
                counts = counts.clone()
                counts[torch.arange(len(mine)), torch.as_tensor(mine, dtype=torch.long)] -= (
                    self.per_class * self._teacher_count)
            predicted = counts.argmax(1).cpu().numpy()
        right, = sum_values([float((predicted == mine).sum())], self.dp, self.net.device)
        return right / len(labels)

    def _bptt_batch(self, images: np.ndarray, labels: np.ndarray) -> float:
        self.present(images)
        self.optimizer.zero_grad(set_to_none=True)
        spikes = self.net.unroll(self.steps, record={"readout": "spikes"})["readout"]["spikes"]
        counts = spikes.sum(0).view(self.net.batch, self.classes, self.per_class).mean(-1)
        mine = labels[self._mine(len(labels))]
        logits = counts[:len(mine)] / (self.target_rate * self.steps) * 5.0
        y = torch.as_tensor(mine, dtype=torch.long, device=logits.device)
        # the mean over the whole batch's samples: each process adds its rows' part
        loss = F.cross_entropy(logits, y, reduction="sum") / len(labels)
        loss.backward()
        if self.dp is not None:  # every process's rows: the whole batch's gradient
            from neurosim.distributed import sum_gradients

            sum_gradients(self.net.parameters(), self.dp)
        self.optimizer.step()
        right, = sum_values([float((logits.argmax(1) == y).sum())], self.dp, self.net.device)
        return right / len(labels)

    def batches(self, n: int, shuffle: bool) -> Iterator[np.ndarray]:
        order = self._order.permutation(n) if shuffle else np.arange(n)
        for start in range(0, n - self.batch + 1 if shuffle else n, self.batch):
            yield order[start:start + self.batch]

    def train_epoch(self, images: np.ndarray, labels: np.ndarray, progress: bool | None = None,
                    desc: str = "train", on_batch: Any = None) -> float:
        """One pass over shuffled ``images`` (uint8 or [0, 1]) in whole batches; returns the
        training accuracy seen during the pass."""
        scale = 255.0 if np.asarray(images[:1]).dtype == np.uint8 else 1.0
        right = []
        bar = tqdm(list(self.batches(len(images), True)), desc=desc, unit="batch",
                   disable=progress is False, leave=False)
        for k, idx in enumerate(bar):
            right.append(self.train_batch(images[idx] / scale, labels[idx]))
            if k % 20 == 0:
                bar.set_postfix(train_acc=f"{np.mean(right[-50:]):.3f}")
            if on_batch is not None:  # e.g. a log of the running accuracy
                on_batch(k, right[-1])
        return float(np.mean(right)) if right else math.nan

    def predict(self, images: np.ndarray, progress: bool | None = None, desc: str = "test",
                labels: np.ndarray | None = None) -> np.ndarray:
        """The class whose readout neurons fired most, in a normal run without learning
        (``labels``: set as the error's targets, so that a logged error is the error)."""
        scale = 255.0 if np.asarray(images[:1]).dtype == np.uint8 else 1.0
        learning = [(r, r.learning) for r in self.net.rules.values()]
        out = []
        try:
            for r, _ in learning:
                r.learning = False
            with torch.no_grad():
                for idx in tqdm(list(self.batches(len(images), False)), desc=desc, unit="batch",
                                disable=progress is False, leave=False):
                    self.present(images[idx] / scale, None if labels is None else np.asarray(labels)[idx])
                    self.net.run(steps=self.steps, progress=False)
                    real = self._mine(len(idx))
                    out.append((idx[real], self.class_counts()[:len(real)].argmax(1).cpu().numpy()))
        finally:
            for r, was in learning:
                r.learning = was
        return by_sample(out, len(images), self.dp)  # (every process's, in a data-parallel run)

    def evaluate(self, images: np.ndarray, labels: np.ndarray, progress: bool | None = None,
                 desc: str = "test") -> float:
        return float((self.predict(images, progress, desc) == np.asarray(labels)).mean())
