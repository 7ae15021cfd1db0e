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
``Network(sync_every=K)`` sums only every K steps of the global clock, before events and
at the end of each run: faster, and approximate (each process learns from its own rows
between sums; a rule of the weights alone applies on its steps, multiples of K, before
the step's change rather than after it).
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
    that read activity (see the module's docstring)."""

    def __init__(self, net: "Network", partition: "Partition", sync_every: int | None = None) -> None:
        self.net, self.partition = net, partition
        self.device = net.device  # (NCCL sums tensors on the GPU only)
        #: None: sum at every step a summed rule applies (exact); K: sum every K steps of
        #: the global clock (and before events), each process meanwhile learning from its
        #: own rows only (approximate, with K times fewer collectives)
        self.window = sync_every
        self._open = False  # (window mode: the weights at the window's start are in _before)
        reduced = [rule for rule in net.rules.values() if reads_activity(rule)]
        by_projection: dict[str, Any] = {}
        for rule in reduced:
            if rule.as_gradient:
                raise ValueError(f"rule '{rule.name}': a rule with as_gradient=True writes .grad; in a "
                                 "data-parallel run reduce the gradients as DDP does")
            other = by_projection.setdefault(rule.projection.name, rule)
            if other is not rule:
                raise ValueError(f"rules '{other.name}' and '{rule.name}' both change projection "
                                 f"'{rule.projection.name}' from activity: a data-parallel run sums "
                                 "one such rule's change per projection, so far")
            # exact: clip the summed change, as one process clips; window: each process
            # clips its own weights as it learns, and the sum is clipped again
            rule.bounds_deferred = sync_every is None or rule.apply_at is not None
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
                raise ValueError(f"rule '{rule.name}': a data-parallel run applies rules that read "
                                 "only the weights after summing the others, from their recipe")
            later = [r.name for r in self.rules if r.apply_at is None
                     and list(net.rules.values()).index(r) > list(net.rules.values()).index(rule)]
            if later:
                raise ValueError(f"rule '{rule.name}' changes the weights before rule(s) {later} in "
                                 "each step; a data-parallel run applies it after their summed change: "
                                 "add it after them")
            if sync_every is not None and rule.every % sync_every:
                raise ValueError(f"rule '{rule.name}' applies every {rule.every} steps; with "
                                 f"sync_every={sync_every} it must apply at the sums (a multiple of "
                                 f"{sync_every} steps) to see the summed weights")
            rule.held = True
        self.reduced = reduced
        self._before: list[torch.Tensor] = []
        self.seconds = 0.0
        self.calls = 0

    def release(self) -> None:
        """Give the rules their own bounds back (the network is prepared again)."""
        for rule in self.rules:
            rule.bounds_deferred = False
        for rule in self.held:
            rule.held = False

    def slice_steps(self, net: "Network") -> int:
        if not self.per_step:
            return net._chunk_steps
        if self.window is None:
            return 1
        return self.window - net.clock.step % self.window  # up to the next sum

    def before_slice(self, rules: list[Any] | None = None) -> None:
        if rules is None:
            if self.window is not None and self.per_step:
                t0 = self.net.clock.step
                # the held rules' steps are multiples of the window, so each such step
                # begins a slice, right after a sum: they apply to the summed weights
                # before the step (one process applies them after the step's change)
                for rule in self.held:
                    if t0 % rule.every == 0:
                        rule.torch_form.apply(t0, held=True)
                if not self._open:  # a window opens: its changes are summed when it closes
                    self._before = [rule.projection.weight.detach().clone() for rule in self.rules]
                    self._open = True
                return
            rules = self.rules if self.per_step else []
        self._before = [rule.projection.weight.detach().clone() for rule in rules]

    def end_run(self, t: int) -> None:
        """A run ends (every process, at the same step): close an open window, so that
        nothing done between runs (set_weights, load_state, new rules) falls into one."""
        self.close_window(t)

    def close_window(self, t: int) -> None:
        """Window mode: sum the changes since the window opened (collective)."""
        if self._open:
            self._sum(t, 1, False, self.rules)
            self._open = False

    def apply_event(self, event: str, t: int) -> None:
        """Apply the rules waiting for ``event`` in rule order, summing each one's change
        across the processes (collective; ``Network.trigger`` calls it)."""
        self.close_window(t)
        for rule in self.net.rules.values():
            if rule.apply_at != event:
                continue
            if rule in self.reduced:
                self.before_slice([rule])
                rule.apply(t, event=True)
                self.exchange(t, 1, event=True, rules=[rule])
            else:  # (the same change in every process)
                rule.apply(t, event=True)

    def exchange(self, t0: int, k: int, stop: bool = False, event: bool = False,
                 rules: list[Any] | None = None) -> bool:
        """After a slice of steps (one step when summed rules apply every step; else only
        the stop flag is summed) or an event's rule (``event``, ``rules``): sum the changes;
        True if any process was asked to stop."""
        if rules is None:
            rules = self.rules if self.per_step else []
            if self.window is not None and self.per_step:
                if (t0 + k) % self.window:  # the window goes on: only the stop flag
                    return self._sum(t0, k, stop, [])
                self._open = False
                return self._sum(t0, k, stop, rules)
        any_stop = self._sum(t0, k, stop, rules)
        for t in range(t0, t0 + k) if not event else ():
            for rule in self.held:
                rule.torch_form.apply(t, held=True)
        return any_stop

    def _sum(self, t0: int, k: int, stop: bool, rules: list[Any]) -> bool:
        """Sum ``rules``' changes since ``_before`` (and the stop flags) across the processes."""
        t_start = time.perf_counter()
        part = self.partition
        flat = [(rule.projection.weight.detach() - w0).reshape(-1)
                for rule, w0 in zip(rules, self._before)]
        dtype = rules[0].projection.weight.dtype if rules else torch.float32
        device = rules[0].projection.weight.device if rules else self.device
        buffer = torch.cat(flat + [torch.tensor([1.0 if stop else 0.0], dtype=dtype, device=device)])
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
        for rule, w0 in zip(rules, self._before):
            w = rule.projection.weight
            d = buffer[at:at + w.numel()].reshape(w.shape)
            at += w.numel()
            new = w0 + d
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
    previous = net._exchange if isinstance(net._exchange, WeightReduction) else None
    if previous is not None:  # (its window was closed when its last run or event ended)
        previous.release()
    reduction = WeightReduction(net, net.data_parallel, net.sync_every)
    if previous is not None:
        reduction.seconds, reduction.calls = previous.seconds, previous.calls
    net._exchange = reduction
    # every process records other rows: spike events are joined (their batch rows global)
    net.log.split_bases = {f"spikes/{mon.name}" for mon in net.monitors.values()
                           if isinstance(mon, SpikeMonitor)}
