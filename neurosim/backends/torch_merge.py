"""Fewer operations per step: populations of one model stepped as one, and CSR
deliveries that share a source delivered as one (torch static step, batch 1).

A step's cost on a GPU (and on the CPU at small sizes) is the number of operations,
not their size. CUBA's two LIF populations are one update on 4,000 neurons rather than
two; its four projections are two deliveries (one per receptor) from one spike list.

* :class:`PopulationGroup`: consecutive population entries of one model class (no
  gate, no random input, one ring length) share buffers: each state variable, input
  and the spike ring is one ``(1, n_total)`` tensor, and every member's own tensors
  become views of its columns (the state contract allows it: backends write state in
  place). Constants equal in every member stay one number; others are joined per
  neuron.
* :class:`MergedDelivery`: single-delay CSR projections from one group onto the same
  receptor of *different* populations of one group. Their weights become contiguous
  views of one vector; a table per presynaptic neuron gives each member's row start and
  length, and one padded gather serves all. Each target neuron is reached by one
  member only, in that member's order, so every sum is the per-projection one bit for
  bit.

Both are rebuilt when a member's tensors are no longer the views made here (a
parameter set, a ring resized).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from neurosim.population import Population
    from neurosim.projection import Projection


def mergeable(pop: "Population") -> bool:
    """A population that can share buffers with others of its model."""
    return (not pop.is_generator and pop.gate is None and not pop.random_keys
            and getattr(pop, "surrogate", None) is None and pop.batch == 1)


def merge_key(pop: "Population") -> Any:
    # (one ring length: a member's ring stays the length the network gives it)
    return (type(pop.model), pop.dtype, pop.ring_dtype, pop.history.shape[0],
            tuple(pop.argument_arrays()))


class PopulationGroup:
    """Populations stepped as one (see the module's docstring); a group of one is the
    population itself, unchanged."""

    def __init__(self, members: list["Population"]) -> None:
        self.members = members
        self.offsets = []
        n = 0
        for pop in members:
            self.offsets.append(n)
            n += pop.n
        self.n = n
        first = members[0]
        # ("/" is in no population's name: a group's cannot be one)
        self.name = "/".join(p.name for p in members)
        self.model, self.dtype, self.ring_dtype = first.model, first.dtype, first.ring_dtype
        self.gate, self.random_keys, self.graded = None, {}, first.graded
        self.batch, self.device = first.batch, first.device
        self._names = first.argument_arrays()
        self._arg_names = first._arg_names  # (the update's argument names)
        self._arrays = self._join() if len(members) > 1 else None

    def argument_arrays(self) -> list[str]:
        return self._names

    def arrays(self) -> dict[str, torch.Tensor]:
        return self.members[0].arrays() if self._arrays is None else self._arrays

    def columns(self, pop: "Population") -> slice:
        i = next(k for k, p in enumerate(self.members) if p is pop)
        return slice(self.offsets[i], self.offsets[i] + pop.n)

    def _join(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        first = self.members[0]
        ring = torch.cat([p.history for p in self.members], dim=2)
        out["spikes"] = ring
        for pop, lo in zip(self.members, self.offsets):
            pop.history = ring[:, :, lo:lo + pop.n]
        for table, prefix in (("state", "state."), ("inputs", "input.")):
            for var in getattr(first, table):
                joined = torch.cat([getattr(p, table)[var] for p in self.members], dim=1)
                out[prefix + var] = joined
                for pop, lo in zip(self.members, self.offsets):
                    getattr(pop, table)[var] = joined[:, lo:lo + pop.n]
        for name in first.constants:
            values = [p.constants[name] for p in self.members]
            if all(v.dim() == 0 for v in values) and all(torch.equal(v, values[0]) for v in values):
                out["const." + name] = values[0]
            else:
                out["const." + name] = torch.cat(
                    [v.expand(1, p.n) if v.dim() < 2 else v.reshape(1, p.n)
                     for v, p in zip(values, self.members)], dim=1)
        self._constants = [dict(p.constants) for p in self.members]
        return out

    def unjoin(self) -> None:
        """Give every member tensors of its own again (copies of its views): code that
        tells writes apart by a tensor's version counter, which views of one buffer
        share, sees each member's alone (the differentiable unroll does)."""
        if self._arrays is None:
            return
        for pop in self.members:
            pop.history = pop.history.clone()
            for table in (pop.state, pop.inputs):
                for var, value in table.items():
                    table[var] = value.clone()
        self._arrays = None

    def current(self) -> bool:
        """Whether every member still holds this group's views (and its constants)."""
        if self._arrays is None:
            return True
        a = self._arrays
        for pop, lo, consts in zip(self.members, self.offsets, self._constants):
            if pop.history._base is not a["spikes"]:
                return False
            for var, value in pop.state.items():
                if value._base is not a["state." + var]:
                    return False
            for var, value in pop.inputs.items():
                if value._base is not a["input." + var]:
                    return False
            if any(pop.constants.get(k) is not v for k, v in consts.items()):
                return False
        return True


def group_populations(pops: list["Population"]) -> list[list["Population"]]:
    """Consecutive runs of mergeable populations of one model (the others alone)."""
    runs: list[list["Population"]] = []
    for pop in pops:
        if runs and mergeable(pop) and mergeable(runs[-1][0]) and \
                merge_key(pop) == merge_key(runs[-1][0]):
            runs[-1].append(pop)
        else:
            runs.append([pop])
    return runs


def merges_deliveries(proj: "Projection") -> bool:
    return (proj.sparse and len(proj.blocks) == 1 and proj.blocks[0].positions is None
            and not proj.gate_scaled and proj.post.gate is None and not proj.pre.graded
            and proj.parameter is None and proj.pre.batch == 1)


class MergedDelivery:
    """Projections delivered by one padded gather (see the module's docstring).

    ``table`` ``(n_pre + 1, 2m)``: for each neuron of the source group (and an empty
    last row, a padding entry's), each member's row start in the joined weights and its
    length; ``member``/``column`` say which member and which synapse of its row each of
    the ``sum K_i`` gathered columns is."""

    def __init__(self, projections: list["Projection"], pre: PopulationGroup,
                 post: PopulationGroup) -> None:
        self.projections = projections
        self.pre, self.post = pre, post
        self.delay = projections[0].blocks[0].delay
        dev = projections[0].weight.device
        sizes = [int(p.weight.shape[0]) for p in projections]
        self.nnz = sum(sizes)
        self.weight = torch.cat([p.weight.detach() for p in projections])
        targets, members, columns = [], [], []
        table = torch.zeros((pre.n + 1, 2 * len(projections)), dtype=torch.int64, device=dev)
        base = 0
        for i, (p, size) in enumerate(zip(projections, sizes)):
            p.weight = self.weight[base:base + size]  # (the projection's own weights, joined)
            indptr = p.blocks[0].indptr.to(torch.int64)
            lengths = indptr[1:] - indptr[:-1]
            cols = pre.columns(p.pre)
            table[cols, 2 * i] = indptr[:-1] + base
            table[cols, 2 * i + 1] = lengths
            width = int(lengths.max()) if lengths.numel() else 0
            members += [i] * width
            columns += list(range(width))
            targets.append(p.indices.to(torch.int64) + post.columns(p.post).start)
            base += size
        self.table = table
        self.targets = torch.cat(targets).to(torch.int32)
        # each gathered column's member: its start and length columns of the table
        self.start_columns = torch.tensor([2 * m for m in members], dtype=torch.int64, device=dev)
        self.length_columns = self.start_columns + 1
        self.column = torch.tensor(columns, dtype=torch.int64, device=dev).unsqueeze(0)
        self.width = len(columns)
        self._indptrs = [p.blocks[0].indptr for p in projections]

    def current(self) -> bool:
        return all(p.weight._base is self.weight and p.blocks[0].indptr is ind
                   for p, ind in zip(self.projections, self._indptrs))

    def unjoin(self) -> None:
        """Give every member projection weights of its own again (see
        :meth:`PopulationGroup.unjoin`)."""
        for p in self.projections:
            if p.weight._base is self.weight:
                p.weight = p.weight.clone()

    def deliver(self, cols: torch.Tensor, target: torch.Tensor) -> None:
        """Add the weights of the rows ``cols`` (padded: ``n_pre`` is empty) to ``target``."""
        if self.width == 0 or self.nnz == 0:
            return
        rows = self.table.index_select(0, cols)  # (cap, 2m)
        pos = (rows.index_select(1, self.start_columns) + self.column).clamp_max_(self.nnz - 1)
        past = self.column >= rows.index_select(1, self.length_columns)
        values = self.weight.take(pos).masked_fill_(past, -0.0)  # (x + -0.0 is x, for any x)
        target.view(-1).index_add_(0, self.targets.take(pos).reshape(-1), values.reshape(-1))


def merge_deliveries(projections: list["Projection"], group_of: Any) -> list[Any]:
    """The deliveries of one phase as merged sets (lists of projections, run in order) and
    lone projections, so that every target variable's element receives its adds in the
    schedule's order: a projection joins an earlier set only if that set has no member
    onto its population and comes after every set already adding to it."""
    sets: list[list["Projection"]] = []
    keys: list[Any] = []
    last: dict[Any, int] = {}  # (post population, variable) -> the last set adding to it
    for proj in projections:
        into = (proj.post.name, proj.target)
        key = (group_of(proj.pre).name, group_of(proj.post).name, proj.target,
               proj.blocks[0].delay, proj.weight.dtype) if merges_deliveries(proj) else None
        chosen = None
        if key is not None:
            for k in range(last.get(into, -1) + 1, len(sets)):
                if keys[k] == key and all(p.post is not proj.post for p in sets[k]):
                    chosen = k
                    break
        if chosen is None:
            sets.append([proj])
            keys.append(key)
            chosen = len(sets) - 1
        else:
            sets[chosen].append(proj)
        last[into] = chosen
    return [s if k is not None else s[0] for s, k in zip(sets, keys)]
