"""Narrow views: what an object the network holds may see of it, instead of the whole
:class:`~neurosim.network.Network`.

The network (the front door) imports every part; the parts import neither the network
nor a backend, not even for type hints (``tests/test_import_graph.py``). A part that
needs something of its network is typed against one of these protocols, which the
network satisfies. (What learning rules see: :class:`neurosim.rules.host.RuleHost`; a
backend: :class:`neurosim.backends.view.SimulatedNetwork`.)
"""

from __future__ import annotations

from typing import Any, Protocol

import torch


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
