"""The torch backend: every kind of schedule entry as tensor operations on CPU or CUDA.

The backend walks the network's schedule (the only source of order) and runs each
entry with its implementation of the entry's kind (``run_<kind>``, see
:data:`neurosim.schedule.KINDS`), reading the arrays the entry's object declares in
its ``arrays()`` (the state contract shared with the numba backend). Neuron updates
are the models' own ``update`` functions bound to torch math; state is written back
in place, so every array keeps its identity for the run.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from neurosim.backends.torch_static import FusedUpdate, StaticStep
from neurosim.backends.torch_unroll import Unroll
from neurosim.backends.torch_update import PreparedUpdate, known_constants
from neurosim.convolution import convolve, delivers_by_conv2d
from neurosim.counter_rng import UNIT24, lowbias32, step_key
from neurosim.gating import delivered, delivery_gain, offset_math, sent_activity, threshold_array
from neurosim.kernel import TORCH_MATH, bind
from neurosim.projection import DENSE_MATMUL_BATCH
from neurosim.threads import PARALLEL_ELEMENTS, free_cores, stepping_threads

if TYPE_CHECKING:
    from neurosim.backends.view import SimulatedNetwork
    from neurosim.monitors import Monitor
    from neurosim.population import Population
    from neurosim.projection import Projection



class TorchBackend:
    """Advances a :class:`~neurosim.Network` one step at a time with torch tensors.

    Each step runs the entries of :attr:`Network.schedule` in order. With
    profiling on, each phase is timed (synchronising the GPU, which slows the
    run a little), and the totals accumulate in ``net.timings``.
    """

    name = "torch"

    def __init__(self, net: "SimulatedNetwork") -> None:
        self.net = net
        self._plan: list[tuple[str, Callable[[int], Any]]] | None = None
        self._unroll_plan: list[tuple[str, Callable[[int], Any]]] | None = None
        self._updates: dict[Any, Callable[..., Any]] = {}  # by model (gated: by population)
        self._prepared: dict[str, PreparedUpdate] = {}  # by population
        self._fused: dict[Any, FusedUpdate] = {}  # by model and constants (gated: population)
        self._known: dict[str, Any] = {}  # population -> its 0/1 constants, as last read
        self._static: StaticStep | None = None
        #: on CUDA, compile each model's update into fused kernels (torch.compile)
        self.fuse_updates = True
        #: the static step, in a slice run op by op, indexes rings and monitor rows with
        #: the host's step number (False: with the device clock, as in a CUDA graph)
        self.host_indices = True
        #: the differentiable state while ``Network.unroll`` runs (and between its calls)
        self.unroll = Unroll(self)
        self.unrolling = False

    def invalidate(self) -> None:
        """The schedule changed: bind its entries again before the next step."""
        self._plan = self._unroll_plan = None
        self._static = None

    def _bind(self, differentiable: bool) -> list[tuple[str, Callable[[int], Any]]]:
        """(phase, callable taking the step) for every schedule entry, in order; in a
        differentiable run, populations and deliveries run as :class:`Unroll`'s."""
        plan = []
        for phase, _, kind, obj in self.net._schedule.entries():
            owner = self.unroll if differentiable and kind in ("population", "delivery") else self
            run = obj if kind == "python" else partial(getattr(owner, f"run_{kind}"), obj)
            plan.append((phase, run))
        return plan

    def advance(self, n_steps: int, profile: bool) -> None:
        if self.unrolling:
            if self._static is not None and (self._static.groups or self._static.merged):
                self._static.unjoin()  # (the next normal run joins them again)
                self._static = None
            if self._unroll_plan is None:
                self._unroll_plan = self._bind(True)
            plan = self._unroll_plan
        else:
            if self._plan is None:
                self._plan = self._bind(False)
            plan = self._plan
        # a normal run builds no autograd graph, whatever requires grad; an unrolled one
        # does unless it was called under torch.no_grad()
        with torch.set_grad_enabled(self.unrolling and self.unroll.grad):
            if self.net.device.type == "cpu":
                # one step is many small operations: threads only compete (see neurosim.threads),
                # unless an operation is large enough for torch to share out, and cores are
                # free; a differentiable run is large matrix products, with torch's own count
                default = torch.get_num_threads() if self.unrolling else \
                    (min(free_cores(), torch.get_num_threads())
                     if self._largest_operation() >= PARALLEL_ELEMENTS else 1)
                with stepping_threads(self.net.threads, False, default):
                    self._advance(plan, n_steps, profile)
            elif self.net.deterministic and not torch.are_deterministic_algorithms_enabled():
                torch.use_deterministic_algorithms(True)
                try:
                    self._advance(plan, n_steps, profile)
                finally:
                    torch.use_deterministic_algorithms(False)
            else:
                self._advance(plan, n_steps, profile)

    def _largest_operation(self) -> int:
        """Elements of the step's largest neuron update (a joined group's, with the static step)."""
        sizes = [p.batch * p.n for p in self.net.populations.values()]
        if self._static is not None:
            sizes += [g.batch * g.n for g in self._static.groups]
        return max(sizes, default=0)

    @property
    def static_step(self) -> StaticStep:
        """The schedule bound to run with the clock on the device (:mod:`.torch_static`)."""
        if self._static is None:
            self._static = StaticStep(self)
        return self._static

    def _advance(self, plan: list[tuple[str, Callable[[int], Any]]], n_steps: int,
                 profile: bool) -> None:
        net = self.net
        if net.static_step and not self.unrolling:
            self.static_step.advance(n_steps, profile)
            return
        after = self.unroll.after_step if self.unrolling else None
        # event buffers (a compiled backend's spike monitors): written to the log before
        # a step whose spikes might not fit
        buffers = [m for m in net.monitors.values() if "events.fill" in m.arrays()]
        if not profile:
            for _ in range(n_steps):
                if buffers and any(m.event_buffer_full for m in buffers):
                    net._flush()
                step = net.clock.step
                for _, run in plan:
                    run(step)
                if after is not None:
                    after(step)
                net.clock.step = step + 1
            return
        sync = (torch.cuda.synchronize if net.device.type == "cuda" else (lambda: None))
        timings = net.timings
        for _ in range(n_steps):
            step = net.clock.step
            for phase, run in plan:
                t0 = time.perf_counter()
                run(step)
                sync()
                timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - t0
            if after is not None:
                after(step)
            net.clock.step = step + 1

    # -- one implementation per kind of schedule entry ----------------------------------
    def run_population(self, pop: "Population", t: int) -> None:
        """Integrate and fire (or replay a spike generator's events) into slot ``t``."""
        a = pop.arrays()
        ring = a["spikes"]
        slot = ring[t % ring.shape[0]]
        pop.last_step = t
        if pop.is_generator:
            lo, hi = np.searchsorted(a["events.step"].numpy(), [t, t + 1])
            slot.zero_()
            if hi > lo:
                slot[a["events.row"][lo:hi], a["events.neuron"][lo:hi]] = True
            return
        slot.copy_(self.integrate(pop, a, lambda key: step_key(key, t)))

    def integrate(self, pop: "Population", a: dict[str, torch.Tensor],
                  step_key_of: Callable[[int], Any]) -> torch.Tensor:
        """Integrate and fire ``pop`` one step: its state variables are written in place;
        returns what it emits (spikes, or a graded population's values). ``step_key_of``
        gives a random stream's per-step hash (an integer, or a tensor on the device)."""
        gate = pop.gate
        if gate is not None and gate.driver is not None:
            gate.apply_drive(self.net.modulators[gate.driver[0]].value)
        raised = threshold_array(pop) if gate is not None else None
        compiling = torch.compiler.is_compiling()
        prepared = None
        if not compiling:
            prepared = self._prepared.get(pop.name)
            if prepared is None or not prepared.holds(type(pop.model), a):
                prepared = self._prepare_update(pop, a, raised)
        if prepared is not None and prepared.plain_names and raised is None:
            args = [a[name] for name in prepared.names]
        else:
            args = self._arguments(pop, a, prepared, raised, step_key_of)
        if prepared is not None:
            emitted = prepared(args, [a[name] for name in prepared.target_names])
        else:  # a step torch.compile traces: the model's update as written (it reads every
            # constant, so a compiled slice sees one written in place), bound in an eager step
            targets = [a[f"state.{var}"] for var in pop.model.state_variables]
            out = self._own_update(pop)(*args)
            values = [v.clone() if any(v is x for i, x in enumerate(targets) if i != k) else v
                      for k, v in enumerate(out[:-1])]
            emitted = out[-1]
            if any(emitted is x for x in targets):  # (emitted as it was, not as written)
                emitted = emitted.clone()
            for target, value in zip(targets, values):
                target.copy_(value)
        if gate is not None and gate.activity_gate != "none":
            emitted = sent_activity(gate, emitted)
        return emitted

    def _arguments(self, pop: "Population", a: dict[str, torch.Tensor], prepared: PreparedUpdate | None,
                   raised: str | None, step_key_of: Callable[[int], Any]) -> list[Any]:
        """The update's arguments: the arrays, a random input's uniforms for this step, a
        gated threshold raised by the gate's offset."""
        gate = pop.gate
        args = []
        for name in (prepared.names if prepared is not None else pop.argument_arrays()):
            if name.startswith("key."):  # a random input: uniforms hashed from (stream, step, element)
                h = lowbias32(a[name] ^ step_key_of(pop.random_keys[name[4:]]))
                args.append((h >> 8).to(pop.dtype) * UNIT24)
            elif name == raised:  # the model's threshold, raised by the gate's offset
                args.append(a[name] + gate.offset)
            else:
                args.append(a[name])
        return args

    def _prepare_update(self, pop: "Population", a: dict[str, torch.Tensor],
                        raised: str | None) -> PreparedUpdate:
        """``pop``'s update prepared (:mod:`.torch_update`): again when a constant written
        in was replaced or written. Constants are written in on the CPU only (a CUDA
        graph would not see one written in place after its capture)."""
        plain = self._own_update(pop)  # (bound here, outside any trace)
        cuda = self.net.device.type == "cuda"
        known = () if cuda else known_constants(pop, a, raised, self._known)
        prepared = self._prepared.get(pop.name)
        if prepared is not None and prepared.known == known and prepared.model is type(pop.model):
            prepared.guard_with(pop, a)  # (the same values in other arrays)
            return prepared
        gate = pop.gate
        wrap = None
        if self.fuse_updates and cuda and not self.net.deterministic:
            # one compiled update per model (not per population): dynamo compiles each once
            key = (type(pop.model), known) if gate is None or raised is not None else pop.name
            wrap = lambda fn, own, key=key: self._fused.setdefault((key, own), FusedUpdate(fn))  # noqa: E731
        prepared = self._prepared[pop.name] = PreparedUpdate(type(pop.model), self._math(pop), plain,
                                                             known, wrap, write_into=not cuda)
        prepared.guard_with(pop, a)
        return prepared

    def _own_update(self, pop: "Population") -> Callable[..., Any]:
        """``pop``'s update as the model wrote it, bound to its torch math: what a step
        torch.compile traces runs, and what a prepared update is checked against."""
        key = type(pop.model) if pop.gate is None else pop.name
        update = self._updates.get(key)
        if update is None:
            update = self._updates[key] = bind(type(pop.model).update, self._math(pop))
        return update

    @staticmethod
    def _math(pop: "Population") -> Any:
        """The torch math of ``pop``'s update: a gated population's firing condition sees
        its offset, unless the model has a threshold argument the offset is added to."""
        if pop.gate is None or threshold_array(pop) is not None:
            return TORCH_MATH
        return offset_math(TORCH_MATH, lambda g=pop.gate: g.offset)

    def run_delivery(self, proj: "Projection", t: int) -> None:
        """Add the weights of spikes arriving at ``t`` to the receptor variable."""
        a = proj.arrays()
        target = proj.post.arrays()[f"state.{proj.target}"]
        ring = proj.pre.arrays()["spikes"]
        weight = a["weight.delivered"] if proj.gate_scaled else a["weight"]
        graded = proj.pre.graded  # values r: each adds r * w (spikes add w)
        # gated: each event adds w * gain (r * (w * gain)): pre-scaled weights, or per event
        gate = proj.post.gate if not proj.gate_scaled else None
        for q, block in enumerate(proj.blocks):
            spikes = ring[(t - block.delay) % ring.shape[0]]
            if delivers_by_conv2d(proj, graded or spikes.shape[0] >= DENSE_MATMUL_BATCH):
                target.add_(convolve(proj, spikes, weight))  # (a Convolution: one conv2d)
                continue
            if not proj.sparse:
                if graded or spikes.shape[0] >= DENSE_MATMUL_BATCH:
                    if gate is None:
                        target.addmm_(spikes.to(weight.dtype), weight)  # the sum inside the product
                    else:
                        target.add_(delivered(weight, spikes.to(weight.dtype), delivery_gain(gate)))
                else:
                    rows, cols = spikes.nonzero(as_tuple=True)
                    if cols.numel():
                        rows_w = weight.index_select(0, cols)
                        target.index_add_(0, rows, rows_w if gate is None else rows_w * gate.gain[rows])
                continue
            rows, cols = spikes.nonzero(as_tuple=True)
            if not cols.numel():
                continue
            indptr = a[f"block{q}.indptr"]
            starts = indptr[cols]
            counts = indptr[cols + 1] - starts
            total = int(counts.sum())
            if total == 0:
                continue
            # positions of the synapses of every spiking neuron, as one flat gather
            offsets = torch.cumsum(counts, 0) - counts
            pos = torch.repeat_interleave(starts - offsets, counts, output_size=total)
            pos += torch.arange(total, device=pos.device)
            positions = a.get(f"block{q}.positions")
            if positions is not None:
                pos = positions[pos]
            flat = a["indices"][pos] + torch.repeat_interleave(rows, counts, output_size=total) * proj.post.n
            values = weight[pos]
            if gate is not None:
                values = values * gate.gain.reshape(-1)[flat]
            if graded:
                values = values * torch.repeat_interleave(spikes[rows, cols], counts, output_size=total)
            target.view(-1).index_add_(0, flat, values)

    def run_modulators(self, modulators: Any, t: int) -> None:
        modulators.step(t)

    def run_spike_traces(self, traces: Any, t: int) -> None:
        traces.update(t)

    def run_rule_traces(self, rule: Any, t: int) -> None:
        rule.update_traces(t)

    def run_rule_apply(self, rule: Any, t: int) -> None:
        rule.apply(t)

    def run_record_spikes(self, mon: "Monitor", t: int) -> None:
        if not mon.active:
            return
        ring = mon.population.arrays()["spikes"]
        a = mon.arrays()
        if "events.fill" in a:  # the event buffer a compiled backend gave it (unroll on numba)
            rows, neurons = ring[t % ring.shape[0]].nonzero(as_tuple=True)
            k, n = int(a["events.fill"][0]), rows.numel()
            a["events.step"][k:k + n] = t
            a["events.neuron"][k:k + n] = neurons.cpu()
            a["events.batch"][k:k + n] = rows.cpu()
            a["events.fill"][0] = k + n
            return
        a["raster"][mon.rows_filled].copy_(ring[t % ring.shape[0]])
        mon.recorded_steps(t, t + 1)

    def run_count_spikes(self, mon: "Monitor", t: int) -> None:
        if not mon.active:
            return
        ring = mon.population.arrays()["spikes"]
        mon.arrays()["counts"].add_(ring[t % ring.shape[0]])

    def run_record_state(self, mon: "Monitor", t: int) -> None:
        if t % mon.every or not mon.active:
            return
        a, source = mon.arrays(), mon.population.arrays()
        row = mon.rows_filled
        for var in mon.variables:
            src = source[mon.source(var)]
            a[f"buffer.{var}"][row].copy_(src if mon.all_neurons else src.index_select(1, a["neurons"]))
        mon.recorded_steps(t, t + 1)
