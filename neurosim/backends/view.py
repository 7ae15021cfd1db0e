"""What a backend sees of the network it advances: a narrow view, not the Network class.

The network builds its backend (``BACKENDS[name](net)``) and hands it itself; typed
against this protocol, the backends need not import :mod:`neurosim.network` (which
imports them), not even for type hints (``tests/test_import_graph.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

import torch

if TYPE_CHECKING:
    from neurosim.inputs import StepCurrent
    from neurosim.modulators import Modulators
    from neurosim.monitors import Monitor
    from neurosim.population import Population
    from neurosim.projection import Projection
    from neurosim.rules.shared_traces import SharedTraces
    from neurosim.schedule import Schedule


class StepClock(Protocol):
    #: the index of the next step; the backend advances it
    step: int


class SimulatedNetwork(Protocol):
    """The parts of a network its backend reads (and the few it calls back)."""

    clock: StepClock
    batch: int
    device: torch.device
    dtype: torch.dtype
    dtype_name: str
    parallel: bool
    threads: int | None
    populations: dict[str, Population]
    projections: dict[str, Projection]
    monitors: dict[str, Monitor]
    inputs: list[StepCurrent]
    rules: dict[str, Any]
    modulators: Modulators
    shared_traces: SharedTraces
    callbacks: list[tuple[Callable[[Any], Any], int]]
    timings: dict[str, float]
    _schedule: Schedule

    def after_step_python(self, step: int) -> None:
        """Modulators, traces and rules of one step in Python (for a compiled backend)."""

    def _flush(self) -> None:
        """Write what the monitors recorded to the log."""
