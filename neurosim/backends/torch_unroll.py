"""Differentiable runs: the torch backend's step with float spikes and an autograd graph.

:meth:`neurosim.Network.unroll` runs the same schedule as :meth:`~neurosim.Network.run`
with this object in the torch backend. Two kinds of entry change; every other kind runs
as in a normal run (no gradient), on the same arrays:

* ``population``: the model's own ``update``, bound to :func:`neurosim.surrogate.differentiable_math`
  (its ``spike`` is a float step with a surrogate derivative), on state values kept
  here as graph tensors: they are replaced each step, never written in place. After
  each update the population's state arrays and spike ring receive detached copies,
  so monitors, rules and the log see exactly what a normal run would.
* ``delivery``: a dense projection adds ``spikes @ W`` (a matrix product at every
  batch size), with ``W`` its :attr:`~neurosim.projection.Projection.parameter` when
  trainable, so gradients reach the weights and, through the spikes, earlier layers.
  A CSR projection adds one such product per delay block, each ``W`` a dense matrix
  scattered from the synapses' weights (made once, again after a rule changed them
  or the graph was cut).

Graph values persist between ``unroll`` calls (truncated BPTT: ``Network.detach_state``
cuts the graph). They are dropped, graphs and all (:meth:`Unroll.forget`), when a
normal run, ``reset_state`` or ``load_state`` makes the arrays newer; as a second
guard each value remembers the autograd version of the array it was copied to, and
a changed version (another in-place torch write) means the array is newer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch

from neurosim.counter_rng import UNIT24, lowbias32, step_key
from neurosim.gating import (delivered, delivery_gain, gate_in_force, offset_math, sent_activity,
                             threshold_array)
from neurosim.kernel import bind
from neurosim.backends.torch_update import known_constants, same_outputs
from neurosim.specialize import specialize, zero_outputs
from neurosim.surrogate import differentiable_math, resolve

if TYPE_CHECKING:
    from neurosim.population import Population
    from neurosim.projection import Projection


def is_differentiable(pop: "Population") -> bool:
    """True when ``pop``'s model writes its firing condition with ``spike``/``spike_above``
    (so its spikes carry a surrogate gradient) or is graded; sources and generators are not."""
    if pop.is_generator:
        return False
    if pop.graded:  # its output is a real function of its state
        return True
    names = type(pop.model).update.__code__.co_names
    return "spike" in names or "spike_above" in names


class Unroll:
    """The differentiable state of one network: graph values of state variables and of
    recent spikes, the spikes given for this call, and the outputs being recorded."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.values: dict[str, dict[str, torch.Tensor]] = {}  # population -> var -> graph value
        self.versions: dict[str, dict[str, int]] = {}  # the arrays' versions after our writes
        self.spikes: dict[str, dict[int, torch.Tensor]] = {}  # population -> step -> float spikes
        self.ring_version: dict[str, int] = {}
        self.updates: dict[tuple[type, int], Any] = {}
        self.given: dict[str, torch.Tensor] = {}
        self.on_step: Callable[..., Any] | None = None
        self.grad = True
        self.start = 0
        self.record: list[tuple["Population", str]] = []
        self.recorded: dict[tuple[str, str], list[torch.Tensor]] = {}
        self.drive: dict[str, Sequence[torch.Tensor]] = {}  # projection -> per step (batch, n_post)
        self.offsets: dict[str, torch.Tensor] = {}  # gated population -> its offset this step
        #: gated population -> (gain, offset) in force since its last update: its own tensors
        #: (trained parameters, or copies), never the arrays a later drive or mode writes
        self.gates: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        #: CSR projection -> (weight versions, its delay blocks as dense matrices made from
        #: the weights by a differentiable scatter), made once per call
        self.dense_blocks: dict[str, tuple[tuple[int, ...], list[torch.Tensor]]] = {}
        #: population -> (its constant arrays with their versions and grad flags, the 0/1
        #: constants its update is specialized on)
        self.known: dict[str, tuple[tuple[tuple[torch.Tensor, int, bool], ...], tuple[tuple[str, float], ...]]] = {}
        #: model class -> the positions of the update's outputs written as x * 0
        self.zero_outputs: dict[type, frozenset[int]] = {}
        #: population -> {state variable: the zeros its last update returned for it}
        self.zeros: dict[str, dict[str, torch.Tensor]] = {}

    # -- one call of Network.unroll -------------------------------------------------------
    def begin(self, start: int, given: Mapping[str, torch.Tensor],
              record: Sequence[tuple["Population", str]], fixed: Sequence["Projection"] = (),
              on_step: Callable[[int, dict[str, dict[str, torch.Tensor]]], Any] | None = None) -> None:
        """Start a call of ``unroll`` at step ``start``. ``given``: population -> its spikes
        for every step of the call; ``fixed``: delay-0 projections whose weights no rule
        changes. A fixed projection from a given population delivers the same as step by
        step, but its input for all steps is one matrix product (``(steps * batch, n_pre)
        @ W``), and so is its weight gradient, as multi-step SNN libraries do (not with
        ``on_step``, whose caller may back-propagate and cut the graph every step)."""
        self.start, self.given, self.on_step = start, dict(given), on_step
        self.gates = {}  # a mode set between calls takes effect
        self.dense_blocks = {}
        self.grad = torch.is_grad_enabled()  # False under torch.no_grad(): no graph
        self.record = list(record)
        self.recorded = {(pop.name, var): [] for pop, var in self.record}
        self.drive = {}
        groups: dict[tuple[str, str], list["Projection"]] = {}
        for proj in (fixed if on_step is None else ()):
            if proj.pre.name in self.given and proj.post.gate is None and not proj.sparse:
                # (a gate's gain may train; CSR delivers block by block)
                groups.setdefault((proj.post.name, proj.target), []).append(proj)
        for projs in groups.values():
            total = None
            for proj in projs:  # the projections into one receptor: one summed input
                weight = proj.parameter if proj.parameter is not None else proj.weight
                x = self.given[proj.pre.name].to(weight.dtype)
                if proj.stop_gradient:
                    x = x.detach()
                x = x.reshape(-1, x.shape[-1])
                if total is None:
                    total = x @ weight
                elif x.shape[-1] == 1 and bool(((x == 0) | (x == 1)).all()):
                    # (a bias unit: each term is 0 or a weight, exact, so adding it inside the
                    # product rounds as a separate sum would)
                    total = torch.addmm(total, x, weight)
                else:
                    total = total + x @ weight
            steps, batch = self.given[projs[0].pre.name].shape[:2]
            # unbind: one backward op for all steps (indexing would add one zero-filled
            # (steps, batch, n) gradient per step)
            self.drive[projs[0].name] = total.view(steps, batch, -1).unbind(0)
            for proj in projs[1:]:
                self.drive[proj.name] = ()  # in the first one's

    def end(self) -> dict[str, dict[str, torch.Tensor]]:
        out: dict[str, dict[str, torch.Tensor]] = {}
        for (pop, var), values in self.recorded.items():
            out.setdefault(pop, {})[var] = torch.stack(values) if values else self._empty(pop)
        self.given, self.recorded, self.drive, self.on_step = {}, {}, {}, None
        return out

    def _empty(self, name: str) -> torch.Tensor:
        pop = self.backend.net.populations[name]
        return torch.empty((0, pop.batch, pop.n), dtype=pop.dtype, device=pop.device)

    def after_step(self, t: int) -> None:
        """Record the requested outputs of step ``t`` (after all of its entries ran), and
        hand them to ``on_step`` (which keeps the graph; the record keeps detached copies)."""
        step: dict[str, dict[str, torch.Tensor]] = {}
        for pop, var in self.record:
            value = (self.spike_value(pop, t) if var == "spikes" else self.state(pop)[var])
            step.setdefault(pop.name, {})[var] = value
            self.recorded[(pop.name, var)].append(value if self.on_step is None else value.detach())
        if self.on_step is not None:
            self.on_step(t, step)

    def forget(self) -> None:
        """Drop the graph values (and so their graphs): the arrays are newer (a normal run
        on any backend, ``reset_state``, ``load_state``); the next call starts from them."""
        self.values, self.versions, self.spikes, self.ring_version = {}, {}, {}, {}
        self.gates = {}
        self.dense_blocks = {}
        self.zeros = {}

    def detach(self) -> None:
        """Cut the graph: later gradients stop at the current state (truncated BPTT)."""
        for name, values in self.values.items():
            zeros = self.zeros.get(name, {})
            for var, v in values.items():
                values[var] = v.detach()
                if zeros.get(var) is v:  # (still the zeros the update returned)
                    zeros[var] = values[var]
        for ring in self.spikes.values():
            for step, v in ring.items():
                ring[step] = v.detach()
        self.gates = {name: (g.detach(), o.detach()) for name, (g, o) in self.gates.items()}
        self.dense_blocks = {}  # (their graph may have been freed by a backward pass)

    # -- graph values, valid while nothing else wrote their arrays ------------------------
    def state(self, pop: "Population") -> dict[str, torch.Tensor]:
        arrays = pop.state
        versions = self.versions.get(pop.name)
        if versions is None or any(arrays[v]._version != k for v, k in versions.items()):
            self.values[pop.name] = {var: a.clone() for var, a in arrays.items()}
            self.versions[pop.name] = {var: a._version for var, a in arrays.items()}
        return self.values[pop.name]

    def _store(self, pop: "Population", values: dict[str, torch.Tensor]) -> None:
        self.values[pop.name] = values
        for var, value in values.items():
            pop.state[var].copy_(value.detach())
        self.versions[pop.name] = {var: a._version for var, a in pop.state.items()}

    def spike_value(self, pop: "Population", step: int) -> torch.Tensor:
        """Float spikes ``pop`` emitted at ``step``: the graph value when this run made it
        and its ring was not written since, else the ring's (no gradient)."""
        ring = pop.history
        if self.ring_version.get(pop.name) == ring._version:
            value = self.spikes[pop.name].get(step)
            if value is not None:
                return value
        # a copy: a graded ring is already in the state's dtype, and a view of it would be
        # overwritten by a later step while the graph holds it
        return ring[step % ring.shape[0]].to(pop.dtype, copy=True)

    def _emit(self, pop: "Population", t: int, spikes: torch.Tensor) -> None:
        ring = pop.history
        ring[t % ring.shape[0]].copy_(spikes.detach())  # to bool: nonzero is a spike
        pop.last_step = t
        if self.ring_version.get(pop.name) != ring._version - 1:
            self.spikes[pop.name] = {}  # the ring was written by someone else: start afresh
        kept = self.spikes.setdefault(pop.name, {})
        kept[t] = spikes
        kept.pop(t - ring.shape[0], None)  # only as many steps as the ring holds
        self.ring_version[pop.name] = ring._version

    # -- the two kinds that differ from a normal run --------------------------------------
    def run_population(self, pop: "Population", t: int) -> None:
        given = self.given.get(pop.name)
        if given is not None:
            self._emit(pop, t, given[t - self.start].to(pop.dtype))
            return
        if not is_differentiable(pop):  # a source: its spikes carry no gradient
            with torch.no_grad():
                self.backend.run_population(pop, t)
            ring = pop.history
            self._emit(pop, t, ring[t % ring.shape[0]].to(pop.dtype))
            return
        gate = pop.gate
        raised = threshold_array(pop) if gate is not None else None
        a = pop.arrays()
        known = known_constants(pop, a, raised, self.known)
        shapes = tuple(tuple(a[name].shape) for name in pop.argument_arrays() if name.startswith("const."))
        key = (type(pop.model), id(pop.surrogate), gate is not None and raised is None, pop.name, known,
               shapes)  # (a constant of another shape: the specialized update is checked again)
        update = self.updates.get(key)
        unchecked = None
        if update is None:
            math = differentiable_math(resolve(pop.surrogate, f"population '{pop.name}'"))
            if gate is not None and raised is None:  # the firing condition sees the offset in force
                math = offset_math(math, lambda name=pop.name: self.offsets[name])
            plain = type(pop.model).update
            fast = specialize(plain, dict(known))
            update = self.updates[key] = bind(fast, math)
            if fast is not plain:  # checked against the model's own update at its first call
                unchecked = (key, bind(plain, math))
        values = self.state(pop)
        if gate is not None:
            self.gates[pop.name] = gate_in_force(gate, self.backend.net.modulators)
            self.offsets[pop.name] = self.gates[pop.name][1]
        args = []
        for name in pop.argument_arrays():
            if name.startswith("state."):
                args.append(values[name[6:]])
            elif name == raised:
                args.append(a[name] + self.offsets[pop.name])

            elif name.startswith("key."):
                h = lowbias32(a[name] ^ step_key(pop.random_keys[name[4:]], t))
                args.append((h >> 8).to(pop.dtype) * UNIT24)
            else:
                args.append(a[name])
        if unchecked is not None and not same_outputs(update, unchecked[1], args):
            update = self.updates[unchecked[0]] = unchecked[1]
        out = update(*args)
        # an output that is an argument array itself (an identity dropped, or a model that
        # passes an input through) is copied: the graph must not hold an array a later
        # in-place write changes
        arrays = [x for name, x in zip(pop.argument_arrays(), args) if not name.startswith("state.")]
        out = tuple(o.clone() if any(o is x for x in arrays) else o for o in out)
        spikes = out[-1]
        if gate is not None and gate.activity_gate != "none":
            spikes = sent_activity(gate, spikes, self.offsets[pop.name])
        new = dict(zip(pop.model.state_variables, out[:-1]))
        self._store(pop, new)
        # outputs the model writes as x * 0: the next input sum starts from its first term
        zeros = self.zero_outputs.get(type(pop.model))
        if zeros is None:
            zeros = self.zero_outputs[type(pop.model)] = zero_outputs(type(pop.model).update)
        self.zeros[pop.name] = {var: new[var] for k, var in enumerate(pop.model.state_variables) if k in zeros}
        self._emit(pop, t, spikes)


    def run_delivery(self, proj: "Projection", t: int) -> None:
        if proj.post.name in self.given:  # its spikes are given: its input is not used
            return
        values = self.state(proj.post)
        drive = self.drive.get(proj.name)
        if drive is not None:
            if drive:
                values[proj.target] = self._add(proj, values[proj.target], drive[t - self.start])
            return
        # .data: an alias with its own autograd version counter, so that a rule changing
        # the weights in place during the call does not invalidate the graph
        weight = proj.parameter if proj.parameter is not None else proj.weight.data
        gate = proj.post.gate  # gated: each event adds w * gain, the gain in force (a parameter)
        if gate is not None and proj.post.name not in self.gates:
            self.gates[proj.post.name] = gate_in_force(gate, self.backend.net.modulators, drive=False)
        gain = None if gate is None else delivery_gain(gate, self.gates[proj.post.name][0])
        total = values[proj.target]
        matrices = self._dense_blocks(proj, weight) if proj.sparse else [weight] * len(proj.blocks)
        for block, matrix in zip(proj.blocks, matrices):  # as a normal run at batch >= DENSE_MATMUL_BATCH
            pre = self.spike_value(proj.pre, t - block.delay)
            total = self._add(proj, total, delivered(matrix, pre.detach() if proj.stop_gradient else pre, gain))
        values[proj.target] = total

    def _add(self, proj: "Projection", total: torch.Tensor, term: torch.Tensor) -> torch.Tensor:
        """``total + term``, or ``term`` when ``total`` is the zeros the target's update
        returned (an input used once, not yet added to this step; same values)."""
        if self.zeros.get(proj.post.name, {}).get(proj.target) is total and term.shape == total.shape:
            return term
        return total + term

    def _dense_blocks(self, proj: "Projection", weight: torch.Tensor) -> list[torch.Tensor]:
        """A CSR projection's weights as one dense ``(n_pre, n_post)`` matrix per delay
        block (zeros where the block has no synapse), scattered from ``weight`` so that
        gradients reach the synapses; remade when a rule changed the weights."""
        versions = (proj.weight._version,) + ((proj.parameter._version,) if proj.parameter is not None else ())
        made = self.dense_blocks.get(proj.name)
        if made is not None and made[0] == versions:
            return made[1]
        n_pre, n_post = proj.pre.n, proj.post.n
        rows = torch.repeat_interleave(torch.arange(n_pre, device=proj.device),
                                       proj.indptr[1:] - proj.indptr[:-1])
        flat = rows * n_post + proj.indices.long()
        matrices = []
        for block in proj.blocks:
            at = slice(None) if block.positions is None else block.positions.long()
            dense = torch.zeros(n_pre * n_post, dtype=weight.dtype, device=weight.device)
            matrices.append(dense.index_put((flat[at],), weight[at]).view(n_pre, n_post))
        self.dense_blocks[proj.name] = (versions, matrices)
        return matrices
