"""The torch backend: every phase of a step as tensor operations on CPU or CUDA."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from neurosim.threads import stepping_threads

if TYPE_CHECKING:
    from neurosim.backends.view import SimulatedNetwork


class TorchBackend:
    """Advances a :class:`~neurosim.Network` one step at a time with torch tensors.

    Each step runs the phases of :attr:`Network.schedule` in order. With
    profiling on, each phase is timed (synchronising the GPU, which slows the
    run a little), and the totals accumulate in ``net.timings``.
    """

    name = "torch"

    def __init__(self, net: "SimulatedNetwork") -> None:
        self.net = net

    def invalidate(self) -> None:
        """Nothing to rebuild: the torch backend reads the schedule every step."""

    def advance(self, n_steps: int, profile: bool) -> None:
        if self.net.device.type == "cpu":
            # one step is many small operations: threads only compete (see neurosim.threads)
            with stepping_threads(self.net.threads, False):
                self._advance(n_steps, profile)
        else:
            self._advance(n_steps, profile)

    def _advance(self, n_steps: int, profile: bool) -> None:
        net = self.net
        phases = net._schedule.phases
        if not profile:
            for _ in range(n_steps):
                step = net.clock.step
                for phase in phases:
                    phase.run(step)
                net.clock.step = step + 1
            return
        sync = (torch.cuda.synchronize if net.device.type == "cuda" else (lambda: None))
        timings = net.timings
        for _ in range(n_steps):
            step = net.clock.step
            for phase in phases:
                t0 = time.perf_counter()
                phase.run(step)
                sync()
                timings[phase.name] = timings.get(phase.name, 0.0) + time.perf_counter() - t0
            net.clock.step = step + 1
