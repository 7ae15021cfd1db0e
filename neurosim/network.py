"""The Network: owner of all populations, projections, inputs, monitors and state.

It is the user's front door: building, and preparing the schedule, happen here; running
is :mod:`neurosim.runner`'s and saving or loading state :mod:`neurosim.network_state`'s,
behind thin methods of the same names.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from neurosim import network_state, unrolling
from neurosim.backends import BACKENDS
from neurosim.backends.torch_rules import TorchRule
from neurosim.connectors import Connector
from neurosim.distributed import (Partition, PartitionedLog, SpikeExchange, data_parallel,
                                  partitioned_state, partitioning)
from neurosim.distributed.data_parallel import WeightReduction
from neurosim.gating import Gate
from neurosim.inputs import StepCurrent
from neurosim.models.base import NeuronModel
from neurosim.models.spike_generator import SpikeGenerator
from neurosim.modulators import Modulators
from neurosim.monitors import (ModulatorMonitor, Monitor, SpikeCounter, SpikeMonitor, StateMonitor,
                               WeightMonitor)
from neurosim.population import InitSpec, Population
from neurosim.projection import DelaySpec, Projection, WeightSpec
from neurosim.recording.hdf5_log import HDF5Log
from neurosim.recording.memory_log import MemoryLog
from neurosim.rules.shared_traces import SharedTraces
from neurosim.runner import Runner
from neurosim.schedule import Schedule, same_step_order
from neurosim.seeding import numpy_stream
from neurosim.surrogate import resolve as resolve_surrogate
from neurosim.threads import check_threads
from neurosim.validation import check_device, check_log_target, is_real

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
#: at most this many bytes of monitor buffers per chunk (per network)
MONITOR_BUFFER_BYTES = 64 << 20
#: chunk length in steps when memory allows
MAX_CHUNK_STEPS = 5000


class Clock:
    """The network's time: ``dt`` in ms and ``step``, the index of the next step (>= 0)."""

    def __init__(self, dt: float) -> None:
        if not is_real(dt) or not math.isfinite(dt) or dt <= 0:
            raise ValueError(f"dt must be a positive, finite number of milliseconds, got {dt!r}")
        self.dt = float(dt)
        self._step = 0

    @property
    def step(self) -> int:
        return self._step

    @step.setter
    def step(self, value: int) -> None:
        # random streams and spike rings are indexed by the step: a negative or
        # fractional one would silently break both
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"clock.step must be a non-negative integer (the index of the next "
                             f"step), got {value!r}")
        self._step = int(value)

    @property
    def time_ms(self) -> float:
        return self._step * self.dt


class Network:
    """A spiking network and its simulation.

    Args:
        dt: time step in ms (> 0).
        batch: number of independent samples simulated side by side; every state
            array is ``(batch, n)`` and weights are shared across the batch.
        seed: run seed; every stochastic component draws from its own stream
            derived from it and the component's name.
        device: ``"cpu"`` or ``"cuda"`` (or a ``torch.device``).
        backend: ``"numba"`` (compiled CPU kernels; the default on the CPU) or
            ``"torch"`` (tensors on CPU or CUDA; the default on a GPU). Both give
            the same results from the same model source.
        dtype: ``"float32"`` (default) or ``"float64"`` for state and weights.
        log: where monitors write: ``None`` (in memory), a path (an HDF5 file,
            which must not exist yet), or a log object
            (:class:`~neurosim.recording.HDF5Log`, :class:`~neurosim.recording.MemoryLog`).
        parallel: numba backend only: update neurons on all CPU cores (numba
            ``prange``). Waking threads costs microseconds per step, so this pays
            only for large populations or batches (see ``benchmarks/cuba.py``).
        threads: threads while stepping (torch intra-op threads; numba's with
            ``parallel``). ``None`` (default): ``$NEUROSIM_THREADS`` if set, else
            torch 1 and numba the cores not busy with other work, so that a busy
            machine does not slow the run 10-100x (see :mod:`neurosim.threads`).
        partition: this process's place in a partitioned run (neurons split across
            processes; see :mod:`neurosim.distributed`).
        data_parallel: this process's place in a data-parallel run (its ``batch`` rows of
            a batch of ``size x batch``; see :mod:`neurosim.distributed.data_parallel`).
        weight_window: apply the learning rules' weight changes every this many steps of
            the clock (and before events and at the end of each run) instead of every
            step: in between the network runs with fixed weights, and each rule adds the
            changes it computes from them to a pending sum, which is clipped to the
            rule's bounds when applied. A data-parallel run then sums once per window and
            gives the weights of one process with the whole batch. ``None``: every step.
        static_step: torch backend only: run steps with the clock on the device and padded
            spike lists, so that nothing in a step waits for the host (the GPU path; see
            :mod:`neurosim.backends.torch_static`). ``False``: the per-entry step with host
            indices, which it replaced (the same results).
        deterministic: torch backend on CUDA: sum each step's synaptic input in a fixed
            order (``torch.use_deterministic_algorithms`` while stepping, and neither fused
            updates nor CUDA graphs), so that a run gives the same spikes every time and
            as on the CPU. ``None`` (default): on for the CPU, where it costs nothing;
            off on CUDA, where it costs speed (the GPU adds in whatever order its threads
            finish, so long runs drift apart by float rounding).

    Example:
        >>> import neurosim as ns
        >>> net = ns.Network(dt=0.1, seed=1)
        >>> src = net.population(100, ns.PoissonSource(rate=20.0), name="input")
        >>> out = net.population(10, ns.LIF(), name="out")
        >>> proj = net.projection(src, out, ns.FixedProbability(0.5), weight=2.0)
        >>> mon = net.spike_monitor(out)
        >>> net.run(200.0, progress=False)
        >>> steps, neurons, rows = net.reader().spikes("out")
    """

    def __init__(self, dt: float = 0.1, *, batch: int = 1, seed: int = 0,
                 device: str | torch.device = "cpu", backend: str | None = None,
                 dtype: str = "float32", log: str | os.PathLike[str] | HDF5Log | MemoryLog | None = None,
                 parallel: bool = False, threads: int | None = None,
                 partition: Partition | None = None,
                 data_parallel: Partition | None = None, weight_window: int | None = None,
                 static_step: bool = True, deterministic: bool | None = None) -> None:
        self.clock = Clock(dt)
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; use 'float32' or 'float64'")
        self.device = check_device(device)
        self.deterministic = self.device.type == "cpu" if deterministic is None else bool(deterministic)
        check_log_target(log)
        if backend is None:
            backend = "numba" if self.device.type == "cpu" else "torch"
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
        self.batch, self.seed, self.dtype_name = int(batch), int(seed), dtype
        self.dtype = _DTYPES[dtype]
        self.backend_name = backend
        self.parallel = bool(parallel)
        self.static_step = bool(static_step)
        #: spike monitors record compact events on the device, not a raster (torch static
        #: step; None: on CUDA, where a raster of a large population fills in a few steps)
        self.compact_spikes: bool | None = None
        #: threads while stepping; None chooses (see neurosim.threads)
        self.threads = check_threads(threads)
        self.backend = BACKENDS[backend](self)
        for flag, value in (("partition", partition), ("data_parallel", data_parallel)):
            if value is not None and not isinstance(value, Partition):
                raise TypeError(f"{flag} must be a neurosim.distributed.Partition (e.g. "
                                f"Partition.from_process_group()), got {type(value).__name__}")
        if partition is not None and data_parallel is not None:
            raise ValueError("give partition (neurons split across processes) or data_parallel "
                             "(samples split across processes), not both (yet)")
        #: this process's place in a partitioned run (see neurosim.distributed), or None
        self.partition = partition
        #: this process's place in a data-parallel run (see neurosim.distributed.data_parallel):
        #: its ``batch`` rows are rows ``rank * batch ..`` of ``size * batch``
        self.data_parallel = data_parallel
        if weight_window is not None and (isinstance(weight_window, bool) or not isinstance(
                weight_window, (int, np.integer)) or weight_window < 1):
            raise ValueError(f"weight_window must be a positive number of steps, got {weight_window!r}")
        if weight_window is not None and partition is not None:
            raise ValueError("weight_window: a partitioned run has no learning rules on split "
                             "populations yet; use it alone or with data_parallel")
        #: apply the rules' weight changes every this many steps (and at events and run
        #: ends), the weights fixed in between; None: every step (see
        #: neurosim.distributed.data_parallel)
        self.weight_window = None if weight_window is None else int(weight_window)
        processes = partition or data_parallel
        if processes is not None and processes.rank != 0:
            log = None if isinstance(log, (str, os.PathLike)) else log  # process 0 writes the file
        if log is None:
            log = MemoryLog()
        elif isinstance(log, (str, os.PathLike)):
            log = HDF5Log(log)
        if processes is not None:  # one logical log: process 0 writes what every process recorded
            log = PartitionedLog(log if processes.rank == 0 else None, processes)
        self.log = log
        self.populations: dict[str, Population] = {}
        self.projections: dict[str, Projection] = {}
        self.monitors: dict[str, Monitor] = {}
        self.inputs: list[StepCurrent] = []
        self.rules: dict[str, Any] = {}
        #: named neuromodulator signals that learning rules read (see neurosim.modulators)
        self.modulators = Modulators(self)
        #: spike traces of declared rules, stored once per population side
        self.shared_traces = SharedTraces()
        self.callbacks: list[tuple[Callable[["Network"], Any], int]] = []
        self.timings: dict[str, float] = {}
        self._schedule = Schedule()
        self._dirty = True
        self._chunk_steps = 1  # set by _prepare: steps per chunk of monitor buffers
        #: the run loop, and what consecutive runs share (see neurosim.runner)
        self._runner = Runner(self)
        #: what the processes of a run on several exchange after each slice of steps (the
        #: spikes of a partitioned run, the weight changes of a data-parallel one; built by
        #: _prepare), or None in one process
        self._exchange: SpikeExchange | WeightReduction | None = None
        #: the torch backend that unrolls a network of another backend (see neurosim.unrolling)
        self._unroll_backend: Any = None

    # -- building -----------------------------------------------------------------------
    @property
    def dt(self) -> float:
        return self.clock.dt

    @property
    def batch_global(self) -> int:
        """The batch of the whole run: ``batch`` times the processes of a data-parallel run."""
        return self.batch * (self.data_parallel.size if self.data_parallel is not None else 1)

    @property
    def time_ms(self) -> float:
        """Simulated time so far, in ms."""
        return self.clock.time_ms

    def _name(self, given: str | None, kind: str, taken: Mapping[str, Any]) -> str:
        # (a partitioned run's mirrors are not counted: default names do not depend on the split)
        count = sum(getattr(obj, "mirror_of", None) is None for obj in taken.values())
        name = given if given is not None else f"{kind}{count}"
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"name must be a non-empty string without '/', got {name!r}")
        if name in taken:
            raise ValueError(f"a {kind} named {name!r} already exists in this network")
        return name

    def population(self, n: int, model: NeuronModel | SpikeGenerator, *, name: str | None = None,
                   init: Mapping[str, InitSpec] | None = None,
                   surrogate: str | Callable[[torch.Tensor], torch.Tensor] | None = None,
                   gated: bool = False, split: bool | None = None) -> Population:
        """Add ``n`` neurons of ``model``; ``init`` overrides initial values of state variables
        (a number, an array, or a distribution such as ``Uniform(-60, -50)``). ``surrogate``:
        the derivative its spikes have in :meth:`unroll` (default snnTorch's ``atan``; see
        :mod:`neurosim.surrogate`). ``gated``: give it a per-neuron input gain and
        threshold offset, ``pop.gate``, switched between named modes or driven by a
        neuromodulator (see :mod:`neurosim.gating`). ``split``: in a partitioned run (see
        :mod:`neurosim.distributed`), whether each process steps only its share of the
        neurons (``pop.offset`` .. ``pop.offset + pop.n - 1`` of ``pop.n_global``) or all of
        them; ``None`` splits spiking neuron populations and keeps spike generators and
        graded populations whole in every process."""
        name = self._name(name, type(model).__name__.lower(), self.populations)
        share = partitioning.population_share(self, name, n, model, split, gated)
        if surrogate is not None:
            resolve_surrogate(surrogate, f"population '{name}'")
        if gated and isinstance(model, SpikeGenerator):
            raise ValueError(f"population '{name}': a SpikeGenerator replays spikes; it cannot be gated")
        dp = self.data_parallel
        rows = None if dp is None else (dp.rank * self.batch, dp.size * self.batch)
        pop = Population(name, n, model, init, self.batch, self.dt, self.device, self.dtype,
                         numpy_stream(self.seed, f"population/{name}/init"), self.seed, share, rows)
        pop.surrogate = surrogate
        if gated:
            pop.gate = Gate(pop)
            pop.gate.on_change = self._mark_dirty
        self.populations[name] = pop
        if share is not None:
            partitioning.add_mirror(self, pop)
        self._dirty = True
        return pop

    def projection(self, pre: Population, post: Population, connector: Connector | None = None, *,
                   weight: WeightSpec = None, receptor: str = "exc", delay: DelaySpec = 1,
                   sparse: bool | None = None, trainable: bool = False, stop_gradient: bool = False,
                   name: str | None = None) -> Projection:
        """Connect ``pre`` to ``post``.

        Args:
            connector: which pairs connect (default :class:`~neurosim.AllToAll`, or the
                stored entries of ``weight`` when it is a ``scipy.sparse`` matrix). In a
                partitioned run, :class:`~neurosim.PairwiseBernoulli` and
                :class:`~neurosim.FixedInDegree` (drawn by postsynaptic neuron), and
                ``AllToAll``/``OneToOne`` with one weight, are drawn share by share: each
                process only the synapses onto its neurons (see ``docs/distributed.md``).
            weight: a number, an ``(n_pre, n_post)`` or per-synapse array, a
                ``scipy.sparse`` matrix (any format, never densified), or a
                distribution; in the units of the receptor's state variable.
            receptor: ``"exc"`` (weights >= 0) or ``"inh"`` (weights <= 0).
            delay: whole steps >= 0, one number or per synapse. Delay 0 delivers in the
                step the presynaptic neurons fire, after their update and before the
                postsynaptic one (as a feed-forward ``nn.Sequential`` does); populations
                joined by delay-0 projections update in that order, and a loop of them
                is refused.
            sparse: CSR (True) or dense (False) weights; ``None`` chooses CSR
                below 10% connection density or with per-synapse delays.
            trainable: expose the weights as an ``nn.Parameter`` (``proj.parameter``,
                in :meth:`parameters`) that :meth:`unroll` differentiates.
            stop_gradient: in :meth:`unroll`, no gradient flows back through this
                projection into the presynaptic population (its weights still get
                theirs): each layer then learns from its own loss only, as in
                counter-current learning (``sg`` in its equations).
        """
        for p, role in ((pre, "pre"), (post, "post")):
            if not isinstance(p, Population):
                raise TypeError(f"projection {role}: expected a Population, got {type(p).__name__}")
            if self.populations.get(p.name) is not p:
                raise ValueError(f"projection {role}: population '{p.name}' belongs to another "
                                 "network; build both ends in this one")
        if post.is_generator:
            raise ValueError(f"projection: post population '{post.name}' is a spike generator "
                             "and takes no input")
        if name is None:
            name, k = f"{pre.name}_{post.name}", 2
            while name in self.projections:
                name, k = f"{pre.name}_{post.name}_{k}", k + 1
        name = self._name(name, "projection", self.projections)
        if self.partition is not None:
            proj = partitioning.build_projection(
                self, name, pre, post, connector, weight, receptor, delay, sparse, trainable, stop_gradient)
        else:
            proj = Projection(name, pre, post, connector, weight, receptor, delay, sparse,
                              numpy_stream(self.seed, f"projection/{name}"), self.device, self.dtype,
                              trainable, stop_gradient)
        self.projections[name] = proj
        self._dirty = True
        return proj

    def _check_own(self, obj: Any, where: str) -> None:
        """``obj`` (a population or projection) must belong to this network."""
        table, kind = ((self.populations, "population") if isinstance(obj, Population) else
                       (self.projections, "projection") if isinstance(obj, Projection) else
                       (None, None))
        if table is None:
            raise TypeError(f"{where}: expected a Population or Projection, got {type(obj).__name__}")
        if table.get(obj.name) is not obj:
            raise ValueError(f"{where}: {kind} '{obj.name}' belongs to another network")

    def _add_monitor(self, monitor: Monitor, kind: str) -> Any:
        target = getattr(monitor, "population", None) or getattr(monitor, "projection", None)
        if target is not None:
            self._check_own(target, f"{type(monitor).__name__}")
        key = f"{kind}/{monitor.name}"
        if key in self.monitors:
            raise ValueError(f"a {kind} monitor named {monitor.name!r} already exists")
        self.monitors[key] = monitor
        self._dirty = True
        return monitor

    def spike_monitor(self, population: Population, *, name: str | None = None) -> SpikeMonitor:
        """Record every spike of ``population`` as (step, neuron, batch) events."""
        self._require_spiking(population, "spike_monitor")
        return self._add_monitor(SpikeMonitor(population, name), "spikes")

    def spike_counter(self, population: Population, *, name: str | None = None) -> SpikeCounter:
        """Count spikes per neuron and batch row on the device (``counter.counts``); not logged."""
        self._require_spiking(population, "spike_counter")
        return self._add_monitor(SpikeCounter(population, name), "counts")

    @staticmethod
    def _require_spiking(population: Population, what: str) -> None:
        if getattr(population, "graded", False):
            raise ValueError(f"{what}: population '{population.name}' is graded: it emits values, "
                             "not spikes; record its activity 'r' with state_monitor(pop, 'r')")

    def state_monitor(self, population: Population, variables: Sequence[str] | str, *,
                      neurons: Sequence[int] | None = None, every: int = 1,
                      name: str | None = None) -> StateMonitor:
        """Sample ``variables`` of ``neurons`` (default all) every ``every`` steps."""
        return self._add_monitor(StateMonitor(population, variables, neurons, every, name), "state")

    def weight_monitor(self, projection: Projection, *, every: int,
                       name: str | None = None) -> WeightMonitor:
        """Snapshot the weights of ``projection`` every ``every`` steps."""
        return self._add_monitor(WeightMonitor(projection, every, name), "weights")

    def add_rule(self, projection: Projection, rule: Any, *, name: str | None = None) -> Any:
        """Attach a learning rule (:mod:`neurosim.rules`) to ``projection``; returns the rule."""
        from neurosim.rules.base import Rule

        if not isinstance(rule, Rule):
            raise TypeError(f"add_rule: expected a neurosim.rules.Rule, got {type(rule).__name__}")
        if self.projections.get(getattr(projection, "name", None)) is not projection:
            if not isinstance(projection, Projection):
                raise TypeError(f"add_rule: expected a Projection, got {type(projection).__name__}")
            raise ValueError(f"add_rule: projection '{projection.name}' belongs to another network")
        if rule.projection is not None:
            raise ValueError(f"add_rule: this {type(rule).__name__} is already attached to "
                             f"projection '{rule.projection.name}'")
        if name is None:
            name, k = f"{projection.name}.{type(rule).__name__}", 2
            while name in self.rules:
                name, k = f"{projection.name}.{type(rule).__name__}{k}", k + 1
        name = self._name(name, "rule", self.rules)
        rule.attach(projection, self, name)
        self.rules[name] = rule
        self._dirty = True
        return rule

    def torch_rule(self, rule: Any) -> TorchRule:
        """The torch runner of a declared rule (what its ``update_traces`` and ``apply``
        run): rules ask their network for it, so that they import no backend."""
        return TorchRule(rule)

    def modulator_monitor(self, name: str, *, every: int = 1) -> ModulatorMonitor:
        """Record modulator ``name`` every ``every`` steps (log: ``modulators/<name>``)."""
        return self._add_monitor(ModulatorMonitor(self.modulators[name], every), "modulators")

    def after_step_python(self, step: int) -> None:
        """Traces and rules phases done in Python (used by compiled backends)."""
        self.modulators.step(step)
        self.shared_traces.update(step)
        for rule in self.rules.values():
            rule.update_traces(step)
        for rule in self.rules.values():
            rule.apply(step)

    def step_current(self, population: Population, amplitude: float | np.ndarray, *,
                     start_ms: float = 0.0, stop_ms: float = math.inf,
                     neurons: Sequence[int] | None = None) -> StepCurrent:
        """Inject ``amplitude`` into ``i_ext`` of ``population`` from ``start_ms`` to ``stop_ms``."""
        self._check_own(population, "step_current")
        inp = StepCurrent(population, amplitude, start_ms, stop_ms, neurons, self.dt)
        self.inputs.append(inp)
        self._dirty = True
        return inp

    def add_callback(self, fn: Callable[["Network"], Any], every: int = 1) -> None:
        """Call ``fn(net)`` in the inputs phase of every ``every``-th step."""
        if not callable(fn):
            raise TypeError("add_callback: fn must be callable")
        if not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"add_callback: 'every' must be a positive integer, got {every!r}")
        self.callbacks.append((fn, int(every)))
        self._dirty = True

    # -- structure ----------------------------------------------------------------------
    @property
    def min_delay(self) -> int:
        """Smallest delay (steps) of any projection: no spike takes effect sooner, so the
        network can advance this many steps between exchanges of spikes. In a partitioned
        run, only projections that read another process's spikes count."""
        projections = [p for p in self.projections.values()
                       if self.partition is None or getattr(p.pre, "mirror_of", None) is not None]
        return min((p.min_delay for p in projections), default=1)

    def _mark_dirty(self) -> None:
        self._dirty = True

    def _prepare(self) -> None:
        if not self._dirty:
            return
        for pop in self.populations.values():
            if pop.gate is not None:
                pop.gate.check_driver(self.modulators)
        # into a gated population whose gate is alike for all samples, weights that neither
        # a rule nor an optimiser changes are delivered pre-scaled by the gain (no work per
        # spike; the cache follows set_weights, load_state and every change of the gate)
        # (so too, on numba, into a gate driven by a held signal alike for all samples: it
        # changes only between compiled stretches, see Gate.follow_held_signal)
        plastic = {id(rule.projection) for rule in self.rules.values()}
        for proj in self.projections.values():
            gate = proj.post.gate
            like_a_mode = gate is not None and (gate.driver is None or (
                self.backend_name == "numba" and gate.held and not gate.per_sample))
            proj.gate_scaled = like_a_mode and id(proj) not in plastic and proj.parameter is None
        for pop in self.populations.values():
            # one slot more than the longest delay: input populations write step t's
            # spikes before delivery reads step t - delay
            length = max((pr.max_delay for pr in self.projections.values() if pr.pre is pop),
                         default=0) + 1
            if getattr(pop, "mirror", None) is not None:  # holds a slice's spikes until they are sent
                length = max(length, self.min_delay)
            pop.set_history_length(length)
        sched = Schedule()
        for inp in self.inputs:
            sched.add("inputs", f"StepCurrent({inp.population.name})", "python", inp.apply)
        for fn, every in self.callbacks:
            sched.add("inputs", f"callback {getattr(fn, '__name__', 'fn')} every {every}", "python",
                      self._callback_action(fn, every))
        for pop in self.populations.values():
            if pop.is_generator or not pop.model.receptors:
                sched.add("inputs", f"{pop.name} ({pop.model_name})", "population", pop)
        neurons = [pop for pop in self.populations.values()
                   if not (pop.is_generator or not pop.model.receptors)]
        same_step = [proj for proj in self.projections.values()
                     if proj.min_delay == 0 and any(proj.pre is pop for pop in neurons)]
        for proj in self.projections.values():
            if not any(proj is p for p in same_step):
                sched.add("deliver", self._delivery_label(proj), "delivery", proj)
        for pop in same_step_order(neurons, same_step):
            for proj in same_step:
                if proj.post is pop:
                    sched.add("neurons", self._delivery_label(proj), "delivery", proj)
            sched.add("neurons", f"{pop.name} ({pop.model_name})", "population", pop)
        if self.modulators.dynamic or self.modulators.derived:
            sched.add("traces", "modulators", "modulators", self.modulators)
        if len(self.shared_traces):
            sched.add("traces", self.shared_traces.describe(), "spike_traces", self.shared_traces)
        for name, rule in self.rules.items():
            if rule.has_step_work:
                sched.add("traces", f"{name} {rule.schedule_label('traces')}", "rule_traces", rule)
        for name, rule in self.rules.items():
            if rule.apply_at is None:
                sched.add("rules", f"{name} {rule.schedule_label('rules')}", "rule_apply", rule)
            else:
                sched.events.setdefault(rule.apply_at, []).append(
                    f"{name} {rule.schedule_label('rules')}")
        for key, mon in self.monitors.items():
            sched.add("monitors", key, mon.record_kind, mon.record if mon.record_kind == "python" else mon)
        self._schedule = sched
        compact = (self.backend_name == "torch" and self.static_step and self.partition is None
                   and self.data_parallel is None and
                   (self.device.type == "cuda" if self.compact_spikes is None else self.compact_spikes))
        for mon in self.monitors.values():
            if isinstance(mon, SpikeMonitor):
                mon.compact = compact
        per_step = sum(m.bytes_per_step() for m in self.monitors.values())
        self._chunk_steps = int(max(1, min(MAX_CHUNK_STEPS, MONITOR_BUFFER_BYTES // max(1, per_step))))
        for mon in self.monitors.values():
            mon.allocate(self._chunk_steps)
        if self.partition is not None:
            partitioning.prepare(self)
        if self.data_parallel is not None:
            data_parallel.prepare(self)
        elif self.weight_window is not None:
            data_parallel.prepare_window(self)
        self.backend.invalidate()
        if self._unroll_backend is not None:
            self._unroll_backend.invalidate()
        self._dirty = False

    @staticmethod
    def _delivery_label(proj: Projection) -> str:
        return f"{proj.name} ({'csr' if proj.sparse else 'dense'}{', delay 0' if proj.min_delay == 0 else ''})"

    def compile(self) -> float:
        """Prepare the network for running and compile its kernels (numba backend).

        Called by :meth:`run` when needed; call it first to time compilation apart
        from simulation. Returns the seconds spent (0 when nothing was to be done).
        """
        self._prepare()
        compile_ = getattr(self.backend, "compile", None)
        return compile_() if compile_ else 0.0

    @property
    def schedule(self) -> Schedule:
        """The step order with the objects in each phase; ``print(net.schedule)``."""
        self._prepare()
        return self._schedule

    def _callback_action(self, fn: Callable[["Network"], Any], every: int) -> Callable[[int], None]:
        def action(step: int) -> None:
            if step % every == 0:
                fn(self)
        return action

    def describe(self) -> dict[str, Any]:
        """The network as a JSON-able dict (written into every log)."""
        self._prepare()
        return {
            "dt_ms": self.dt, "batch": self.batch_global, "seed": self.seed,
            "backend": self.backend_name, "device": str(self.device), "dtype": self.dtype_name,
            "parallel": self.parallel, "threads": self.threads,
            "populations": [p.describe() for p in self.populations.values()
                            if getattr(p, "mirror_of", None) is None],
            "projections": [p.describe() for p in self.projections.values()],
            "inputs": [i.describe() for i in self.inputs],
            "rules": [r.describe() for r in self.rules.values()],
            "modulators": self.modulators.describe(),
            "monitors": [m.describe() for m in self.monitors.values()],
            "schedule": self._schedule.as_list(),
            "min_delay_steps": self.min_delay,
            **({} if self.partition is None else {"processes": self.partition.size}),
            **({} if self.weight_window is None else {"weight_window_steps": self.weight_window}),
        }

    # -- running ------------------------------------------------------------------------
    def run(self, duration_ms: float | None = None, *, steps: int | None = None,
            progress: bool | None = None, profile: bool = False) -> None:
        """Advance the network by ``duration_ms`` (rounded to whole steps) or ``steps``.

        Args:
            progress: show a tqdm progress bar; ``None`` shows it only when stderr
                is a terminal (and never when the environment sets ``CI``).
            profile: time each phase of the schedule; totals in :attr:`timings`.

        The network advances in slices of :attr:`min_delay` steps. The log is
        written in whole chunks and marked completed only when every step is in it.

        Ctrl-C (SIGINT) stops the run at the end of the current slice of steps
        (a fraction of a second): the log is written up to that step and marked
        incomplete, clock and state agree, and ``KeyboardInterrupt`` is raised; a
        later ``run`` continues exactly as if nothing had happened. Any other
        exception raised while stepping may have stopped the network halfway
        through a step: the log is marked incomplete and the network refuses to
        run again.
        """
        unrolling.forget(self)  # the state unroll kept is older after this run
        self._sync_gates()
        self._runner.run(duration_ms, steps=steps, progress=progress, profile=profile)

    def _sync_gates(self) -> None:
        for pop in self.populations.values():
            if pop.gate is not None:
                pop.gate.sync()

    # -- training by gradient -----------------------------------------------------------
    def parameters(self) -> list[torch.nn.Parameter]:
        """The weights of trainable projections (``trainable=True``) and the gain and
        offset of trainable gates (``pop.gate.make_trainable()``), for a torch optimiser."""
        return [p for _, p in self.named_parameters()]

    def named_parameters(self) -> list[tuple[str, torch.nn.Parameter]]:
        """(projection name, its weights as an ``nn.Parameter``) of trainable projections,
        then (``<population>.gate.gain`` / ``.gate.offset``, ...) of trainable gates."""
        out = [(name, proj.parameter) for name, proj in self.projections.items()
               if proj.parameter is not None]
        for name, pop in self.populations.items():
            if pop.gate is not None and pop.gate.gain_parameter is not None:
                out += [(f"{name}.gate.gain", pop.gate.gain_parameter),
                        (f"{name}.gate.offset", pop.gate.offset_parameter)]
        return out

    def unroll(self, steps: int, *, spikes: Mapping[Any, torch.Tensor] | None = None,
               record: Mapping[Any, Sequence[str] | str] | None = None,
               on_step: Callable[[int, dict[str, dict[str, torch.Tensor]]], Any] | None = None,
               progress: bool | None = False) -> dict[str, dict[str, torch.Tensor]]:
        """Run ``steps`` steps differentiably and return the recorded outputs with their graph.

        The same schedule and model equations as :meth:`run`, on torch tensors (whatever
        the network's backend: the state arrays are shared), with float spikes whose
        derivative is each population's surrogate (see :mod:`neurosim.surrogate`); the
        spikes and state are a normal run's (bit for bit where synaptic sums are exact;
        otherwise up to the order in which a sum's terms are added, which can move a spike
        that sits on its threshold), and monitors, rules and the log work as in a normal
        run. A normal :meth:`run` builds no graph (it runs under ``torch.no_grad``). Dense projections deliver ``spikes @ W``; the weights of
        trainable ones are ``proj.parameter``, so ``loss.backward()`` fills their
        ``.grad`` (:meth:`parameters` for the optimiser).

        Args:
            steps: how many steps.
            spikes: population (or its name) -> ``(steps, batch, n)`` spikes (bool or
                float, may require grad) that population emits instead of updating, e.g.
                rate-coded images.
            record: population (or its name) -> ``"spikes"`` and/or state variable
                names to return, each as a ``(steps, batch, n)`` tensor with its graph.
            on_step: called after every step as ``on_step(step, values)`` with that
                step's recorded ``{population: {variable: (batch, n) tensor}}``, graph
                included: an online method (e.g. SLTT) back-propagates each step's
                loss there and calls :meth:`detach_state`, so memory does not grow
                with ``steps``; the returned tensors are then detached.

        Returns ``{population: {variable: tensor}}``. The graph goes on across calls (the
        state a call ends with is where the next begins); :meth:`detach_state` cuts it
        (truncated BPTT), and :meth:`reset_state` starts afresh. A learning rule may
        change a trainable projection's weights during the call: the gradient then
        uses the weights as they are when ``backward`` runs. Sparse (CSR) projections
        (per-synapse delays need them) deliver through one dense matrix per delay,
        scattered from their weights when the call first uses them and again after a
        rule changed them, so their gradients use those weights; one whose matrices
        would exceed ``unrolling.MAX_DENSE_BLOCKS`` elements is refused.
        """
        if self.partition is not None:
            raise ValueError("unroll: a network split by neurons across processes cannot be run "
                             "differentiably (yet); train by gradient data-parallel (data_parallel=, "
                             "then neurosim.distributed.sum_gradients) instead")
        return unrolling.unroll(self, steps, spikes, record, on_step, progress)

    def detach_state(self) -> None:
        """Cut the graph of :meth:`unroll` at the current state: the next call's gradients
        stop here (truncated BPTT); values are unchanged."""
        unrolling.torch_backend(self).unroll.detach()

    def _flush(self) -> None:
        """Write what the monitors recorded to the log (backends call it when a buffer fills)."""
        self._runner.flush()

    def reader(self) -> "Any":
        """A :class:`~neurosim.LogReader` over this network's log (memory or file)."""
        from neurosim.log_reader import LogReader

        self._runner.wait_for_writes()
        log = self.log
        if isinstance(log, PartitionedLog):
            if log.inner is None:
                raise RuntimeError(f"reader: in a partitioned run process 0 writes the log; this is "
                                   f"process {self.partition.rank} (read it in process 0, or open "
                                   f"the file after the run)")
            log = log.inner
        return LogReader(log if isinstance(log, MemoryLog) else log.path)

    def trigger(self, event: str) -> None:
        """Fire ``event`` (e.g. ``"end_of_sample"``): rules with ``apply_at=event`` apply
        their change now, once, from the state the last step left (on every backend, as
        tensor code on the same arrays; it runs once per event, not per step)."""
        from neurosim.rules.base import EVENTS

        if event not in EVENTS:
            raise ValueError(f"trigger: unknown event {event!r}; known: {list(EVENTS)}")
        self._prepare()
        if isinstance(self._exchange, WeightReduction):  # (every process triggers it: summed)
            self._exchange.apply_event(event, self.clock.step - 1)
            return
        for rule in self.rules.values():
            if rule.apply_at == event:
                rule.apply(self.clock.step - 1, event=True)

    def reset_state(self) -> None:
        """Put every population back to its initial state and clear spikes in flight.

        Weights, learned state variables (such as a homeostatic threshold),
        parameters, injected currents and the clock are kept, so the same network
        can be run on sample after sample without being rebuilt.
        """
        for pop in self.populations.values():
            pop.reset()
        for rule in self.rules.values():
            rule.reset()
        self.modulators.reset()
        for pop in self.populations.values():  # a driven gate follows its signal's reset value
            if pop.gate is not None and pop.gate.driver is not None:
                pop.gate.drive_now(self.modulators[pop.gate.driver[0]].value)
        unrolling.forget(self)

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every piece of state, by name: clock, neuron states, spikes in flight,
        injected currents and weights. (Random streams are counter-based: their
        position is the clock.) In a partitioned run: this process's share, with the
        mirrors of split populations (``save_state`` writes the whole network)."""
        return network_state.state_dict(self)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore state saved by :meth:`state_dict` into a network of the same structure.

        Every entry is checked (names, shapes, finite values, bool spike rings, no
        weights between unconnected neurons, a non-negative integer step) before
        anything is changed, so a rejected state leaves the network as it was.
        """
        network_state.load_state_dict(self, state)
        unrolling.forget(self)

    def save_state(self, path: str | os.PathLike[str], overwrite: bool = False) -> None:
        """Write :meth:`state_dict` to an HDF5 state file (format documented in the docs),
        with the time step and a fingerprint of the structure, which loading checks.

        In a partitioned run every process calls it (it gathers the shares) and process 0
        writes the whole network's state, as one process would: the file loads into any
        number of processes."""
        if self.data_parallel is not None:
            raise ValueError("save_state: a data-parallel run keeps its state per process (its rows); "
                             "saving it is not supported yet (the weights are the same in every "
                             "process: save them from process 0 with proj.weight_matrix())")
        if self.partition is not None:
            partitioned_state.save_state(self, path, overwrite)
            return
        network_state.save_state(self, path, overwrite)

    def load_state(self, path: str | os.PathLike[str]) -> None:
        """Load a state file written by :meth:`save_state` into this network.

        The file must come from a network with the same time step, populations
        (names, models, sizes) and synapses (the same pairs, not only as many:
        a network rebuilt with another seed does not fit). In a partitioned run each
        process takes its share of a whole state (saved by any number of processes).
        """
        if self.partition is not None:
            partitioned_state.load_state(self, path)
        else:
            network_state.load_state(self, path)
        unrolling.forget(self)
