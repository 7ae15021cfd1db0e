"""Signals computed from other signals or from a population's spikes, every step.

A derived modulator is updated in the traces phase of each step, before the
rules read it: on the torch backend by :meth:`Derived.update` / :meth:`Derived.compute`
below, on the numba backend by compiled kernels of the same arithmetic (in
:mod:`neurosim.backends.numba_rules`), so both give the same bits. Stateful ones
(a population's rate, an error from spike counts) follow this step's spikes;
pure ones (product, sigmoid gate) are recomputed from their sources after them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from neurosim.views import Signal as Modulator  # (what it reads of a modulator)
    from neurosim.population import Population


class Derived:
    """How a modulator's value is computed (see the module docstring)."""

    #: True: updated from this step's spikes (first pass); False: from other signals
    stateful = False
    kind = "derived"

    def update(self, value: torch.Tensor) -> None:
        """Stateful signals: follow this step's spikes."""

    def compute(self, value: torch.Tensor) -> None:
        """Pure signals: recompute from the sources."""

    def reset(self, value: torch.Tensor) -> None:
        """At ``net.reset_state()`` (a new sample): stateful signals start again."""

    def arrays(self) -> dict[str, torch.Tensor]:
        """State the signal keeps besides its value, by name (saved with the network's state)."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}


class Product(Derived):
    """``a * b``, broadcast (e.g. a global reward times a per-neuron attention signal)."""

    kind = "product"

    def __init__(self, a: "Modulator", b: "Modulator") -> None:
        self.a, self.b = a, b

    def compute(self, value: torch.Tensor) -> None:
        value.copy_(self.a.current() * self.b.current())

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "of": [self.a.name, self.b.name]}


class Sigmoid(Derived):
    r"""A sigmoid gate :math:`1 / (1 + e^{-g (x - \theta)})` of another signal."""

    kind = "sigmoid"

    def __init__(self, source: "Modulator", gain: float, threshold: float) -> None:
        if not (math.isfinite(gain) and math.isfinite(threshold)):
            raise ValueError("sigmoid signal: gain and threshold must be finite")
        self.source, self.gain, self.threshold = source, float(gain), float(threshold)

    def compute(self, value: torch.Tensor) -> None:
        x = self.source.current()
        value.copy_(1.0 / (1.0 + torch.exp(-(self.gain * (x - self.threshold)))))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "of": self.source.name, "gain": self.gain,
                "threshold": self.threshold}


class PopulationRate(Derived):
    r"""A population's firing rate in Hz, filtered: :math:`r \leftarrow r\,d + s\,(1 - d)\,1000/\Delta t`
    with :math:`d = e^{-\Delta t/\tau}` and :math:`s` the spikes (``per_neuron``: each
    neuron and sample, ``(batch, n)``; else the fraction of all neurons and samples)."""

    kind = "population rate"
    stateful = True

    def __init__(self, population: "Population", tau_ms: float, dt: float, per_neuron: bool) -> None:
        if not (math.isfinite(tau_ms) and tau_ms > 0):
            raise ValueError(f"rate signal: tau_ms must be a positive number, got {tau_ms!r}")
        self.population, self.tau_ms, self.per_neuron = population, float(tau_ms), per_neuron
        self.decay = math.exp(-dt / tau_ms)
        self.scale = (1.0 - self.decay) * 1000.0 / dt  # Hz per spike per step

    def update(self, value: torch.Tensor) -> None:
        spikes = self.population.spikes.to(value.dtype)
        # the fraction as count / n, the division the compiled kernel does
        fired = spikes if self.per_neuron else spikes.sum() / float(spikes.numel())
        value.copy_(value * self.decay + fired * self.scale)

    def reset(self, value: torch.Tensor) -> None:
        value.zero_()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "population": self.population.name, "tau_ms": self.tau_ms,
                "per_neuron": self.per_neuron}


class CountError(Derived):
    """``target - scale * count`` per sample and neuron: the error of a population's spike
    counts since the sample began (``net.reset_state()``) against a target that the
    script sets per sample (``net.modulators.set_target``), e.g. a label's firing."""

    kind = "count error"
    stateful = True

    def __init__(self, population: "Population", scale: float, dtype: torch.dtype) -> None:
        if not math.isfinite(scale):
            raise ValueError("count error signal: scale must be finite")
        self.population, self.scale = population, float(scale)
        p = population
        self.counts = torch.zeros((p.batch, p.n), dtype=dtype, device=p.device)
        self.target = torch.zeros_like(self.counts)

    def refresh(self, value: torch.Tensor) -> None:
        value.copy_(self.target - self.scale * self.counts)

    def update(self, value: torch.Tensor) -> None:
        self.counts.add_(self.population.spikes.to(self.counts.dtype))
        self.refresh(value)

    def reset(self, value: torch.Tensor) -> None:
        self.counts.zero_()
        value.copy_(self.target)

    def arrays(self) -> dict[str, torch.Tensor]:
        """``counts`` since the sample began and the ``target``, ``(batch, n)`` each."""
        return {"counts": self.counts, "target": self.target}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "population": self.population.name, "scale": self.scale}


class SoftCompetition(Derived):
    r"""Soft winner-take-all across a population, per sample: :math:`y_j =
    e^{x_j/T} / \sum_k e^{x_k/T}` of its state variable ``x`` (default the graded
    pre-activation ``z``), temperature :math:`T` (Moraitis et al. 2022; the competition
    of SoftHebb). Computed after the neuron update of each step; the sum runs over the
    neurons in order (both backends), after subtracting the row's largest value."""

    kind = "soft competition"
    stateful = True

    def __init__(self, population: "Population", variable: str, temperature: float,
                 channels: int | None = None) -> None:
        if variable not in population.state:
            raise ValueError(f"soft competition: population '{population.name}' has no state "
                             f"variable {variable!r} (it has {list(population.state)})")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"soft competition: temperature must be > 0, got {temperature!r}")
        if channels is None:
            channels = population.n
        if (not isinstance(channels, (int, np.integer)) or isinstance(channels, bool) or channels < 1
                or population.n % channels):
            raise ValueError(f"soft competition: channels must be an int >= 1 dividing the "
                             f"{population.n} neurons of '{population.name}', got {channels!r}")
        self.population, self.variable = population, variable
        self.temperature = float(temperature)
        #: how many neurons compete at each position (all of them by default)
        self.channels = int(channels)

    @property
    def inverse_temperature(self) -> float:
        return 1.0 / self.temperature

    def update(self, value: torch.Tensor) -> None:
        x = self.population.state[self.variable] * self.inverse_temperature
        x = x.reshape(x.shape[0], self.channels, -1)  # (batch, channels, positions)
        e = torch.exp(x - x.max(dim=1, keepdim=True).values)
        total = torch.cumsum(e, dim=1)[:, -1:]  # a running sum, in channel order
        value.copy_((e / total).reshape(value.shape))

    def reset(self, value: torch.Tensor) -> None:
        value.fill_(1.0 / self.channels)  # (no winner yet: the channels of a position share 1)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "population": self.population.name, "variable": self.variable,
                "temperature": self.temperature, "channels": self.channels}


class PopulationError(Derived):
    r"""The error of a population code, per sample and class: :math:`E_c = t_c - s\,\bar n_c`,
    where :math:`\bar n_c` is the mean spike count (since the sample began) of the
    ``n / classes`` neurons of class ``c`` (contiguous blocks) and :math:`t_c` a target
    the script sets per sample (``net.modulators.set_target``, e.g. a one-hot label
    times the count wanted). With ``wta`` it is a winner-take-all teaching signal:
    only the labelled class (the largest target) and the winner (the class of largest
    mean count; ties: the lower class) keep their error, every other class gets 0.
    Shape ``(batch, classes)``; stateful (it follows each step's spikes)."""

    kind = "population error"
    stateful = True

    def __init__(self, population: "Population", classes: int, scale: float, wta: bool,
                 dtype: torch.dtype) -> None:
        if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 1:
            raise ValueError(f"population error: classes must be a positive integer, got {classes!r}")
        classes = int(classes)
        if population.n % classes:
            raise ValueError(f"population error: population '{population.name}' has {population.n} "
                             f"neurons, not a multiple of {classes} classes")
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)) or not math.isfinite(scale):
            raise ValueError(f"population error: scale must be a finite number, got {scale!r}")
        self.population, self.classes, self.scale, self.wta = population, classes, float(scale), bool(wta)
        self.per_class = population.n // classes
        p = population
        self.counts = torch.zeros((p.batch, p.n), dtype=dtype, device=p.device)
        self.target = torch.zeros((p.batch, classes), dtype=dtype, device=p.device)

    def refresh(self, value: torch.Tensor) -> None:
        """The error from the counts so far (what the compiled kernel computes)."""
        # integer counts in float sum exactly in any order
        mean = self.counts.view(self.counts.shape[0], self.classes, self.per_class).sum(-1) / float(self.per_class)
        error = self.target - self.scale * mean
        if self.wta:
            cls = torch.arange(self.classes, device=value.device)
            keep = ((cls == self.target.argmax(1, keepdim=True))
                    | (cls == mean.argmax(1, keepdim=True)))
            error = torch.where(keep, error, torch.zeros_like(error))
        value.copy_(error)

    def update(self, value: torch.Tensor) -> None:
        self.counts.add_(self.population.spikes.to(self.counts.dtype))
        self.refresh(value)

    def reset(self, value: torch.Tensor) -> None:
        self.counts.zero_()
        self.refresh(value)

    def arrays(self) -> dict[str, torch.Tensor]:
        """``counts`` per neuron since the sample began ``(batch, n)``, the ``target`` ``(batch, classes)``."""
        return {"counts": self.counts, "target": self.target}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "population": self.population.name, "classes": self.classes,
                "scale": self.scale, "wta": self.wta}
