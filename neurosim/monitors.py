"""Monitors: what to record. Where it goes is the network's log (memory or HDF5).

Monitors keep a chunk of recent steps in preallocated buffers on the
network's device; the network hands whole chunks to the log, never single
steps, so recording costs one copy per step on the device and one transfer per
chunk, and memory stays flat however long the run is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from neurosim.recording.dataset_spec import DatasetSpec

if TYPE_CHECKING:
    from neurosim.population import Population
    from neurosim.projection import Projection


class Monitor:
    """Base class: record a step into the buffer; drain the buffer as arrays."""

    name: str
    #: the schedule entry kind that records it (see neurosim.schedule.KINDS): each backend
    #: implements the kind; ``python``: :meth:`record` runs from Python
    record_kind: str = "python"
    #: False pauses the monitor: runs record nothing into it until it is True again (set
    #: it between runs, e.g. to log only sampled presentations of a long training run)
    active: bool = True

    @property
    def records_from_python(self) -> bool:
        """Recorded by Python (at the ends of compiled stretches on a compiled backend)."""
        return self.record_kind == "python"

    def arrays(self) -> dict[str, torch.Tensor]:
        """The buffers a backend records into, by name (the monitor's state contract)."""
        return {}

    @property
    def rows_filled(self) -> int:
        """Buffer rows written since the last :meth:`drain` (the next row to write)."""
        return len(self._steps)

    def recorded_steps(self, start: int, stop: int) -> None:
        """A backend ran steps [start, stop) and filled the buffers for the due ones."""

    def datasets(self) -> list[DatasetSpec]:
        raise NotImplementedError

    def static(self) -> dict[str, np.ndarray]:
        """Arrays written once (e.g. CSR structure, recorded neuron indices)."""
        return {}

    def allocate(self, chunk_steps: int) -> None:
        raise NotImplementedError

    def record(self, step: int) -> None:
        """Record ``step`` from Python (monitors of kind ``python`` only)."""
        raise NotImplementedError

    def drain(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def bytes_per_step(self) -> int:
        return 0

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError


#: events a compact spike monitor holds on the device between log writes (16 B each)
DEVICE_EVENTS = 1 << 22


class SpikeMonitor(Monitor):
    """Records every spike of a population as an event (step, neuron, batch row).

    Log datasets: ``spikes/<population>/step`` (int64), ``.../neuron`` (int32),
    ``.../batch`` (int32), sorted by step.
    """

    record_kind = "record_spikes"

    def __init__(self, population: "Population", name: str | None = None) -> None:
        self.population = population
        self.name = name or population.name
        self._raster: torch.Tensor | None = None
        self._events: tuple[Any, ...] | None = None
        self._steps: list[int] = []
        self.device_events = False
        self.drains = 0

    def datasets(self):
        base = f"spikes/{self.name}"
        attrs = {"population": self.population.name}
        return [DatasetSpec(f"{base}/step", "int64", (), {**attrs, "unit": "step"}),
                DatasetSpec(f"{base}/neuron", "int32", (), attrs),
                DatasetSpec(f"{base}/batch", "int32", (), attrs)]

    #: record compact (step, neuron, row) events in buffers on the device instead of a
    #: raster (set by the network for the torch static step on CUDA: a raster of a large
    #: population fills in a few dozen steps, and each chunk is a log write)
    compact: bool = False

    def bytes_per_step(self):
        if self.compact:  # (a chunk is then as long as the run allows; events fill on their own)
            return 16
        # the whole population's: every process of a partitioned run picks the same chunk
        return self.population.batch * self.population.n_global

    def allocate(self, chunk_steps):
        p = self.population
        self._steps = []
        self._events = None
        self.device_events = False
        if self.compact:
            self.use_event_buffer(DEVICE_EVENTS, device=p.device)
        else:
            self._raster = torch.zeros((chunk_steps, p.batch, p.n), dtype=torch.bool, device=p.device)

    def use_event_buffer(self, capacity: int, device: torch.device | None = None) -> None:
        """Record (step, neuron, row) events directly instead of a raster (compiled
        backends; on ``device``: the torch static step's compact records).

        Memory is then proportional to the number of spikes, not to neurons x steps;
        a backend flushes the log early when fewer than batch x n slots are left.
        """
        p = self.population
        capacity = max(int(capacity), p.batch * p.n)
        if device is not None:  # (room for one step's whole padded list: up to 1.5 x batch x n)
            capacity += self._step_room()
        if device is None:
            self._events = (np.empty(capacity, np.int64), np.empty(capacity, np.int32),
                            np.empty(capacity, np.int32), np.zeros(1, np.int64))
            self._event_arrays = {f"events.{k}": torch.from_numpy(a)
                                  for k, a in zip(("step", "neuron", "batch", "fill"), self._events)}
        else:  # written by the torch static step, which keeps count of the room left
            self._events = (torch.empty(capacity, dtype=torch.int64, device=device),
                            torch.empty(capacity, dtype=torch.int32, device=device),
                            torch.empty(capacity, dtype=torch.int32, device=device),
                            torch.zeros(1, dtype=torch.int64, device=device))
            self._event_arrays = dict(zip(("events.step", "events.neuron", "events.batch",
                                           "events.fill"), self._events))
        self.device_events = device is not None
        self._raster = torch.zeros((0, p.batch, p.n), dtype=torch.bool)

    def arrays(self):
        """``raster`` ``(chunk steps, batch, n)`` bool; with an event buffer instead,
        ``events.step``, ``events.neuron``, ``events.batch`` and ``events.fill`` (a
        one-element count of the events written)."""
        if self._events is not None:
            return self._event_arrays
        return {"raster": self._raster}

    @property
    def event_buffer_full(self) -> bool:
        """Whether one more step's spikes might not fit into the event buffer."""
        p = self.population
        # (device buffers, written a padded list at a time, need room for the longest)
        room = self._step_room() if self.device_events else p.batch * p.n
        return self._events is not None and int(self._events[3][0]) + room > self._events[0].shape[0]

    def _step_room(self) -> int:
        """Entries one step of the torch static step may write (its padded spike list,
        at most 1.5 x batch x n + 16)."""
        return 2 * self.population.batch * self.population.n + 16

    def recorded_steps(self, start, stop):
        if self._events is None:
            self._steps.extend(range(start, stop))

    def drain(self):
        self.drains += 1  # (a backend's count of what its buffer holds is then out of date)
        base = f"spikes/{self.name}"
        # neuron indices of the whole population, batch rows of the whole batch: a
        # partitioned run's share starts at offset, a data-parallel run's rows at row_offset
        offset = np.int32(self.population.offset)
        row_offset = np.int32(self.population.row_offset)
        if self._events is not None:
            steps, neurons, rows, fill = self._events
            k = int(fill[0])
            if self.device_events:
                # (a copy: on the CPU .cpu() would hand out the buffer itself)
                steps, neurons, rows = (x[:k].to("cpu", copy=True).numpy() for x in (steps, neurons, rows))
                fill.zero_()
                return {f"{base}/step": steps, f"{base}/neuron": neurons + offset,
                        f"{base}/batch": rows + row_offset}
            fill[0] = 0
            return {f"{base}/step": steps[:k].copy(), f"{base}/neuron": neurons[:k] + offset,
                    f"{base}/batch": rows[:k] + row_offset}
        k = len(self._steps)
        idx = self._raster[:k].nonzero().cpu().numpy() if k else np.zeros((0, 3), np.int64)
        steps = np.asarray(self._steps, dtype=np.int64)[idx[:, 0]]
        self._steps = []
        return {f"{base}/step": steps, f"{base}/neuron": (idx[:, 2] + offset).astype(np.int32),
                f"{base}/batch": (idx[:, 1] + row_offset).astype(np.int32)}

    def describe(self):
        return {"type": "SpikeMonitor", "name": self.name, "population": self.population.name}


class StateMonitor(Monitor):
    """Samples state variables of a subset of neurons every ``every`` steps.

    Log datasets: ``state/<name>/<variable>`` with shape (samples, batch, k) for
    the k recorded neurons, and ``state/<name>/step`` (int64) giving the step of
    each sample; the recorded neuron indices are in ``state/<name>/neurons``.
    """

    record_kind = "record_state"

    def __init__(self, population: "Population", variables: Sequence[str],
                 neurons: Sequence[int] | np.ndarray | None = None, every: int = 1,
                 name: str | None = None) -> None:
        if isinstance(variables, str):
            variables = [variables]
        known = list(population.state) + list(population.inputs)
        unknown = [v for v in variables if v not in known]
        if unknown or not variables:
            raise ValueError(f"StateMonitor on '{population.name}': unknown variable(s) {unknown}; "
                             f"{population.model_name} has {known}")
        if not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"StateMonitor: 'every' must be a positive integer of steps, got {every!r}")
        idx = np.arange(population.n) if neurons is None else np.asarray(neurons, dtype=np.int64).ravel()
        if idx.size == 0 or idx.min() < 0 or idx.max() >= population.n:
            raise ValueError(f"StateMonitor: neuron indices must be in [0, {population.n})")
        self.population, self.variables, self.every = population, list(variables), int(every)
        #: whether every neuron is recorded (then no index is applied)
        self.all_neurons = neurons is None
        self.neurons = idx
        self.name = name or population.name
        self._index = torch.as_tensor(idx, device=population.device)

    def datasets(self):
        base, k = f"state/{self.name}", self.neurons.size
        p = self.population
        model_vars = getattr(p.model, "state_variables", {})
        specs = [DatasetSpec(f"{base}/step", "int64", (), {"unit": "step", "every": self.every})]
        for v in self.variables:
            unit = model_vars[v].unit if v in model_vars else ""
            specs.append(DatasetSpec(f"{base}/{v}", str(p.dtype).replace("torch.", ""), (p.batch, k),
                                     {"unit": unit, "population": p.name}))
        return specs

    def static(self):
        return {f"state/{self.name}/neurons": self.neurons}

    def bytes_per_step(self):
        return self.population.dtype.itemsize * self.population.batch * self.neurons.size * len(self.variables) // self.every + 1

    def allocate(self, chunk_steps):
        p = self.population
        rows = -(-chunk_steps // self.every) + 1
        self._buf = {v: torch.zeros((rows, p.batch, self.neurons.size), dtype=p.dtype,
                                    device=p.device) for v in self.variables}
        self._steps: list[int] = []

    def arrays(self):
        """``neurons`` (the recorded indices, on the device) and ``buffer.<variable>``
        ``(rows, batch, k)``; a due step ``t`` (``t % every == 0``) goes to row
        :attr:`rows_filled`, from the population's ``state.<variable>`` or
        ``input.<variable>``."""
        return {"neurons": self._index, **{f"buffer.{v}": b for v, b in self._buf.items()}}

    def source(self, var: str) -> str:
        """The name in the population's :meth:`~neurosim.population.Population.arrays`
        that ``var`` is sampled from."""
        return f"state.{var}" if var in self.population.state else f"input.{var}"

    def recorded_steps(self, start, stop):
        first = -(-start // self.every) * self.every
        self._steps.extend(range(first, stop, self.every))

    def drain(self):
        k = len(self._steps)
        base = f"state/{self.name}"
        out = {f"{base}/step": np.asarray(self._steps, dtype=np.int64)}
        for v in self.variables:
            out[f"{base}/{v}"] = self._buf[v][:k].cpu().numpy().copy()
        self._steps = []
        return out

    def describe(self):
        return {"type": "StateMonitor", "name": self.name, "population": self.population.name,
                "variables": self.variables, "neurons": int(self.neurons.size), "every": self.every}


class SpikeCounter(Monitor):
    """Counts each neuron's spikes, per batch row, on the device; nothing is logged.

    ``counts`` is a float tensor (batch, n); :meth:`reset` zeroes it. This is what a
    classifier reads out after presenting a sample (e.g. the MNIST replay).
    """

    record_kind = "count_spikes"

    def __init__(self, population: "Population", name: str | None = None) -> None:
        self.population = population
        self.name = name or population.name
        self.counts = torch.zeros((population.batch, population.n), dtype=torch.float32,
                                  device=population.device)

    def datasets(self):
        return []

    def allocate(self, chunk_steps):
        pass

    def arrays(self):
        """``counts`` ``(batch, n)`` float: spikes per neuron and batch row so far."""
        return {"counts": self.counts}

    @property
    def rows_filled(self) -> int:
        return 0

    def drain(self):
        return {}

    def reset(self) -> None:
        self.counts.zero_()

    def describe(self):
        return {"type": "SpikeCounter", "name": self.name, "population": self.population.name}


class SnapshotMonitor(Monitor):
    """Base of monitors that copy a whole tensor to the host every ``every`` steps.

    Subclasses set ``group`` (log group), ``value_key`` and implement :meth:`snapshot`.
    Recorded from Python (at the ends of compiled stretches on the numba backend).
    """

    records_from_python = True
    group = ""
    value_key = "values"

    def __init__(self, name: str, every: int) -> None:
        if not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"{type(self).__name__}: 'every' must be a positive integer of steps, "
                             f"got {every!r}")
        self.name, self.every = name, int(every)
        self._snaps: list[np.ndarray] = []
        self._steps: list[int] = []

    def snapshot(self) -> torch.Tensor:
        raise NotImplementedError

    def value_attrs(self) -> dict[str, Any]:
        return {}

    def datasets(self):
        base = f"{self.group}/{self.name}"
        return [DatasetSpec(f"{base}/step", "int64", (), {"unit": "step", "every": self.every}),
                DatasetSpec(f"{base}/{self.value_key}", "float32", tuple(self.snapshot().shape),
                            self.value_attrs())]

    def allocate(self, chunk_steps):
        self._snaps, self._steps = [], []

    def record(self, step):
        if step % self.every == 0 and self.active:
            self._snaps.append(self.snapshot().detach().to("cpu", torch.float32).numpy().copy())
            self._steps.append(step)

    def recorded_steps(self, start, stop):
        self.record(stop - 1)

    def drain(self):
        base = f"{self.group}/{self.name}"
        shape = (0,) + tuple(self.snapshot().shape)
        values = np.stack(self._snaps) if self._snaps else np.zeros(shape, np.float32)
        out = {f"{base}/step": np.asarray(self._steps, dtype=np.int64),
               f"{base}/{self.value_key}": values}
        self._snaps, self._steps = [], []
        return out


class WeightMonitor(SnapshotMonitor):
    """Snapshots a projection's weights every ``every`` steps.

    Log datasets: ``weights/<name>/step`` and ``weights/<name>/values`` with shape
    (snapshots, n_pre, n_post) for dense storage or (snapshots, synapses) for CSR,
    whose structure is in ``weights/<name>/indptr`` and ``.../indices``.
    """

    group, value_key = "weights", "values"

    def __init__(self, projection: "Projection", every: int, name: str | None = None) -> None:
        self.projection = projection
        super().__init__(name or projection.name, every)

    def snapshot(self):
        return self.projection.weight

    def value_attrs(self):
        return {"projection": self.projection.name,
                "storage": "csr" if self.projection.sparse else "dense",
                "n_pre": self.projection.pre.n, "n_post": self.projection.post.n}

    def static(self):
        pr = self.projection
        if not pr.sparse:
            return {}
        return {f"weights/{self.name}/indptr": pr.indptr.cpu().numpy(),
                f"weights/{self.name}/indices": pr.indices.cpu().numpy()}

    def describe(self):
        return {"type": "WeightMonitor", "name": self.name, "projection": self.projection.name,
                "every": self.every}


class ModulatorMonitor(SnapshotMonitor):
    """Records a neuromodulator's value every ``every`` steps.

    Log datasets: ``modulators/<name>/step`` and ``modulators/<name>/value``
    (samples,) for a scalar modulator, (samples, n) for a vector, (samples, batch, n)
    for a per-sample signal.
    """

    group, value_key = "modulators", "value"

    def __init__(self, modulator: Any, every: int) -> None:
        self.modulator = modulator
        super().__init__(modulator.name, every)

    def snapshot(self):
        return self.modulator.current()

    def describe(self):
        return {"type": "ModulatorMonitor", "name": self.name, "every": self.every}
