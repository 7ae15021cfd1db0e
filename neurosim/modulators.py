"""Neuromodulators: named signals that the network broadcasts to learning rules.

A modulator is a scalar (one value for the whole network, e.g. reward or
dopamine) or a vector with one value per neuron of a population (e.g. a
per-neuron error). Its value can be set by code (``set``), kicked (``pulse``),
decay with a time constant, and be driven by the spikes of a modulatory
population (each spike adds ``gain / n``, so the signal is the population's
filtered mean activity). Rules read modulators by name and see nothing else of
the network, which keeps them local.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from neurosim.derived_signals import (CountError, Derived, PopulationError, PopulationRate, Product, Sigmoid,
                                      SoftCompetition)

if TYPE_CHECKING:
    from neurosim.population import Population
    from neurosim.views import ModulatorHost


def linear_map(matrix: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``matrix @ source`` for a source ``(m,)`` or ``(batch, m)``, summed over ``m`` in
    order (a running sum), as the compiled backend sums it, so both give the same bits."""
    products = matrix * source.unsqueeze(-2)  # (..., n, m)
    acc = products[..., 0]
    for q in range(1, products.shape[-1]):
        acc = acc + products[..., q]
    return acc


class Modulator:
    """One named signal; see :class:`Modulators`."""

    def __init__(self, name: str, size: int | None, tau_ms: float | None, initial: float,
                 dt: float, device: torch.device, dtype: torch.dtype, baseline: float = 0.0,
                 batch: int | None = None) -> None:
        if tau_ms is not None and not (tau_ms > 0):
            raise ValueError(f"modulator '{name}': tau_ms must be > 0 (or None for no decay)")
        self.name, self.size, self.tau_ms = name, size, tau_ms
        #: one value per sample too: shape (batch, size)
        self.per_sample = batch is not None
        shape = () if size is None else ((int(batch),) if batch is not None else ()) + (int(size),)
        self.value = torch.full(shape, float(initial), dtype=dtype, device=device)
        if not math.isfinite(baseline):
            raise ValueError(f"modulator '{name}': baseline must be finite")
        self.decay = 1.0 if tau_ms is None else math.exp(-dt / tau_ms)
        self.baseline = float(baseline)  # the level it decays to (tonic dopamine)
        self.driver: tuple["Population", float] | None = None
        self.feedback: tuple["Modulator", torch.Tensor] | None = None
        #: how the value is computed from other signals or spikes (neurosim.derived_signals)
        self.derived: Derived | None = None

    def arrays(self) -> dict[str, torch.Tensor]:
        """The arrays a backend steps, by name (the signal's state contract): ``value``
        (shape ``()``, ``(n,)`` or ``(batch, n)``), a random feedback's ``matrix``, and
        a derived signal's own state (e.g. a count error's ``counts`` and ``target``)."""
        out = {"value": self.value}
        if self.feedback is not None:
            out["matrix"] = self.feedback[1]
        if self.derived is not None:
            out.update(self.derived.arrays())
        return out

    def current(self) -> torch.Tensor:
        """The value now (a random-feedback modulator is recomputed from its source)."""
        if self.feedback is not None:
            source, matrix = self.feedback
            self.value.copy_(linear_map(matrix, source.current()))
        elif self.derived is not None and not self.derived.stateful:
            self.derived.compute(self.value)
        return self.value

    @property
    def computed(self) -> bool:
        """Whether the step computes it from other signals or spikes (random feedback or
        a derived signal)."""
        return self.feedback is not None or self.derived is not None

    @property
    def written_by_the_step(self) -> bool:
        """Whether the step itself may change it (:attr:`dynamic` or :attr:`computed`);
        if not, only Python code changes it."""
        return self.dynamic or self.computed

    @property
    def dynamic(self) -> bool:
        """Whether it changes by itself every step (decay or a driving population)."""
        return self.decay != 1.0 or self.driver is not None

    def step(self, t: int) -> None:
        if self.decay != 1.0:
            if self.baseline:
                self.value.sub_(self.baseline).mul_(self.decay).add_(self.baseline)
            else:
                self.value.mul_(self.decay)
        if self.driver is not None:
            pop, gain = self.driver
            self.value.add_(pop.spikes.to(self.value.dtype).mean() * gain)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "per_sample": self.per_sample,
                "tau_ms": self.tau_ms, "baseline": self.baseline,
                "driven_by": self.driver[0].name if self.driver else None,
                "random_feedback_from": self.feedback[0].name if self.feedback else None,
                "derived": self.derived.describe() if self.derived else None}


class Modulators:
    """The network's registry of modulators (``net.modulators``).

    Example:
        >>> net.modulators.add("dopamine", tau_ms=200.0)          # doctest: +SKIP
        >>> net.modulators.pulse("dopamine", 0.5)                 # a reward arrives
        >>> net.modulators.add("error", size=10)                  # one value per output neuron
        >>> net.modulators.set("error", torch.randn(10))
    """

    def __init__(self, net: "ModulatorHost") -> None:
        self._net = net
        self._items: dict[str, Modulator] = {}

    def add(self, name: str, *, size: int | None = None, tau_ms: float | None = None,
            initial: float | None = None, baseline: float = 0.0,
            per_sample: bool = False) -> Modulator:
        """Register a modulator: scalar (``size=None``) or one value per neuron, and with
        ``per_sample=True`` one such vector per sample of the batch (``(batch, size)``:
        e.g. each sample's error; three-factor rules then keep one eligibility per sample).

        With ``tau_ms`` it relaxes to ``baseline`` (a tonic level):
        :math:`M \\leftarrow b + (M - b)\\,e^{-\\Delta t/\\tau}` each step. It starts at
        ``initial`` (default: the baseline).
        """
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"modulator name must be a non-empty string without '/', got {name!r}")
        if name in self._items:
            raise ValueError(f"a modulator named {name!r} already exists")
        if size is not None and (not isinstance(size, (int, np.integer)) or size < 1):
            raise ValueError(f"modulator '{name}': size must be a positive integer or None")
        if per_sample and size is None:
            raise ValueError(f"modulator '{name}': per_sample needs a size (one value per neuron)")
        net = self._net
        mod = Modulator(name, size, tau_ms, baseline if initial is None else initial, net.dt,
                        net.device, net.dtype, baseline, net.batch if per_sample else None)
        self._items[name] = mod
        net._dirty = True
        return mod

    def drive(self, name: str, population: "Population", gain: float = 1.0) -> None:
        """Let ``population``'s spikes drive scalar modulator ``name``: each step adds
        ``gain`` times the fraction of its neurons that fired."""
        mod = self[name]
        if mod.size is not None:
            raise ValueError(f"modulator '{name}': only scalar modulators can be driven by a population")
        self._net._check_own(population, f"modulator '{name}': drive")
        if getattr(population, "graded", False):
            raise ValueError(f"modulator '{name}': drive: population '{population.name}' is graded "
                             "(it emits values, not spikes); spike-driven signals need a spiking one")
        mod.driver = (population, float(gain))
        self._net._dirty = True

    def add_random_feedback(self, name: str, source: str, size: int, *, scale: float = 1.0) -> Modulator:
        """A per-neuron signal ``B @ source`` through fixed random weights ``B`` (size x source size).

        This is how an error computed at the output (``source``, one value per
        output neuron) reaches hidden neurons in feedback alignment / broadcast
        alignment (Lillicrap et al. 2016; Nokland 2016; Samadi et al. 2017): each
        hidden neuron gets its own fixed random mixture of the output errors. ``B``
        has entries drawn from N(0, scale**2 / source size), from the network seed.
        """
        from neurosim.seeding import numpy_stream

        src = self[source]
        if src.size is None:
            raise ValueError(f"modulator '{name}': random feedback needs a vector source, "
                             f"'{source}' is a scalar")
        mod = self.add(name, size=size, per_sample=src.per_sample)
        rng = numpy_stream(self._net.seed, f"modulator/{name}/feedback")
        matrix = rng.normal(0.0, scale / np.sqrt(src.size), size=(size, src.size))
        mod.feedback = (src, torch.as_tensor(matrix, dtype=mod.value.dtype, device=mod.value.device))
        return mod

    # -- derived signals (computed in the step; see neurosim.derived_signals) ---------------
    def _derived(self, name: str, shape: tuple[int, ...], derived: Derived) -> Modulator:
        size = shape[-1] if shape else None
        mod = self.add(name, size=size, per_sample=len(shape) == 2)
        if tuple(mod.value.shape) != shape:
            del self._items[name]
            raise ValueError(f"modulator '{name}': shape {shape} is not (), (n,) or (batch, n)")
        mod.derived = derived
        derived.reset(mod.value) if derived.stateful else derived.compute(mod.value)
        return mod

    def add_product(self, name: str, a: str, b: str) -> Modulator:
        """A signal ``a * b`` (broadcast: a scalar times a vector, a vector per sample...)."""
        ma, mb = self[a], self[b]
        try:
            shape = tuple(torch.broadcast_shapes(ma.value.shape, mb.value.shape))
        except RuntimeError:
            raise ValueError(f"modulator '{name}': '{a}' {tuple(ma.value.shape)} and '{b}' "
                             f"{tuple(mb.value.shape)} do not broadcast") from None
        return self._derived(name, shape, Product(ma, mb))

    def add_sigmoid(self, name: str, source: str, *, gain: float = 1.0,
                    threshold: float = 0.0) -> Modulator:
        """A gate ``1 / (1 + exp(-gain * (source - threshold)))`` between 0 and 1."""
        src = self[source]
        return self._derived(name, tuple(src.value.shape), Sigmoid(src, gain, threshold))

    def add_rate(self, name: str, population: "Population", *, tau_ms: float = 50.0,
                 per_neuron: bool = False) -> Modulator:
        """``population``'s firing rate in Hz, filtered with ``tau_ms``: one value (all
        neurons and samples) or, with ``per_neuron``, one per sample and neuron."""
        self._net._check_own(population, f"modulator '{name}': add_rate")
        if getattr(population, "graded", False):
            raise ValueError(f"modulator '{name}': add_rate: population '{population.name}' is graded "
                             "(it emits values, not spikes); spike-driven signals need a spiking one")
        shape = (population.batch, population.n) if per_neuron else ()
        return self._derived(name, shape, PopulationRate(population, tau_ms, self._net.dt,
                                                         per_neuron))

    def add_count_error(self, name: str, population: "Population", *,
                        scale: float = 1.0) -> Modulator:
        """Per sample and neuron, ``target - scale * count``: the error of ``population``'s
        spike counts since the sample began (``net.reset_state()``) against a target set
        with :meth:`set_target` (e.g. a label's expected count). Shape ``(batch, n)``."""
        self._net._check_own(population, f"modulator '{name}': add_count_error")
        if getattr(population, "graded", False):
            raise ValueError(f"modulator '{name}': add_count_error: population '{population.name}' is graded "
                             "(it emits values, not spikes); spike-driven signals need a spiking one")
        return self._derived(name, (population.batch, population.n),
                             CountError(population, scale, self._net.dtype))

    def add_soft_competition(self, name: str, population: "Population", *, variable: str = "z",
                             temperature: float = 1.0, channels: int | None = None) -> Modulator:
        """Per sample, the softmax of ``population``'s ``variable`` over its neurons at
        temperature ``temperature``: a soft winner-take-all (``(batch, n)``), computed in
        the step after the neuron update; what :class:`~neurosim.rules.SoftHebbian` reads.
        With ``channels=K`` the population is ``K`` feature maps (channel-major, as a
        :class:`~neurosim.Convolution` lays them out) and the channels compete at each
        position: the softmax runs over the ``K`` neurons ``k * n / K + p`` of position ``p``."""
        self._net._check_own(population, f"modulator '{name}': add_soft_competition")
        return self._derived(name, (population.batch, population.n),
                             SoftCompetition(population, variable, temperature, channels))

    def add_population_error(self, name: str, population: "Population", classes: int, *,
                             scale: float = 1.0, wta: bool = False) -> Modulator:
        """Per sample and class, ``target - scale * mean count`` of the class's neurons in
        ``population`` (a population code: ``n / classes`` neurons per class, in blocks),
        since the sample began; with ``wta`` only the labelled class and the winning class
        keep their error (a population winner-take-all teaching signal). The target is set
        per sample with :meth:`set_target`. Shape ``(batch, classes)``."""
        self._net._check_own(population, f"modulator '{name}': add_population_error")
        if getattr(population, "graded", False):
            raise ValueError(f"modulator '{name}': add_population_error: population '{population.name}' "
                             "is graded (it emits values, not spikes); spike-driven signals need a spiking one")
        return self._derived(name, (population.batch, classes),
                             PopulationError(population, classes, scale, wta, self._net.dtype))

    def add_linear(self, name: str, source: str, matrix: np.ndarray | torch.Tensor) -> Modulator:
        """A signal ``matrix @ source`` through a fixed matrix given by the script (size x
        source size), e.g. to spread a per-class error over each class's neurons, or a
        broadcast-alignment matrix of the script's own making (:meth:`add_random_feedback`
        draws one)."""
        src = self[source]
        if src.size is None:
            raise ValueError(f"modulator '{name}': a linear signal needs a vector source, '{source}' is a scalar")
        m = torch.as_tensor(matrix, dtype=src.value.dtype, device=src.value.device)
        if m.dim() != 2 or m.shape[1] != src.size:
            raise ValueError(f"modulator '{name}': matrix must have shape (size, {src.size}) for source "
                             f"'{source}', got {tuple(m.shape)}")
        if not torch.isfinite(m).all():
            raise ValueError(f"modulator '{name}': matrix contains NaN or inf")
        mod = self.add(name, size=int(m.shape[0]), per_sample=src.per_sample)
        mod.feedback = (src, m.clone())
        mod.current()
        return mod

    def set_target(self, name: str, target: np.ndarray | torch.Tensor) -> None:
        """The target of a count-error signal, ``(batch, n)`` (or ``(n,)`` for every sample),
        or of a population-error signal, ``(batch, classes)`` (or ``(classes,)``)."""
        mod = self[name]
        if not isinstance(mod.derived, (CountError, PopulationError)):
            raise ValueError(f"modulator '{name}' is not a count-error or population-error signal "
                             "(add_count_error, add_population_error)")
        value = torch.as_tensor(target, dtype=mod.value.dtype, device=mod.value.device)
        if value.shape not in (mod.value.shape, mod.value.shape[-1:]):
            raise ValueError(f"modulator '{name}': target must have shape {tuple(mod.value.shape)} "
                             f"or ({mod.value.shape[-1]},), got {tuple(value.shape)}")
        if not torch.isfinite(value).all():
            raise ValueError(f"modulator '{name}': target contains NaN or inf")
        mod.derived.target.copy_(value.expand_as(mod.value))
        mod.derived.refresh(mod.value)

    def reset(self) -> None:
        """A new sample: stateful derived signals (rates, count errors) start again."""
        for mod in self._items.values():
            if mod.derived is not None and mod.derived.stateful:
                mod.derived.reset(mod.value)

    def __getitem__(self, name: str) -> Modulator:
        if name not in self._items:
            known = ", ".join(repr(k) for k in self._items) or "none"
            raise KeyError(f"unknown modulator {name!r}; registered modulators: {known}")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self):
        return iter(self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def get(self, name: str) -> torch.Tensor:
        """The current value (a 0-d tensor or a vector)."""
        return self[name].current()

    def set(self, name: str, value: float | np.ndarray | torch.Tensor) -> None:
        """Set the value (NaN and wrong shapes are refused)."""
        mod = self[name]
        if mod.feedback is not None:
            raise ValueError(f"modulator '{name}' is computed from '{mod.feedback[0].name}'; set that")
        if mod.derived is not None:
            raise ValueError(f"modulator '{name}' is computed ({mod.derived.kind}); set its sources")
        value = torch.as_tensor(value, dtype=mod.value.dtype, device=mod.value.device)
        if value.shape != mod.value.shape and value.dim() != 0 and value.shape != mod.value.shape[-1:]:
            raise ValueError(f"modulator '{name}' has shape {tuple(mod.value.shape)}, got "
                             f"{tuple(value.shape)}")
        if not torch.isfinite(value).all():
            raise ValueError(f"modulator '{name}': value contains NaN or inf")
        mod.value.copy_(value.expand_as(mod.value))

    def pulse(self, name: str, amount: float) -> None:
        """Add ``amount`` to the value (a reward or a dopamine burst)."""
        if not math.isfinite(amount):
            raise ValueError(f"modulator '{name}': pulse amount must be finite")
        self[name].value.add_(amount)

    @property
    def dynamic(self) -> bool:
        return any(m.dynamic for m in self._items.values())

    @property
    def derived(self) -> bool:
        """Whether some modulator is computed from others or from spikes."""
        return any(m.computed for m in self._items.values())

    def step(self, t: int) -> None:
        """Decay and drive the dynamic modulators and follow this step's spikes (rates,
        count errors), then recompute those derived from other signals, in order."""
        for mod in self._items.values():
            if mod.dynamic:
                mod.step(t)
            if mod.derived is not None and mod.derived.stateful:
                mod.derived.update(mod.value)
        for mod in self._items.values():
            if mod.feedback is not None or (mod.derived is not None and not mod.derived.stateful):
                mod.current()

    def describe(self) -> list[dict[str, Any]]:
        return [m.describe() for m in self._items.values()]
