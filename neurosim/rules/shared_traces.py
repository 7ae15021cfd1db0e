"""Spike traces stored once per population side, however many rules read them.

Declared rules ask for their traces here (:meth:`SharedTraces.get`): two rules
that need a trace of the same spikes (the same population, seen through the same
delay) with the same time constant and mode get the same
:class:`~neurosim.rules.base.SpikeTrace`, updated once per step, before the rules'
own per-step work (neuron state, eligibility).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from neurosim.population import Population
    from neurosim.rules.base import SpikeTrace


class SharedTraces:
    """The network's spike traces of declared rules, keyed by what they follow."""

    def __init__(self) -> None:
        #: (population name, delay in steps, tau in ms, mode) -> (population, delay, trace)
        self.items: dict[tuple[str, int, float, str], tuple["Population", int, "SpikeTrace"]] = {}

    def get(self, population: "Population", delay: int, tau_ms: float, mode: str, batch: int,
            dt: float, device: torch.device, dtype: torch.dtype) -> "SpikeTrace":
        """The trace of ``population``'s spikes ``delay`` steps late (new if none yet)."""
        from neurosim.rules.base import SpikeTrace

        key = (population.name, int(delay), float(tau_ms), mode)
        if key not in self.items:
            trace = SpikeTrace((batch, population.n), tau_ms, dt, mode, device, dtype)
            self.items[key] = (population, int(delay), trace)
        return self.items[key][2]

    def __len__(self) -> int:
        return len(self.items)

    def update(self, t: int) -> None:
        """Traces phase: decay every trace and add the spikes that reach it in step ``t``."""
        for population, delay, trace in self.items.values():
            trace.update(population.spikes_at(t - delay))

    def describe(self) -> str:
        parts = [f"{pop.name}{f'[-{delay}]' if delay else ''} tau {tau:g} {mode}"
                 for (_, _, tau, mode), (pop, delay, _) in self.items.items()]
        return f"spike traces ({'; '.join(parts)})"

    def entries(self) -> list[tuple[Any, int, "SpikeTrace"]]:
        return list(self.items.values())
