"""Data-parallel runs: each process simulates its own rows of the batch, and the weight
changes of local rules are summed across processes where one process applies them.

``Network(batch=b, data_parallel=Partition.from_process_group())`` in each of ``N``
processes is one network of batch ``N x b``: process ``r`` runs rows ``r*b .. r*b + b - 1``
(random numbers and drawn initial values are those rows'; the script gives each process
its own samples). A rule that reads activity changes the shared weights by the sum over
all rows, so :class:`WeightReduction` snapshots the weights before each step (or each
event) on which such a rule applies, lets every process apply its rows' change with the
rule's bounds deferred, sums the changes with one ``all_reduce``, and clips the sum where
it is nonzero, as the rule would have: the weights are those of one process up to the
order in which the rows' changes are added (and the rounding of ``(w + d) - w``).
Rules that read only the weights (a normalisation) do the same in every process and are
not summed; when summed rules apply every step they are applied after each sum. (A
summed rule applying every step means a sum every step, whatever its ``every``.)

``Network(weight_window=K)`` (in one process or in several) applies the changes once every
K steps of the clock instead, before events and at the end of each run: in between the
network runs with the weights fixed, and each rule adds the change it computes from them
to a pending sum (``rule.pending``; the backends write there instead of the weights),
which is clipped where it is nonzero when applied. Data-parallel, the pending sums are
summed across processes once per window, so N processes give the weights of one process
with the whole batch and the same window, with K times fewer collectives than summing
every step. A rule of the weights alone applies on its steps, which must be multiples of
K, to the weights the last window left.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from neurosim.distributed.partition import Partition
    from neurosim.network import Network

#: argument kinds of a declared rule's hooks that read only the weights
_WEIGHT_ONLY = {"w", "param", "post_sum", "d"}


def reads_activity(rule: Any) -> bool:
    """Whether ``rule``'s change depends on activity (spikes, traces, state, signals), so
    that its change differs between processes and must be summed."""
    recipe = rule.declared
    if recipe is None:
        return True  # tensor code: assume it does
    if recipe.traces or recipe.neuron_state or recipe.eligibility is not None or recipe.signals:
        return True
    return any(a.kind not in _WEIGHT_ONLY for name, fn in recipe.hooks().items()
               for a in rule.hook_arguments(name, fn))


class WeightReduction:
    """Sums, across the processes of a data-parallel run, the weight changes of the rules
    that read activity, every step or once per weight window (see the module's
    docstring; in one process with a window it only applies the windows)."""

    def __init__(self, net: "Network", partition: "Partition", window: int | None = None) -> None:
        self.net, self.partition = net, partition
        self.device = net.device  # (NCCL sums tensors on the GPU only)
        #: None: sum at every step a summed rule applies; K: apply (sum) the pending
        #: changes every K steps of the clock, before events and at the end of each run
        self.window = window
        self._open = False  # (window mode: pending changes may be nonzero)
        reduced = [rule for rule in net.rules.values() if reads_activity(rule)]
        by_projection: dict[str, Any] = {}
        for rule in reduced:
            if rule.as_gradient:
                raise ValueError(f"rule '{rule.name}': a rule with as_gradient=True writes .grad; in a "
                                 "data-parallel run (or with weight_window) reduce the gradients as DDP does")
            other = by_projection.setdefault(rule.projection.name, rule)
            if other is not rule:
                raise ValueError(f"rules '{other.name}' and '{rule.name}' both change projection "
                                 f"'{rule.projection.name}' from activity: a data-parallel run (or "
                                 "weight_window) sums one such rule's change per projection, so far")
            recipe = rule.declared
            if partition.size > 1 and recipe is not None and (recipe.on_apply is not None
                                                              or recipe.neuron_state):
                raise ValueError(
                    f"rule '{rule.name}' ({type(rule).__name__}): its change is not a sum over the "
                    "batch rows (an on_apply hook, e.g. a weight decay, would apply once per "
                    "process; per-neuron rule state averages only this process's rows), so a "
                    "data-parallel run cannot give one process's weights with it yet")
            # the bounds hold for the summed change (of a step, an event or a window)
            rule.bounds_deferred = True
            if window is not None and rule.apply_at is None:  # the backends add to it
                rule.pending = torch.zeros_like(rule.projection.weight.detach())
        self.rules = list(by_projection.values())
        #: a reduced rule applies in the rules phase of every step (else only at events)
        self.per_step = any(rule.apply_at is None for rule in self.rules)
        # A rule of the weights alone (a normalisation) does the same in every process, so
        # it must not be summed; on a step when summed rules apply too, it must see their
        # sum. So with summed rules every step, it is held back and applied here after each
        # sum (it must come after them in rule order, as here); at events, Network.trigger
        # applies rules in order, summing each summed one (see apply_event).
        self.held = [rule for rule in net.rules.values() if rule not in reduced
                     and rule.apply_at is None] if self.per_step else []
        for rule in self.held:
            if rule.declared is None:
                raise ValueError(f"rule '{rule.name}': a data-parallel run (or weight_window) applies "
                                 "rules that read only the weights after summing the others, from "
                                 "their recipe")
            # (with a window it applies where one ends, after its change, whatever the order)
            later = [r.name for r in self.rules if r.apply_at is None and r.projection is rule.projection
                     and list(net.rules.values()).index(r) > list(net.rules.values()).index(rule)]
            if later and window is None:
                raise ValueError(f"rule '{rule.name}' changes the weights before rule(s) {later} in "
                                 "each step; a data-parallel run (or weight_window) applies it after "
                                 "their summed change: add it after them")
            if window is not None and rule.every % window:
                raise ValueError(f"rule '{rule.name}' applies every {rule.every} steps; with "
                                 f"weight_window={window} it must apply where windows end (a "
                                 f"multiple of {window} steps) to see their changes")
            rule.held = True
        self.reduced = reduced
        self._before: list[torch.Tensor] = []
        self.seconds = 0.0
        self.calls = 0

    def release(self) -> None:
        """Give the rules their own bounds back (the network is prepared again)."""
        for rule in self.rules:
            rule.bounds_deferred = False
            rule.pending = None
        for rule in self.held:
            rule.held = False

    def slice_steps(self, net: "Network") -> int:
        if not self.per_step:
            return net._chunk_steps
        if self.window is None:
            return 1
        return self.window - net.clock.step % self.window  # up to the window's end

    def before_slice(self) -> None:
        if self.window is not None and self.per_step:
            t0 = self.net.clock.step
            # the held rules' steps are multiples of the window, so each such step begins a
            # slice, right after a window was applied: they apply to the weights it left,
            # before the step
            for rule in self.held:
                if t0 % rule.every == 0:
                    rule.torch_form.apply(t0, held=True)
            self._open = True
            return
        self._before = [rule.projection.weight.detach().clone() for rule in self.rules] if self.per_step else []

    def end_run(self, t: int) -> None:
        """A run ends (every process, at the same step): close an open window, so that
        nothing done between runs (set_weights, load_state, new rules) falls into one."""
        self.close_window(t)

    def close_window(self, t: int) -> None:
        """Window mode: apply (sum) the changes pending since the window opened (collective)."""
        if self._open:
            self._apply_pending(t, 1, False)
            self._open = False

    def apply_event(self, event: str, t: int) -> None:
        """Apply the rules waiting for ``event`` in rule order, summing each one's change
        across the processes (collective; ``Network.trigger`` calls it)."""
        self.close_window(t)
        for rule in self.net.rules.values():
            if rule.apply_at != event:
                continue
            if rule in self.reduced:
                w0 = rule.projection.weight.detach().clone()
                rule.apply(t, event=True)
                self._sum(t, 1, False, [(rule, w0, rule.projection.weight.detach() - w0)])
            else:  # (the same change in every process)
                rule.apply(t, event=True)
        if self.window is None and self.per_step:
            # fired by a callback within a step (before its dynamics): the step's change is
            # measured from the weights the event left, which are already summed
            self._before = [r.projection.weight.detach().clone() for r in self.rules]

    def exchange(self, t0: int, k: int, stop: bool = False) -> bool:
        """After a slice of steps (one step when summed rules apply every step, or up to
        the window's end; else only the stop flag is summed): sum the changes; True if any
        process was asked to stop."""
        rules = self.rules if self.per_step else []
        if self.window is not None and self.per_step:
            if (t0 + k) % self.window:  # the window goes on: only the stop flag
                self._open = True  # (an event in the slice may have closed it: reopened)
                return self._sum(t0, k, stop, [])
            self._open = False
            return self._apply_pending(t0, k, stop)
        any_stop = self._sum(t0, k, stop, [(rule, w0, rule.projection.weight.detach() - w0)
                                           for rule, w0 in zip(rules, self._before)])
        for t in range(t0, t0 + k):
            for rule in self.held:
                rule.torch_form.apply(t, held=True)
        return any_stop

    def _apply_pending(self, t0: int, k: int, stop: bool) -> bool:
        """Sum and apply the window's pending changes (the weights did not move meanwhile)."""
        any_stop = self._sum(t0, k, stop, [(rule, rule.projection.weight.detach(), rule.pending)
                                           for rule in self.rules if rule.pending is not None])
        for rule in self.rules:
            if rule.pending is not None:
                rule.pending.zero_()
        return any_stop

    def _sum(self, t0: int, k: int, stop: bool,
             changes: list[tuple[Any, torch.Tensor, torch.Tensor]]) -> bool:
        """Sum each ``(rule, base weights, change)``'s change (and the stop flags) across the
        processes; set the rule's weights to the base plus the sum, clipped where it is
        nonzero. True if any process was asked to stop."""
        t_start = time.perf_counter()
        part = self.partition
        dtype = changes[0][2].dtype if changes else torch.float32
        device = changes[0][2].device if changes else self.device
        buffer = torch.cat([d.reshape(-1) for _, _, d in changes]
                           + [torch.tensor([1.0 if stop else 0.0], dtype=dtype, device=device)])
        if part.size > 1:
            try:
                dist.all_reduce(buffer, group=part.group)
            except Exception as exc:  # noqa: BLE001 - gloo and NCCL raise several kinds
                raise RuntimeError(
                    f"data-parallel run: process {part.rank} of {part.size} lost contact with the "
                    f"others while summing the weight changes of steps {t0}..{t0 + k - 1} (another "
                    f"process died, was killed or stopped with an error): {type(exc).__name__}: "
                    f"{exc}") from exc
        at = 0
        for rule, base, _ in changes:
            w = rule.projection.weight
            d = buffer[at:at + w.numel()].reshape(w.shape)
            at += w.numel()
            new = base + d
            # the bounds hold where the summed change moved a weight, as the rule clips
            new = torch.where(d != 0, new.clamp(rule.w_min, rule.w_max), new)
            if rule.projection.mask is not None:
                new = new * rule.projection.mask
            with torch.no_grad():
                w.copy_(new)
        self.seconds += time.perf_counter() - t_start
        self.calls += 1
        return bool(buffer[-1] > 0)


def prepare(net: "Network") -> None:
    """Check what a data-parallel run supports; set up the weight reduction and the log."""
    from neurosim.monitors import ModulatorMonitor, SpikeCounter, SpikeMonitor, WeightMonitor

    for key, mon in net.monitors.items():
        if not isinstance(mon, (SpikeMonitor, SpikeCounter, WeightMonitor, ModulatorMonitor)):
            raise ValueError(f"monitor '{key}' ({type(mon).__name__}): a data-parallel run logs spike "
                             "monitors, spike counters, weight and signal monitors, so far")
    # a per-sample signal's snapshots hold this process's rows: joined along the batch
    net.log.batch_axis_keys = {f"modulators/{mon.name}/value" for mon in net.monitors.values()
                               if isinstance(mon, ModulatorMonitor) and mon.modulator.per_sample}
    for mod in net.modulators:
        whole_batch = mod.driver is not None or (
            mod.derived is not None and getattr(mod.derived, "per_neuron", True) is False)
        if whole_batch:
            raise ValueError(f"signal '{mod.name}' averages over the whole batch (a drive or a "
                             "population rate of all samples): in a data-parallel run each process "
                             "holds only its rows, so such signals are not supported yet")
    _install(net, net.data_parallel)
    # every process records other rows: spike events are joined (their batch rows global)
    net.log.split_bases = {f"spikes/{mon.name}" for mon in net.monitors.values()
                           if isinstance(mon, SpikeMonitor)}


def prepare_window(net: "Network") -> None:
    """One process with ``weight_window``: the windows, without collectives."""
    from neurosim.distributed.partition import Partition

    _install(net, Partition(0, 1))


def _install(net: "Network", partition: "Partition") -> None:
    previous = net._exchange if isinstance(net._exchange, WeightReduction) else None
    if previous is not None:  # (its window was closed when its last run or event ended)
        previous.release()
    reduction = WeightReduction(net, partition, net.weight_window)
    if previous is not None:
        reduction.seconds, reduction.calls = previous.seconds, previous.calls
    net._exchange = reduction
