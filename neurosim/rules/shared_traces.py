"""Spike traces stored once per population side, however many rules read them.

Declared rules ask for their traces here (:meth:`SharedTraces.get`): two rules
that need a trace of the same spikes (the same population, seen through the same
delay) with the same time constant and mode get the same
:class:`~neurosim.rules.base.SpikeTrace`, updated once per step, before the rules'
own per-step work (neuron state, eligibility).

A projection with per-synapse delays sees its presynaptic population through several
delays at once: its trace is keyed by the tuple of delays and has one block of
``n`` columns per delay, ``(batch, n * len(delays))``, block ``q`` following the
spikes ``delays[q]`` steps late.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from neurosim.population import Population
    from neurosim.rules.base import SpikeTrace

#: one delay in steps, or one per column block (a projection with per-synapse delays)
Delays = int | tuple[int, ...]

class SharedTraces:
    """The network's spike traces of declared rules, keyed by what they follow."""

    def __init__(self) -> None:
        #: (population name, delay(s) in steps, tau in ms, mode) -> (population, delay(s), trace)
        self.items: dict[tuple[str, Delays, float, str], tuple["Population", Delays, "SpikeTrace"]] = {}

    def get(self, population: "Population", delay: Delays, tau_ms: float, mode: str, batch: int,
            dt: float, device: torch.device, dtype: torch.dtype) -> "SpikeTrace":
        """The trace of ``population``'s spikes ``delay`` steps late (new if none yet);
        ``delay`` a tuple: one block of columns per delay."""
        from neurosim.rules.base import SpikeTrace

        delay = tuple(int(d) for d in delay) if isinstance(delay, tuple) else int(delay)
        key = (population.name, delay, float(tau_ms), mode)
        if key not in self.items:
            blocks = len(delay) if isinstance(delay, tuple) else 1
            trace = SpikeTrace((batch, population.n * blocks), tau_ms, dt, mode, device, dtype)
            self.items[key] = (population, delay, trace)
        return self.items[key][2]

    def __len__(self) -> int:
        return len(self.items)

    def update(self, t: int) -> None:
        """Traces phase: decay every trace and add the spikes that reach it in step ``t``."""
        for population, delay, trace in self.items.values():
            if isinstance(delay, tuple):
                trace.update(torch.cat([population.spikes_at(t - d) for d in delay], dim=1))
            else:
                trace.update(population.spikes_at(t - delay))

    def describe(self) -> str:
        def late(delay: Delays) -> str:
            if isinstance(delay, tuple):
                return f"[-{','.join(str(d) for d in delay)}]"
            return f"[-{delay}]" if delay else ""

        parts = [f"{pop.name}{late(delay)} tau {tau:g} {mode}"
                 for (_, _, tau, mode), (pop, delay, _) in self.items.items()]
        return f"spike traces ({'; '.join(parts)})"

    def entries(self) -> list[tuple[Any, int, "SpikeTrace"]]:
        return list(self.items.values())
