"""Diehl & Cook (2015): unsupervised STDP learning of MNIST digits."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from neurosim.connectors import AllToAll, FromMatrix, OneToOne
from neurosim.datasets.presenter import present
from neurosim.distributions import Uniform
from neurosim.models.conductance_lif import ConductanceLIF
from neurosim.models.poisson import PoissonSource
from neurosim.network import Network
from neurosim.rules.diehl_cook import DiehlCookSTDP
from neurosim.rules.normalization import WeightNormalization

EXC = dict(tau_m=100.0, v_rest=-65.0, v_reset=-65.0, v_thresh=-52.0, t_ref=5.0, tau_e=1.0,
           tau_i=2.0, e_exc=0.0, e_inh=-100.0, theta_plus=0.05, tau_theta=1e7)
INH = dict(tau_m=10.0, v_rest=-60.0, v_reset=-45.0, v_thresh=-40.0, t_ref=2.0, tau_e=1.0,
           tau_i=2.0, e_exc=0.0, e_inh=-85.0, theta_plus=0.0, tau_theta=float("inf"))


class DiehlCook2015:
    """The network of Diehl & Cook (2015), built into a :class:`~neurosim.Network`.

    784 Poisson inputs -> ``n_neurons`` excitatory :class:`~neurosim.ConductanceLIF`
    neurons (all-to-all, :class:`~neurosim.rules.DiehlCookSTDP`, adaptive threshold,
    incoming weights normalised to sum 78 before each sample) -> as many
    inhibitory neurons (one-to-one, weight 10.4) -> back to every excitatory neuron
    but their source (weight 17, lateral inhibition). Parameters are the paper
    code's (see ``algorithms.md`` 7a): a sample that makes fewer than
    ``min_spikes`` excitatory spikes is shown again, 32 Hz brighter, as there.
    Differences: input delays are one step (the code draws 0-10 ms), and samples
    are simulated ``batch`` at a time with shared weights. ``data_parallel``: a
    :class:`~neurosim.distributed.Partition` of a data-parallel run (each of N processes
    simulates ``batch`` rows of a batch of N x ``batch``; see
    :mod:`neurosim.distributed.data_parallel`); every process gets every sample's counts.
    ``weight_window``: apply the weight changes every this many steps, the weights fixed in
    between (see :class:`~neurosim.Network`), instead of every step; ``"sample"``: once
    per presentation and once per rest (the end of each run). The same in one process
    and data-parallel, where it means one sum per window instead of one per step.
    """

    def __init__(self, n_neurons: int = 100, *, batch: int = 1, dt: float = 0.5, seed: int = 0,
                 backend: str | None = None, device: str = "cpu", log=None,
                 duration_ms: float = 350.0, rest_ms: float = 150.0, nu_scale: float = 1.0,
                 min_spikes: int = 5, data_parallel: Any = None,
                 weight_window: int | str | None = None) -> None:
        steps = int(round((duration_ms + rest_ms) / dt))
        if weight_window == "sample":  # (every run ends a window: the presentation, the rest)
            weight_window = steps
        self.net = net = Network(dt=dt, batch=batch, seed=seed, backend=backend, device=device, log=log,
                                 data_parallel=data_parallel, weight_window=weight_window)
        self.duration_ms, self.rest_ms, self.min_spikes = duration_ms, rest_ms, min_spikes
        self.input = net.population(784, PoissonSource(rate=0.0), name="input")
        # one rate per sample and pixel from the start, as present() sets them: a
        # compiled kernel is specific to the parameters' shapes, so net.compile() now
        # builds the kernel that training runs
        self.input.set_parameters(rate=np.zeros((batch, 784)))
        self.exc = net.population(n_neurons, ConductanceLIF(**EXC), name="exc")
        self.inh = net.population(n_neurons, ConductanceLIF(**INH), name="inh")
        # the paper code's 0.3 * (U[0, 1) + 0.01), drawn from the projection's own named
        # stream like every other random component
        self.input_exc = net.projection(self.input, self.exc, AllToAll(),
                                        weight=Uniform(0.003, 0.303), sparse=False)
        net.projection(self.exc, self.inh, OneToOne(), weight=10.4)
        net.projection(self.inh, self.exc, FromMatrix(-17.0 * (1 - np.eye(n_neurons))),
                       receptor="inh", sparse=False)
        self.stdp = net.add_rule(self.input_exc, DiehlCookSTDP(
            nu_pre=1e-4 * nu_scale, nu_post=1e-2 * nu_scale, w_max=1.0))
        self.norm = net.add_rule(self.input_exc, WeightNormalization(78.0, every=steps))
        self.counter = net.spike_counter(self.exc)
        self.assignments: np.ndarray | None = None
        self._theta = torch.zeros(n_neurons, dtype=self.exc.dtype, device=self.exc.device)

    def _counts(self, images: np.ndarray, progress: bool | None, desc: str) -> np.ndarray:
        dp = self.net.data_parallel  # (each process shows its rows of every batch; see present)
        out, shown = [], []
        for idx, counts in present(self.net, self.input, images, duration_ms=self.duration_ms,
                                   rest_ms=self.rest_ms, counters=[self.counter],
                                   min_spikes=self.min_spikes, progress=progress,
                                   desc=desc):
            out.append(counts["exc"].cpu().numpy())
            shown.append(idx)
            # the threshold is one learned value per neuron, like the weights: add up the
            # increments of the samples of this batch (real rows only), as if shown in turn
            # read the state now (backends update the state tensors in place as they step)
            theta = self.exc.state["theta"]
            base = self._theta
            increments = (theta[:len(idx)] - base).sum(0)
            if dp is not None and dp.size > 1:  # every process's rows of the batch
                torch.distributed.all_reduce(increments, group=dp.group)
            self._theta = base + increments
            theta.copy_(self._theta.expand_as(theta))
        counts = np.concatenate(out)
        if dp is not None and dp.size > 1:  # every process gets every sample's counts, in order
            parts: list = [None] * dp.size
            torch.distributed.all_gather_object(parts, (np.concatenate(shown), counts), group=dp.group)
            whole = np.zeros((len(images), counts.shape[1]), dtype=counts.dtype)
            for where, values in parts:
                whole[where] = values
            counts = whole
        return counts

    def learning(self, on: bool) -> None:
        """Switch plasticity (STDP, normalisation, threshold adaptation) on or off.

        Off also stops the thresholds' slow decay (as in the paper's test mode,
        where theta is a constant): otherwise a long evaluation would let them
        relax and change the responses between label assignment and testing.
        """
        self.stdp.learning = self.norm.learning = on
        self.exc.set_parameters(theta_plus=EXC["theta_plus"] if on else 0.0,
                                tau_theta=EXC["tau_theta"] if on else float("inf"))

    def train(self, images: np.ndarray, progress: bool | None = None,
              desc: str = "train") -> np.ndarray:
        """Present ``images`` with learning on; returns the excitatory spike counts.
        ``desc`` names the phase on the progress bar."""
        self.learning(True)
        return self._counts(images, progress, desc)

    def respond(self, images: np.ndarray, progress: bool | None = None,
                desc: str = "respond") -> np.ndarray:
        """Spike counts (samples, neurons) with learning off."""
        self.learning(False)
        return self._counts(images, progress, desc)

    def assign_labels(self, counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Each neuron's class: the one with its highest mean response."""
        rates = np.zeros((10, counts.shape[1]))
        for c in range(10):
            if np.any(labels == c):
                rates[c] = counts[labels == c].mean(0)
        self.assignments = rates.argmax(0)
        self.proportions = rates / np.maximum(rates.sum(0, keepdims=True), 1e-12)
        return self.assignments

    def predict(self, counts: np.ndarray, scheme: str = "all") -> np.ndarray:
        """Class per sample: ``"all"`` (highest mean count of a class's neurons) or
        ``"proportion"`` (counts weighted by each neuron's class proportions)."""
        if self.assignments is None:
            raise RuntimeError("assign_labels first")
        if scheme == "all":
            scores = np.stack([counts[:, self.assignments == c].mean(1) if np.any(self.assignments == c)
                               else np.full(len(counts), -1.0) for c in range(10)], 1)
        elif scheme == "proportion":
            scores = counts @ self.proportions.T
        else:
            raise ValueError(f"scheme must be 'all' or 'proportion', got {scheme!r}")
        return scores.argmax(1)
