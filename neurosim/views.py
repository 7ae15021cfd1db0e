"""Narrow views: what an object the network holds may see of it, instead of the whole
:class:`~neurosim.network.Network`.

The network (the front door) imports every part; the parts import neither the network
nor a backend, not even for type hints (``tests/test_import_graph.py``). A part that
needs something of its network is typed against one of these protocols, which the
network satisfies. (What learning rules see: :class:`neurosim.rules.host.RuleHost`; a
backend: :class:`neurosim.backends.view.SimulatedNetwork`.) The network's own helpers are
typed the same way: its run loop (:class:`RunHost`, :mod:`neurosim.runner`) and its state
handling (:class:`StateHost`, :mod:`neurosim.network_state`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    import numpy as np

    from neurosim.modulators import Modulators
    from neurosim.monitors import Monitor
    from neurosim.population import Population
    from neurosim.projection import Projection
    from neurosim.recording.dataset_spec import DatasetSpec


class ModulatorHost(Protocol):
    """What the modulator registry (``net.modulators``) sees of its network."""

    @property
    def dt(self) -> float: ...

    batch: int
    seed: int
    device: torch.device
    dtype: torch.dtype
    #: set when the network's layout changed (its step is built anew before the next run)
    _dirty: bool

    def _check_own(self, obj: Any, where: str) -> None:
        """Refuse a population or projection of another network."""


class Signal(Protocol):
    """What a derived signal (:mod:`neurosim.derived_signals`) reads of a modulator."""

    name: str

    def current(self) -> torch.Tensor:
        """The value this step."""


class NetworkClock(Protocol):
    """The network's :class:`~neurosim.network.Clock`."""

    dt: float
    #: the index of the next step
    step: int

    @property
    def time_ms(self) -> float: ...


class RunLog(Protocol):
    """What a run calls on the network's log (:class:`~neurosim.recording.HDF5Log`,
    :class:`~neurosim.recording.MemoryLog`)."""

    def begin_run(self, attrs: dict[str, Any], specs: list[DatasetSpec],
                  static: dict[str, np.ndarray], start_step: int = 0) -> None: ...

    def append(self, chunk: dict[str, np.ndarray], steps_done: int) -> None: ...

    def end_run(self, completed: bool, attrs: dict[str, Any], outcome: str | None = None) -> None: ...


class Stepper(Protocol):
    """What the run loop calls on a backend (``compile`` too, when the backend has one)."""

    def advance(self, n_steps: int, profile: bool) -> None: ...


class StateHost(Protocol):
    """What the state handling (:mod:`neurosim.network_state`) sees of its network."""

    clock: NetworkClock
    populations: dict[str, Population]
    projections: dict[str, Projection]
    rules: dict[str, Any]
    modulators: Modulators

    @property
    def dt(self) -> float: ...

    def _prepare(self) -> None:
        """Build the schedule if the layout changed (spike rings get their final length)."""

    def describe(self) -> dict[str, Any]:
        """The network as a JSON-able dict."""


class RunHost(Protocol):
    """What the run loop (:class:`neurosim.runner.Runner`) sees of its network."""

    clock: NetworkClock
    populations: dict[str, Population]
    rules: dict[str, Any]
    batch: int
    seed: int
    device: torch.device
    dtype_name: str
    backend_name: str
    backend: Stepper
    log: RunLog
    monitors: dict[str, Monitor]
    #: steps per chunk: monitor buffers hold this many, and the log is written once per chunk
    _chunk_steps: int
    #: what processes of a run on several exchange after each slice of steps (see
    #: neurosim.distributed): ``slice_steps(net)``, ``before_slice()``, ``exchange(t0, k, stop)``
    _exchange: Any
    #: the batch of the whole run (a data-parallel run's processes each hold ``batch`` rows)
    batch_global: int

    @property
    def dt(self) -> float: ...

    @property
    def min_delay(self) -> int: ...

    def _prepare(self) -> None:
        """Build the schedule and monitor buffers if the layout changed."""

    def describe(self) -> dict[str, Any]:
        """The network as a JSON-able dict (written into the log)."""
