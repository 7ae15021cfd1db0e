"""The torch step with static shapes and no host synchronisation (the GPU path).

Launches, not arithmetic, bound a GPU step at the sizes this simulator runs: a step
that asks the host anything (``nonzero()``, ``.item()``, a Python branch on data, a
slot index kept as a host integer) stalls the device once per question, and a step
whose shapes change cannot be captured in a CUDA graph. This module runs the
schedule's entries so that none of that happens inside a slice of steps:

* **The clock on the device.** The step ``t`` is a 0-d int64 tensor that the slice
  advances in place; ring slots are ``(t - delay) % slots`` computed on the device,
  and the random streams' per-step hashes come from a table filled once per slice.
* **Padded spike lists.** The spikes a delivery reads are listed with
  ``torch.nonzero_static`` into ``cap`` entries; the padding points at a row without
  synapses. How many spikes there were is kept on the device (its maximum over the
  slice) and read once, after the slice. If it ever exceeded ``cap``, the slice's
  state is put back from the copy taken at its start, ``cap`` grows, and the slice
  runs again: results never depend on ``cap``.
* **CSR delivery as a fixed ``(cap, K)`` gather** (``K`` the longest row): synapse
  ``k`` of a listed neuron's row is at ``indptr[j] + k``; entries past the row's end
  add exactly zero to targets spread over distinct addresses (a GPU serialises
  atomic adds that meet at one address). The adds reach each target in the order of
  the per-entry delivery (spikes in order, each row in storage order), so on the CPU
  the sums are bit for bit today's.
* **Monitors with device-side write pointers**, and state written in place.

Entries that need the host (Python callables, spike generators' event lists,
learning rules and signals, which are tensor code of their own) run between the
device entries with the host step, as before; in a slice with any of them the spike
counts are checked at once rather than after the slice, since such an entry cannot
be run twice. :meth:`StaticStep.compilable_slice` returns one slice of a network of
device entries only as a function of tensors, which ``torch.compile(fullgraph=True)``
accepts: no Python branch on a tensor's value. (That the step reads nothing back is
tested by counting its operators: torch 2.13 traces ``.item()`` without a graph break.)
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any, Callable

import torch

from neurosim.backends.torch_merge import (MergedDelivery, PopulationGroup, group_populations,
                                           merge_deliveries)
from neurosim.convolution import convolve, delivers_by_conv2d
from neurosim.counter_rng import step_key, step_keys
from neurosim.gating import delivered, delivery_gain
from neurosim.projection import DENSE_MATMUL_BATCH

if TYPE_CHECKING:
    from neurosim.backends.torch_backend import TorchBackend
    from neurosim.population import Population
    from neurosim.projection import Projection

#: the smallest size of a padded spike list; it grows (to 1.5 times the count) when spikes
#: overflow it and shrinks after a slice that used less than half of it
MIN_CAP = 16
#: steps per captured CUDA graph
GRAPH_STEPS = 100
#: kinds that run on the device with the device clock; every other kind runs on the host
DEVICE_KINDS = ("population", "delivery", "record_spikes", "record_events", "count_spikes",
                "record_state")


class GraphCaptureError(RuntimeError):
    """A slice could not be captured in a CUDA graph."""


class FusedUpdate:
    """A model's update compiled by ``torch.compile`` (on CUDA one fused kernel instead of
    one per operation); the plain update if compiling fails (no Triton, say)."""

    def __init__(self, update: Callable[..., Any]) -> None:
        self.update = update
        self.compiled: Callable[..., Any] | None = None
        self.failed = False

    def __call__(self, *args: Any) -> Any:
        if not self.failed:
            try:
                if self.compiled is None:
                    self.compiled = torch.compile(self.update, fullgraph=True, dynamic=False)
                return self.compiled(*args)
            except Exception as exc:  # noqa: BLE001 (any failure to compile: run it plainly)
                self.failed = True
                warnings.warn(f"neurosim: compiling the neuron update failed "
                              f"({type(exc).__name__}: {str(exc)[:200]}); running it unfused")
        return self.update(*args)


class SpikeList:
    """The (row, neuron) pairs a ring slot holds, padded to ``cap`` entries.

    ``cols`` of a padding entry is ``n`` (one past the last neuron), whose row in
    every delivery table is empty; ``rows`` of it is 0. ``seen`` holds the largest
    number of spikes listed since it was last reset (on the device)."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.n = n
        self.cap = MIN_CAP
        self.seen = torch.zeros((), dtype=torch.int64, device=device)

    def list(self, spikes: torch.Tensor, immediate: bool) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(rows, neurons) of the spikes in ``spikes`` ``(batch, n)``, padded; rows is None
        at batch 1 (all 0)."""
        count = self.count = spikes.count_nonzero()
        if immediate:  # a slice that cannot run twice: make room now (one host read)
            c = int(count)
            if c > self.cap:
                self.grow(c)
        else:
            torch.maximum(self.seen, count, out=self.seen)
        if spikes.shape[0] == 1:
            return None, torch.nonzero_static(spikes[0], size=self.cap, fill_value=self.n)[:, 0]
        idx = torch.nonzero_static(spikes, size=self.cap, fill_value=-1)
        return idx[:, 0].clamp_min(0), idx[:, 1].remainder(self.n + 1)

    def grow(self, count: int) -> None:
        self.cap = max(self.cap, self.fit(count))

    @staticmethod
    def fit(count: int) -> int:
        """A size with room for 1.5 times ``count`` spikes (a multiple of ``MIN_CAP``)."""
        return MIN_CAP * max(1, -(-3 * count // (2 * MIN_CAP)))


class CSRTable:
    """One delay block of a CSR projection, as what a padded gather needs: per
    presynaptic neuron (and one empty row after the last, a padding entry's) where its
    synapses start and how many there are, ``(n_pre + 1, 2)``."""

    def __init__(self, proj: "Projection", q: int, a: dict[str, torch.Tensor]) -> None:
        indptr = a[f"block{q}.indptr"].to(torch.int64)
        dev = indptr.device
        lengths = indptr[1:] - indptr[:-1]
        self.nnz = int(indptr[-1])
        self.width = int(lengths.max()) if lengths.numel() else 0  # K, the longest row
        rows = torch.stack([indptr[:-1], lengths], dim=1)
        self.rows = torch.cat([rows, torch.zeros((1, 2), dtype=torch.int64, device=dev)])
        self.columns = torch.arange(self.width, dtype=torch.int64, device=dev).unsqueeze(0)
        self.positions = a.get(f"block{q}.positions")
        self.key = (a[f"block{q}.indptr"].data_ptr(), a[f"block{q}.indptr"]._version)


class StaticStep:
    """Runs slices of steps of a network on the torch backend with the clock on the
    device and padded spike lists (see the module's docstring)."""

    def __init__(self, backend: "TorchBackend", merge: bool = True) -> None:
        self.backend = backend
        self.net = backend.net
        dev = self.net.device
        self.t = torch.zeros((), dtype=torch.int64, device=dev)  # the step, on the device
        self.t0 = torch.zeros((), dtype=torch.int64, device=dev)  # the slice's first step
        self.lists: dict[tuple[str, int], SpikeList] = {}  # by (population, delay)
        self.tables: dict[tuple[str, int], CSRTable] = {}  # by (projection, block)
        self.rows: dict[int, torch.Tensor] = {}  # monitors' write pointers
        self.keys: dict[int, torch.Tensor] = {}  # random streams' step hashes of the slice
        #: step populations of one model as one, and deliveries from one source as one
        #: (:mod:`.torch_merge`; batch 1, no host entries)
        self.merge = merge
        self.host_entries = False
        self.plan: list[tuple[str, bool, Callable[[int], Any]]] = []
        self.monitors: list[Any] = []  # the monitors that record on the device
        self.groups: list[PopulationGroup] = []
        self.merged: list[MergedDelivery] = []
        self._arrays: dict[int, dict[str, torch.Tensor]] = {}
        #: on CUDA, slices of device entries run as replays of captured CUDA graphs
        self.cuda_graphs = True
        self._graphs: dict[Any, Any] = {}
        self._aranges: dict[int, torch.Tensor] = {}
        self._fills: dict[int, tuple[int, int]] = {}  # compact buffers' (drains, events), as last read
        self._host_rows: dict[int, int] = {}  # monitors' write rows, in slices run op by op
        self.step: int | None = None
        self._bind()

    # -- the plan ------------------------------------------------------------------------
    def _bind(self) -> None:
        self.plan, self.monitors, self.groups, self.merged = [], [], [], []
        self.event_monitors: list[Any] = []  # spike monitors with compact device records
        self.lists_used = True
        self._graphs = {}
        self._arrays.clear()
        entries = []
        for phase, _, kind, obj in self.net._schedule.entries():
            if kind == "record_spikes" and getattr(obj, "device_events", False):
                kind = "record_events"  # compact records on the device (a CUDA run's)
            device = kind in DEVICE_KINDS and not (kind == "population" and obj.is_generator) \
                and not (kind == "record_spikes" and "events.fill" in obj.arrays())
            entries.append((phase, kind, obj, device))
        self.host_entries = not all(device for *_, device in entries)
        net = self.net
        merging = (self.merge and not self.host_entries and net.batch == 1 and
                   net.partition is None and net.data_parallel is None)
        if merging:
            entries = self._merged(entries)
        self.lists_used = any(self._lists_used(kind, obj) for _, kind, obj, _ in entries)
        for phase, kind, obj, device in entries:
            if device:
                if kind in ("record_spikes", "record_state"):
                    self.monitors.append(obj)
                if kind == "record_events":
                    self.event_monitors.append(obj)
                run = getattr(self, f"run_{kind}")
                self.plan.append((phase, True, lambda t, run=run, obj=obj: run(obj)))
            else:
                run = obj if kind == "python" else getattr(self.backend, f"run_{kind}")
                self.plan.append((phase, False, self._forgetting(run) if kind == "python" else
                                  (lambda t, run=run, obj=obj: run(obj, t))))

    def _merged(self, entries: list[tuple[str, str, Any, bool]]) -> list[tuple[str, str, Any, bool]]:
        """The entries with runs of populations of one model as groups, and the deliveries
        of the deliver phase as merged sets (:mod:`.torch_merge`)."""
        out: list[tuple[str, str, Any, bool]] = []
        group_of: dict[str, PopulationGroup] = {}
        i = 0
        while i < len(entries):  # consecutive population entries
            j = i
            while j < len(entries) and entries[j][1] == "population":
                j += 1
            if j == i:
                out.append(entries[i])
                i += 1
                continue
            for members in group_populations([e[2] for e in entries[i:j]]):
                if len(members) == 1:  # (stepped as it is; a group of one for deliveries)
                    out.append((entries[i][0], "population", members[0], True))
                    continue
                group = PopulationGroup(members)
                self.groups.append(group)
                for pop in members:
                    group_of[pop.name] = group
                out.append((entries[i][0], "group", group, True))
            i = j
        for pop in self.net.populations.values():
            if pop.name not in group_of:
                group_of[pop.name] = PopulationGroup([pop])

        def group(pop: Any) -> PopulationGroup:
            return group_of[pop.name]

        final: list[tuple[str, str, Any, bool]] = []
        i = 0
        while i < len(out):
            phase, kind = out[i][0], out[i][1]
            if kind != "delivery" or phase != "deliver":
                final.append(out[i])
                i += 1
                continue
            j = i
            while j < len(out) and out[j][1] == "delivery" and out[j][0] == "deliver":
                j += 1
            for item in merge_deliveries([e[2] for e in out[i:j]], group):
                if isinstance(item, list):
                    merged = MergedDelivery(item, group(item[0].pre), group(item[0].post))
                    self.merged.append(merged)
                    final.append((phase, "merged_delivery", merged, True))
                else:
                    final.append((phase, "delivery", item, True))
            i = j
        return final

    def _lists_used(self, kind: str, obj: Any) -> bool:
        """Whether an entry lists spikes (and so a slice can overflow a list)."""
        if kind in ("merged_delivery", "record_events"):
            return True
        return kind == "delivery" and (obj.sparse or not (obj.pre.graded or
                                                          self.net.batch >= DENSE_MATMUL_BATCH))

    def _forgetting(self, run: Callable[[int], Any]) -> Callable[[int], Any]:
        def run_python(t: int) -> None:
            run(t)
            self._arrays.clear()
        return run_python

    def unjoin(self) -> None:
        """Every joined population and projection back to tensors of its own (before a
        differentiable unroll, whose caches tell writes apart by version counters)."""
        for group in self.groups:
            group.unjoin()
        for merged in self.merged:
            merged.unjoin()
        self.groups, self.merged = [], []

    # -- one step's shared quantities -------------------------------------------------------
    def _begin_step(self, step: int | None = None) -> None:
        #: the step as a host integer in a slice run op by op (the host knows it without
        #: asking the device: ring slots are views and due steps Python branches); None
        #: in a captured or compiled slice, which reads the device clock
        self.step = step
        self._now: dict[str, torch.Tensor] = {}  # what each population emitted this step
        self._slots: dict[tuple[int, int], torch.Tensor] = {}
        self._listed: dict[tuple[str, int], tuple[torch.Tensor | None, torch.Tensor]] = {}
        self._key_index: torch.Tensor | None = None

    def _a(self, obj: Any) -> dict[str, torch.Tensor]:
        """``obj.arrays()``, once per slice (and again after a Python entry, which may
        replace arrays, e.g. by ``set_parameters``)."""
        a = self._arrays.get(id(obj))
        if a is None:
            a = self._arrays[id(obj)] = obj.arrays()
        return a

    def _slot(self, length: int, delay: int) -> torch.Tensor:
        """``(t - delay) % length`` as a 1-element index, once per step."""
        s = self._slots.get((length, delay))
        if s is None:
            s = self._slots[(length, delay)] = (self.t - delay).remainder(length).reshape(1)
        return s

    def emitted(self, pop: "Population", delay: int) -> torch.Tensor:
        """The ring slot of step ``t - delay`` of ``pop`` (this step's, before the ring is
        read, when ``pop`` updated in this step)."""
        if delay == 0 and pop.name in self._now:
            return self._now[pop.name]
        ring = self._a(pop)["spikes"]
        if self.step is not None:
            return ring[(self.step - delay) % ring.shape[0]]
        return ring.index_select(0, self._slot(ring.shape[0], delay))[0]

    def _spike_list(self, pop: "Population", delay: int) -> tuple[torch.Tensor | None, torch.Tensor]:
        key = (pop.name, delay)
        listed = self._listed.get(key)
        if listed is None:
            lst = self.lists.get(key)
            if lst is None:
                lst = self.lists[key] = SpikeList(pop.n, self.net.device)
            listed = self._listed[key] = lst.list(self.emitted(pop, delay), self.host_entries)
        return listed

    def _step_key(self, key: int) -> Any:
        if self.step is not None:
            return step_key(key, self.step)
        if self._key_index is None:
            self._key_index = (self.t - self.t0).reshape(1)
        return self.keys[key].index_select(0, self._key_index)

    # -- one implementation per device kind -------------------------------------------------
    def run_population(self, pop: "Population") -> None:
        a = self._a(pop)
        out = self.backend.integrate(pop, a, self._step_key)
        ring = a["spikes"]
        if self.step is not None:
            ring[self.step % ring.shape[0]].copy_(out)
        else:
            ring.index_copy_(0, self._slot(ring.shape[0], 0), out.unsqueeze(0).to(ring.dtype))
        self._now[pop.name] = out if out.dtype == ring.dtype else out.to(ring.dtype)

    def run_group(self, group: PopulationGroup) -> None:
        """Populations stepped as one: the group's update, and each member's columns of
        what it emitted."""
        self.run_population(group)
        if len(group.members) > 1:
            out = self._now[group.name]
            for pop, lo in zip(group.members, group.offsets):
                self._now[pop.name] = out[:, lo:lo + pop.n]

    def run_merged_delivery(self, merged: MergedDelivery) -> None:
        _, cols = self._spike_list(merged.pre, merged.delay)
        target = self._a(merged.post)[f"state.{merged.projections[0].target}"]
        merged.deliver(cols, target)

    def run_delivery(self, proj: "Projection") -> None:
        a = self._a(proj)
        target = self._a(proj.post)[f"state.{proj.target}"]
        weight = a["weight.delivered"] if proj.gate_scaled else a["weight"]
        graded = proj.pre.graded
        gate = proj.post.gate if not proj.gate_scaled else None
        dense_product = graded or self.net.batch >= DENSE_MATMUL_BATCH
        if delivers_by_conv2d(proj, dense_product):  # a Convolution: one conv2d
            target.add_(convolve(proj, self.emitted(proj.pre, proj.blocks[0].delay), weight))
            return
        for q, block in enumerate(proj.blocks):
            if not proj.sparse and dense_product:
                spikes = self.emitted(proj.pre, block.delay)
                if spikes.dtype != weight.dtype:
                    spikes = spikes.to(weight.dtype)
                if gate is None:
                    target.addmm_(spikes, weight)  # the sum inside the product
                else:
                    target.add_(delivered(weight, spikes, delivery_gain(gate)))
                continue
            rows, cols = self._spike_list(proj.pre, block.delay)
            if not proj.sparse:
                # a padding entry's row (one past the last neuron) adds zeros to row 0
                rows_w = weight.index_select(0, cols.clamp_max(proj.pre.n - 1))
                if rows is None:
                    rows = torch.zeros_like(cols)
                if gate is not None:
                    rows_w = rows_w * gate.gain[rows]
                # (filled, not multiplied: a padding entry adds -0.0 even where w is NaN)
                target.index_add_(0, rows, rows_w.masked_fill_((cols >= proj.pre.n).unsqueeze(1), -0.0))
                continue
            table = self.tables[(proj.name, q)]
            if table.nnz == 0 or table.width == 0:
                continue
            # synapse k of each listed row; past its end, zeros sent to the next rows'
            # targets (spread addresses: the padding row starts at 0)
            row = table.rows.index_select(0, cols)
            pos = (row[:, :1] + table.columns).clamp_max_(table.nnz - 1)
            past = table.columns >= row[:, 1:]
            if table.positions is not None:
                pos = table.positions[pos]
            values = weight.take(pos)
            flat = a["indices"].take(pos)
            if rows is not None:
                flat = flat + (rows * proj.post.n).unsqueeze(1)
            if gate is not None:
                values = values * gate.gain.reshape(-1)[flat]
            if graded:
                ring_values = self.emitted(proj.pre, block.delay).reshape(-1)
                at = cols.clamp_max(proj.pre.n - 1) if rows is None else \
                    rows * proj.pre.n + cols.clamp_max(proj.pre.n - 1)
                values = values * ring_values[at].unsqueeze(1)
            # filled last (zeros whatever was gathered), with -0.0: x + -0.0 is x for every x,
            # a target's -0.0 included
            values = values.masked_fill_(past, -0.0)
            target.view(-1).index_add_(0, flat.reshape(-1), values.reshape(-1))

    def _check_tables(self) -> None:
        """Build each CSR block's table, again when its structure was replaced."""
        for proj in self.net.projections.values():
            if not proj.sparse:
                continue
            a = self._a(proj)
            for q in range(len(proj.blocks)):
                indptr = a[f"block{q}.indptr"]
                table = self.tables.get((proj.name, q))
                if table is None or table.key != (indptr.data_ptr(), indptr._version) or \
                        table.positions is not a.get(f"block{q}.positions"):
                    self.tables[(proj.name, q)] = CSRTable(proj, q, a)
                    self._graphs.clear()

    def run_record_spikes(self, mon: Any) -> None:
        if not mon.active:
            return
        raster = self._a(mon)["raster"]
        if self.step is not None:
            raster[self._host_rows[id(mon)]].copy_(self.emitted(mon.population, 0))
            self._host_rows[id(mon)] += 1
            return
        row = self._row(mon)
        raster.index_copy_(0, row, self.emitted(mon.population, 0).unsqueeze(0).to(raster.dtype))
        row.add_(1)

    def run_record_events(self, mon: Any) -> None:
        """This step's spikes as (step, neuron, row) events at the buffer's fill: all
        ``cap`` entries of the padded list are written, and the fill advances by the
        count, so the padding is overwritten next (the buffer keeps room for it)."""
        if not mon.active:
            return
        pop = mon.population
        rows, cols = self._spike_list(pop, 0)
        a = self._a(mon)
        cap = cols.shape[0]
        at = self._arange(cap).add(a["events.fill"])
        if self.step is not None:
            a["events.step"].index_fill_(0, at, self.step)
        else:
            a["events.step"].index_copy_(0, at, self.t.expand(cap))
        a["events.neuron"].index_copy_(0, at, cols.to(torch.int32))
        if rows is not None:
            a["events.batch"].index_copy_(0, at, rows.to(torch.int32))
        else:
            a["events.batch"].index_fill_(0, at, 0)
        # (at most cap: a slice whose list overflowed runs again, and its room was sized
        # for cap entries a step)
        a["events.fill"].add_(self.lists[(pop.name, 0)].count.clamp_max(cap))

    def _arange(self, n: int) -> torch.Tensor:
        r = self._aranges.get(n)
        if r is None:
            r = self._aranges[n] = torch.arange(n, dtype=torch.int64, device=self.net.device)
        return r

    def run_count_spikes(self, mon: Any) -> None:
        if mon.active:
            counts = self._a(mon)["counts"]
            counts.add_(self.emitted(mon.population, 0).to(counts.dtype))

    def run_record_state(self, mon: Any) -> None:
        if not mon.active:
            return
        a, source = self._a(mon), self._a(mon.population)
        if self.step is not None:
            if self.step % mon.every:
                return
            k = self._host_rows[id(mon)]
            for var in mon.variables:
                src = source[mon.source(var)]
                a[f"buffer.{var}"][k].copy_(src if mon.all_neurons else src.index_select(1, a["neurons"]))
            self._host_rows[id(mon)] = k + 1
            return
        row = self._row(mon)
        for var in mon.variables:
            src = source[mon.source(var)]
            # a step that is not due writes the next free row (the buffer has one spare),
            # which the next due step overwrites
            a[f"buffer.{var}"].index_copy_(
                0, row, (src if mon.all_neurons else src.index_select(1, a["neurons"])).unsqueeze(0))
        row.add_(1 if mon.every == 1 else (self.t.remainder(mon.every) == 0).to(torch.int64))

    def _row(self, mon: Any) -> torch.Tensor:
        return self.rows[id(mon)]

    # -- slices -------------------------------------------------------------------------------
    def _begin_slice(self, step: int, n_steps: int) -> None:
        net = self.net
        self._arrays.clear()
        if not all(g.current() for g in self.groups) or not all(m.current() for m in self.merged):
            self._bind()  # a member's tensors were replaced: join them again
        self.t.fill_(step)
        self.t0.fill_(step)
        for pop in net.populations.values():
            for key in getattr(pop, "random_keys", {}).values():
                # (a buffer that stays, since a CUDA graph holds its address)
                table = torch.as_tensor(step_keys(key, step, n_steps))
                buf = self.keys.get(key)
                if buf is None or buf.shape[0] < n_steps:
                    buf = self.keys[key] = torch.zeros(max(n_steps, GRAPH_STEPS), dtype=torch.int64,
                                                       device=net.device)
                    self._graphs.clear()
                buf[:n_steps].copy_(table)
        self._set_rows()
        for lst in self.lists.values():
            lst.seen.zero_()
        self._check_tables()

    def _set_rows(self) -> None:
        """The monitors' device write pointers from their host row counts."""
        for mon in self.monitors:
            row = self.rows.get(id(mon))
            if row is None:
                row = self.rows[id(mon)] = torch.zeros((1,), dtype=torch.int64, device=self.net.device)
            row.fill_(mon.rows_filled)
            self._host_rows[id(mon)] = mon.rows_filled

    def _recorded(self, start: int, stop: int) -> None:
        for mon in self.monitors:
            if mon.active:
                mon.recorded_steps(start, stop)

    def _snapshot(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Copies of what a slice of device entries writes and reads back (state, rings,
        spike counts), to run it again."""
        tensors = []
        for pop in self.net.populations.values():
            a = pop.arrays()
            tensors += [v for k, v in a.items() if k == "spikes" or k.startswith("state.")]
        for mon in self.net.monitors.values():
            if mon.record_kind == "count_spikes":
                tensors.append(mon.arrays()["counts"])
        for mon in self.event_monitors:
            tensors.append(mon.arrays()["events.fill"])
        return [(x, x.clone()) for x in tensors]

    def _overflowed(self) -> bool:
        """Grow every spike list that overflowed in the slice (one host read for all)."""
        lists = list(self.lists.values())
        if not lists:
            return False
        read = torch.stack([lst.seen for lst in lists] +
                           [m.arrays()["events.fill"][0] for m in self.event_monitors]).tolist()
        seen = read[:len(lists)]
        for mon, fill in zip(self.event_monitors, read[len(lists):]):
            self._fills[id(mon)] = (mon.drains, fill)
        over = False
        for lst, count in zip(lists, seen):
            if count > lst.cap:
                lst.grow(count)
                over = True
            elif 2 * count < lst.cap:  # (a burst's size is not kept for the quiet after it)
                lst.cap = lst.fit(count)
        return over

    def advance(self, n_steps: int, profile: bool) -> None:
        net = self.net
        end = net.clock.step + n_steps
        while net.clock.step < end:
            self._advance_slice(self._room(end - net.clock.step), profile)

    def _room(self, n_steps: int) -> int:
        """How many of ``n_steps`` steps fit in the compact event buffers (writing the
        log first if they are not empty and too full): a step needs a spike list's room."""
        if not self.event_monitors:
            return n_steps
        for mon in self.event_monitors:
            lst = self.lists.get((mon.population.name, 0))
            cap = lst.cap if lst is not None else MIN_CAP
            capacity = mon.arrays()["events.step"].shape[0]
            if self._fill(mon) + (n_steps + 1) * cap > capacity:
                if self._fill(mon) > 0:
                    self.net._flush()  # (empties every monitor's buffers)
                n_steps = max(1, min(n_steps, capacity // cap - 1))
        return n_steps

    def _fill(self, mon: Any) -> int:
        """Events in ``mon``'s buffer as last read (0 once the log took them)."""
        drains, fill = self._fills.get(id(mon), (-1, 0))
        return fill if drains == mon.drains else 0

    def _advance_slice(self, n_steps: int, profile: bool) -> None:
        net = self.net
        start = net.clock.step
        graphs = (self.cuda_graphs and net.device.type == "cuda" and not self.host_entries
                  and not profile and not net.deterministic)
        while True:
            # (the slice's start first: it may join populations again, replacing tensors
            # that a copy taken before would miss)
            self._begin_slice(start, n_steps)
            # (a copy to run the slice again from, if a spike list can overflow; a graph's
            # warm-up puts its changes back from it too)
            saved = self._snapshot() if not self.host_entries and (self.lists_used or graphs) else []
            if graphs:
                try:
                    self._replay(start, n_steps, saved)
                except GraphCaptureError as exc:  # (then run op by op: an error of the step
                    # itself comes back there)
                    warnings.warn(f"neurosim: capturing the step in a CUDA graph failed ({exc}); "
                                  f"running without graphs")
                    self.cuda_graphs = graphs = False
                    for x, copy in saved:
                        x.copy_(copy)
                    self._begin_slice(start, n_steps)
                    self._run(start, n_steps, profile)
            else:
                self._run(start, n_steps, profile)
            if self.host_entries:
                if self.event_monitors:
                    fills = torch.stack([m.arrays()["events.fill"][0] for m in self.event_monitors])
                    self._fills.update((id(m), (m.drains, f))
                                       for m, f in zip(self.event_monitors, fills.tolist()))
                break
            if not self._overflowed():
                self._recorded(start, start + n_steps)
                break
            for x, copy in saved:  # a spike list overflowed: run the slice again, larger
                x.copy_(copy)
            net.clock.step = start
            n_steps = self._room(n_steps)  # (larger lists may need more room)
        for pop in net.populations.values():
            pop.last_step = start + n_steps - 1

    # -- CUDA graphs ----------------------------------------------------------------------------
    def _steps(self, n_steps: int) -> None:
        """``n_steps`` steps of device entries, advancing only the device clock."""
        plan = [run for _, _, run in self.plan]
        for _ in range(n_steps):
            self._begin_step()
            for run in plan:
                run(0)
            self.t.add_(1)

    def _replay(self, start: int, n_steps: int, saved: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Run a slice as replays of CUDA graphs of up to ``GRAPH_STEPS`` steps each, captured
        once per size of the spike lists (and per structure: a rebind drops them)."""
        done = 0
        while done < n_steps:
            k = min(GRAPH_STEPS, n_steps - done)
            try:
                graph = self._graph(k, saved)
            except Exception as exc:  # noqa: BLE001 (told apart from errors of the replay)
                raise GraphCaptureError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
            graph.replay()
            done += k
        self.net.clock.step = start + n_steps

    def _graph(self, steps: int, saved: list[tuple[torch.Tensor, torch.Tensor]]) -> Any:
        # a graph holds the addresses of every array it read (one replaced, by a parameter
        # set or a resized ring, needs a new capture: compared by identity, as the ids of
        # freed tensors come back) and what Python decided while capturing it
        net = self.net
        arrays = [x for obj in (*net.populations.values(), *net.projections.values(),
                                *net.monitors.values()) for x in obj.arrays().values()]
        settings = (tuple(m.active for m in net.monitors.values()),
                    tuple((p.gate.version, p.gate.temperature, p.gate.activity_gate)
                          for p in net.populations.values() if getattr(p, "gate", None) is not None))
        key = (steps, tuple(lst.cap for lst in self.lists.values()), id(self.plan), settings)
        cached = self._graphs.get(key)
        if cached is not None and len(cached[1]) == len(arrays) and \
                all(a is b for a, b in zip(cached[1], arrays)):
            return cached[0]
        # capture records without running; the warm-up before it (which CUDA requires, and
        # which sizes the spike lists) runs, so what it changed is put back
        t, rows = self.t.clone(), {k: r.clone() for k, r in self.rows.items()}
        now = [(x, x.clone()) for x, _ in saved]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self._steps(steps)
        torch.cuda.current_stream().wait_stream(stream)
        for x, copy in now:
            x.copy_(copy)
        self.t.copy_(t)
        for k, r in rows.items():
            self.rows[k].copy_(r)
        if len(self._graphs) > 32:  # (sizes come and go: keep the recent)
            self._graphs.pop(next(iter(self._graphs)))
        if tuple(lst.cap for lst in self.lists.values()) != key[1]:
            return self._graph(steps, saved)  # (the warm-up listed a new source)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._steps(steps)
        self._graphs[key] = (graph, arrays)
        return graph

    def _run(self, start: int, n_steps: int, profile: bool) -> None:
        net = self.net
        plan, host = self.plan, self.host_entries
        # (False: the device clock, as a captured slice reads it; tests compare the two)
        host_indices = self.backend.host_indices
        pops = list(net.populations.values()) if host else ()
        # event buffers that might not hold one more step: written to the log first (with
        # host entries only; a slice of device entries was sized to fit, see _room)
        buffers = [m for m in net.monitors.values() if "events.fill" in m.arrays()] if host else []
        sync = (torch.cuda.synchronize if net.device.type == "cuda" else (lambda: None))
        timings = net.timings
        for step in range(start, start + n_steps):
            if buffers and any(m.event_buffer_full for m in buffers):
                net._flush()
                self._set_rows()
            self._begin_step(step if host_indices else None)
            for pop in pops:  # what host entries read as the populations' latest spikes
                pop.last_step = step - 1
            for phase, on_device, run in plan:
                t0 = time.perf_counter() if profile else 0.0
                if not on_device:
                    for pop in pops:
                        if pop.name in self._now:
                            pop.last_step = step
                run(step)
                if profile:
                    sync()
                    timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - t0
            if not host_indices:
                self.t.add_(1)
            if host:  # (a host entry may write the log before the slice ends)
                self._recorded(step, step + 1)
            net.clock.step = step + 1

    # -- one slice as a function of tensors, for torch.compile -------------------------------
    def compilable_slice(self, n_steps: int) -> Callable[[], None]:
        """A function running ``n_steps`` steps from the clock's step with device entries
        only (no host reads: the spike lists keep their current sizes), for
        ``torch.compile(fullgraph=True)``. Call :meth:`prepare_slice` before each call."""
        if self.host_entries:
            raise ValueError("compilable_slice: the network has entries that run on the host "
                             "(Python callables, rules, signals or spike generators)")

        def run_slice() -> None:
            self._steps(n_steps)
        return run_slice

    def prepare_slice(self, n_steps: int) -> None:
        """Set the device clock, step hashes and write pointers for a slice of
        :meth:`compilable_slice` from the network's clock."""
        self._begin_slice(self.net.clock.step, n_steps)
