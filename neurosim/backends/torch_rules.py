"""Declared learning rules on torch tensors: the hooks of a recipe evaluated on whole arrays.

Dense synapses are ``(n_pre, n_post)``: presynaptic values broadcast as columns,
postsynaptic ones as rows. CSR synapses are flat: values are gathered by each
synapse's row and column. The sums run in the order the recipe defines (the
``on_pre`` terms of all batch rows in order, then the ``on_post`` terms, then the
``per_step`` terms), one
elementwise operation at a time, so that the numba backend, which visits only
the synapses a spike touched, gets the same bits (:mod:`neurosim.rules.recipe`).
On the CPU each hook runs once per step for the (batch row, synapse) pairs that
spikes touched in all rows together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch

from neurosim.kernel import TORCH_MATH, bind
from neurosim.rules.recipe import Argument

if TYPE_CHECKING:
    from neurosim.rules.base import Rule


class TorchRule:
    """Runs one declared rule's traces phase and rules phase on torch tensors."""

    def __init__(self, rule: "Rule") -> None:
        self.rule = rule
        self.recipe = rule.declared
        proj = rule.projection
        self.proj = proj
        self.sparse = proj.sparse
        self.hooks: dict[str, tuple[Callable[..., Any], list[Argument]]] = {}
        for name, fn in self.recipe.hooks().items():
            self.hooks[name] = (bind(fn, TORCH_MATH), rule.hook_arguments(name, fn))
        self.updates = [(s, bind(s.update, TORCH_MATH), rule.hook_arguments("update", s.update))
                        for s in self.recipe.neuron_state]
        self.zero = torch.zeros((), dtype=proj.dtype, device=proj.device)
        # on the CPU, hooks are evaluated only where a spike arrived (finding those costs a
        # host sync on a GPU, where one masked pass over all synapses is used instead)
        self.touched_only = proj.device.type == "cpu"

    # -- values of hook arguments ---------------------------------------------------------
    # ``sel`` picks the (batch row, synapse) pairs a spike touched: ("rows", b, i) or
    # ("cols", b, j) of a dense matrix, laid out (k, n_post) or (n_pre, k), and
    # ("syn", b, s) of CSR synapses, laid out (k,); None: every synapse of row ``b``.
    # ``side`` "pre_spikes": presynaptic spikes or traces as they arrive (one column block
    # per delay with per-synapse delays, read at Rule.pre_index); "pre": the neurons' own
    def _shape(self, value: torch.Tensor, side: str) -> torch.Tensor:
        """A per-neuron vector (or the synapse array) laid out against every synapse."""
        if side in ("pre", "pre_spikes"):
            if not self.sparse:
                return value.unsqueeze(1)
            return value[self.rule.pre_index if side == "pre_spikes" else self.rule.synapse_rows]
        if side == "post":
            return value[self.proj.indices] if self.sparse else value.unsqueeze(0)
        return value

    def _pick(self, value: torch.Tensor, side: str, per_row: bool,
              sel: tuple[str, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``value`` (``(batch, n)`` if ``per_row``, else ``(n,)``; synapse arrays with a
        leading batch axis if ``per_row``) at the selected pairs, laid out as ``sel``."""
        kind, b, idx = sel
        if side == "synapse":
            if kind == "cols":
                return value[b, :, idx].T if per_row else value[:, idx]
            return value[b, idx] if per_row else value[idx]
        if kind == "syn":
            column = {"pre": self.rule.synapse_rows, "pre_spikes": self.rule.pre_index,
                      "post": self.proj.indices}[side]
            return value[b, column[idx]] if per_row else value[column[idx]]
        side = "pre" if side == "pre_spikes" else side  # (dense: one delay)
        touched = (kind == "rows") == (side == "pre")  # the side whose spike selected the pair
        if touched:
            picked = value[b, idx] if per_row else value[idx]
            return picked.unsqueeze(1) if side == "pre" else picked.unsqueeze(0)
        if not per_row:
            return value.unsqueeze(0) if side == "post" else value.unsqueeze(1)
        return value[b] if side == "post" else value[b].T

    def _value(self, arg: Argument, b: int | None, t: int, extra: dict[str, torch.Tensor],
               params: dict[str, torch.Tensor], layout: bool = True,
               sel: tuple[str, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        rule = self.rule
        if arg.kind == "param":
            return params[arg.key]
        if arg.kind in ("d", "post_sum"):
            return extra[arg.kind]
        per_row = True
        if arg.kind == "w":
            value, side, per_row = self.proj.weight.detach(), "synapse", False
        elif arg.kind == "e":
            value, side, per_row = rule.eligibility, "synapse", bool(arg.per_row)
        elif arg.kind == "trace":
            name, which = arg.key
            trace = getattr(rule, name)
            value = trace.value if which == "value" else trace.before
            side = "pre_spikes" if arg.side == "pre" else arg.side
        elif arg.kind == "state":
            value, side, per_row = getattr(rule, arg.key), arg.side, False
        elif arg.kind == "neuron":
            pop_side, var = arg.key
            pop = self.proj.pre if pop_side == "pre" else self.proj.post
            value, side = pop.state[var], arg.side
        else:  # signal
            value = rule.net.modulators[arg.key].value
            if value.dim() == 0:
                return value
            side, per_row = arg.side, bool(arg.per_row)
        if sel is not None:
            return self._pick(value, side, per_row, sel)
        value = value[b] if per_row and b is not None else value  # (b None: every row at once)
        return self._shape(value, side) if layout else value

    def _params(self) -> dict[str, torch.Tensor]:
        """The rule's number attributes the hooks read, as 0-d tensors (read live)."""
        arg_lists = [args for _, args in self.hooks.values()] + [args for _, _, args in self.updates]
        keys = {a.key for args in arg_lists for a in args if a.kind == "param"}
        return {k: torch.tensor(float(getattr(self.rule, k)), dtype=self.proj.dtype,
                                device=self.proj.device) for k in keys}

    def _call(self, hook: str, b: int, t: int, params: dict[str, torch.Tensor],
              extra: dict[str, torch.Tensor] | None = None,
              sel: tuple[str, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        fn, args = self.hooks[hook]
        return fn(*(self._value(a, b, t, extra or {}, params, sel=sel) for a in args))

    def _event_terms(self, hook: str, spikes: torch.Tensor, side: str, t: int,
                     params: dict[str, torch.Tensor], acc: torch.Tensor,
                     row: int | None = None) -> None:
        """Add ``hook``'s terms of every batch row (or only of ``row``) at the synapses
        their spikes touch, rows in order, in place (``spikes``: ``(batch, n)``)."""
        rows = range(spikes.shape[0]) if row is None else (row,)
        if not self.touched_only:  # one masked pass over every synapse per row: no host sync (GPU)
            gather = "pre_spikes" if side == "pre" else side
            for b in rows:
                acc.add_(torch.where(self._shape(spikes[b], gather), self._call(hook, b, t, params),
                                     self.zero))
            return
        if row is not None:
            spikes = spikes[row:row + 1]
        if self.sparse:  # the synapses whose row (column) spiked, in every batch row
            owner = self.rule.pre_index if side == "pre" else self.proj.indices
            b, idx = spikes[:, owner].nonzero(as_tuple=True)
            kind = "syn"
        else:
            b, idx = spikes.nonzero(as_tuple=True)
            kind = "rows" if side == "pre" else "cols"
        if idx.numel() == 0:
            return
        if row is not None:
            b = b + row
        # one index_add_ for all rows: it adds in index order, batch rows ascending, so a
        # synapse touched in several rows sums them in the recipe's order
        term = self._call(hook, 0, t, params, sel=(kind, b, idx))
        if self.sparse:
            acc.index_add_(0, idx, term.expand(idx.shape))
        elif side == "pre":
            acc.index_add_(0, idx, term.expand(idx.numel(), acc.shape[1]))
        else:
            acc.index_add_(1, idx, term.expand(acc.shape[0], idx.numel()))

    def _rows_terms(self, t: int, params: dict[str, torch.Tensor], acc: torch.Tensor,
                    per_step: bool, row: int | None = None) -> torch.Tensor:
        """Add the on_pre terms of every batch row (or only ``row``), then their on_post
        terms (then per_step terms) to ``acc`` in place: the recipe's order. Adding only
        at touched synapses gives the same bits as adding zeros elsewhere."""
        rule = self.rule
        if "on_pre" in self.hooks:
            self._event_terms("on_pre", rule.pre_spikes(t), "pre", t, params, acc, row)
        if "on_post" in self.hooks:
            self._event_terms("on_post", rule.post_spikes(t), "post", t, params, acc, row)
        if per_step and "per_step" in self.hooks:
            for b in (range(rule.batch) if row is None else (row,)):
                acc.add_(self._call("per_step", b, t, params))
        return acc

    def _columns(self) -> torch.Tensor:
        """The postsynaptic neuron of every synapse, in synapse order."""
        if self.sparse:
            return self.proj.indices
        if getattr(self, "_dense_columns", None) is None:
            n_pre, n_post = self.proj.weight.shape
            self._dense_columns = torch.arange(n_post, device=self.proj.device).repeat(n_pre)
        return self._dense_columns

    # -- phases -------------------------------------------------------------------------
    def traces(self, t: int) -> None:
        """Traces phase: the rule's neuron state and eligibility (every step; its spike
        traces were updated before, once for every rule that reads them)."""
        rule, recipe = self.rule, self.recipe
        batch = rule.batch
        params = self._params() if self.updates or recipe.eligibility is not None else {}
        for state, fn, args in self.updates:
            acc = torch.zeros_like(getattr(rule, state.name))
            for b in range(batch):
                acc = acc + fn(*(self._value(a, b, t, {}, params, layout=False) for a in args))
            getattr(rule, state.name).copy_(acc / float(batch))
        if recipe.eligibility is None:
            return
        if rule.folded:  # store this step's factors; the eligibility is folded from them
            self._feed_step(t, params)
            return
        e, mask = rule.eligibility, self.proj.mask
        zeros = torch.zeros_like(self.proj.weight)
        masked = (lambda x: x * mask) if mask is not None else (lambda x: x)
        # event terms first, then the per-step term (e-prop's feed) in a second sum: the
        # order the compiled loops add them in
        per_step = "per_step" in self.hooks
        if rule.eligibility_per_row:
            for b in range(batch):
                acc = self._rows_terms(t, params, zeros.clone(), per_step=False, row=b)
                e[b] = e[b] * rule.decay_e + masked(acc)
                if per_step:
                    e[b] = e[b] + masked(self._call("per_step", b, t, params))
        else:
            acc = self._rows_terms(t, params, zeros, per_step=False)
            e.copy_(e * rule.decay_e + masked(acc))
            if per_step:
                acc = torch.zeros_like(self.proj.weight)
                for b in range(batch):
                    acc = acc + self._call("per_step", b, t, params)
                e.add_(masked(acc))

    def _feed_step(self, t: int, params: dict[str, torch.Tensor]) -> None:
        """A folded rule's step: its presynaptic trace and the per-step hook with that
        trace set to 1 (the postsynaptic factor), per row, into the feed's buffer."""
        rule, feed = self.rule, self.rule.feed
        factor = self.recipe.per_step_factor
        if feed.full:  # (left full by a compiled stretch that ended on it)
            feed.fold()
        slot = int(feed.fill[0])
        feed.pre[slot].copy_(getattr(rule, factor).value)
        fn, args = self.hooks["per_step"]
        one = torch.ones((), dtype=self.proj.dtype, device=self.proj.device)
        # the hook is elementwise and reads only postsynaptic values and numbers: all rows
        # at once ((batch, n_post) arrays broadcast with (n_post,) ones), the same numbers
        values = [one if a.name == factor else self._value(a, None, t, {}, params, layout=False)
                  for a in args]
        feed.post[slot].copy_(torch.as_tensor(fn(*values)).expand(feed.post.shape[1:]))
        feed.fill[0] = slot + 1
        if feed.full:
            feed.fold()

    def _gate_scale(self, t: int, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """The gate with the eligibility set to 1 (``Recipe.gate_scales_e``): ``(batch,
        n_post)``, or ``(n_post,)`` when the eligibility is shared by the batch."""
        rule = self.rule
        fn, args = self.hooks["gate"]
        one = torch.ones((), dtype=self.proj.dtype, device=self.proj.device)
        n_post = self.proj.post.n
        if rule.eligibility_per_row:  # every row at once (an elementwise hook)
            values = [one if a.kind == "e" else self._value(a, None, t, {}, params, layout=False) for a in args]
            return torch.as_tensor(fn(*values)).expand(rule.batch, n_post)
        values = [one if a.kind == "e" else self._value(a, 0, t, {}, params, layout=False) for a in args]
        return torch.as_tensor(fn(*values)).expand(n_post)

    def apply(self, t: int, force: bool = False, held: bool = False) -> None:
        """Rules phase: the new weights (on the rule's steps or ``force``, when learning;
        a rule a data-parallel run holds back only when it applies it, ``held``)."""
        rule, recipe, proj = self.rule, self.recipe, self.proj
        if (t % rule.every and not force) or not rule.learning or (rule.held and not held):
            return
        params = self._params()
        w = proj.weight
        batch = rule.batch
        d = torch.zeros_like(w)
        if recipe.eligibility is not None:
            if rule.folded and recipe.gate_scales_e:  # straight from the feed's factors
                d = rule.feed.change(self._gate_scale(t, params))
            elif rule.eligibility_per_row:
                for b in range(batch):
                    d = d + self._call("gate", b, t, params)
            else:
                d = d + self._call("gate", 0, t, params)
        else:
            self._rows_terms(t, params, d, per_step=True)
        if proj.tie is not None:  # a shared (kernel) weight: the sum of its synapses' changes
            d = proj.tied_sum(d.expand_as(w))
        extra = {"d": d}
        if "column" in self.hooks:
            values = self._call("column", 0, t, params).expand_as(w).reshape(-1)
            # index_add_ adds in synapse order (rows ascending), as the compiled loop does
            sums = torch.zeros(proj.post.n, dtype=w.dtype, device=w.device)
            sums.index_add_(0, self._columns(), values)
            extra["post_sum"] = sums[proj.indices] if self.sparse else sums.unsqueeze(0)
        new = (self._call("on_apply", 0, t, params, extra) if "on_apply" in self.hooks
               else w.detach() + d).expand_as(w)
        if rule.as_gradient:
            proj.add_to_grad(w.detach() - new, tied=True)  # (d was summed per kernel entry)
            return
        if rule.pending is not None:  # (a weight window: the weights stay as they are)
            rule.pending.add_(new - w.detach())
            return
        new = torch.where(new != w, new.clamp(*rule.clip_bounds), new)
        if proj.mask is not None:
            new = new * proj.mask
        with torch.no_grad():
            w.copy_(new)
