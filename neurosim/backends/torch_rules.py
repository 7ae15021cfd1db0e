"""Declared learning rules on torch tensors: the hooks of a recipe evaluated on whole arrays.

Dense synapses are ``(n_pre, n_post)``: presynaptic values broadcast as columns,
postsynaptic ones as rows. CSR synapses are flat: values are gathered by each
synapse's row and column. The sums run in the order the recipe defines (batch
rows in order; in each, the ``on_pre``, ``on_post`` then ``per_step`` term), one
elementwise operation at a time, so that the numba backend, which visits only
the synapses a spike touched, gets the same bits (:mod:`neurosim.rules.recipe`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import torch

from neurosim.kernel import TORCH_MATH, bind
from neurosim.rules.recipe import Argument, resolve

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
    # ``sel`` picks the synapses a spike touched: ("rows", i) or ("cols", j) of a dense
    # matrix, ("syn", s) of CSR synapses; None: every synapse
    def _shape(self, value: torch.Tensor, side: str, sel: tuple[str, torch.Tensor] | None = None
               ) -> torch.Tensor:
        """A per-neuron vector (or the synapse array) laid out against the synapses."""
        kind, idx = sel if sel is not None else (None, None)
        if side == "pre":
            if self.sparse:
                rows = self.rule.synapse_rows
                return value[rows if idx is None else rows[idx]]
            return (value if kind != "rows" else value[idx]).unsqueeze(1)
        if side == "post":
            if self.sparse:
                cols = self.proj.indices
                return value[cols if idx is None else cols[idx]]
            return (value if kind != "cols" else value[idx]).unsqueeze(0)
        if side == "synapse" and kind is not None:
            return value[:, idx] if kind == "cols" else value[idx]
        return value

    def _value(self, arg: Argument, b: int, t: int, extra: dict[str, torch.Tensor],
               params: dict[str, torch.Tensor], layout: bool = True,
               sel: tuple[str, torch.Tensor] | None = None) -> torch.Tensor:
        rule = self.rule
        if arg.kind == "param":
            return params[arg.key]
        if arg.kind in ("d", "post_sum"):
            return extra[arg.kind]
        if arg.kind == "w":
            return self._shape(self.proj.weight.detach(), "synapse", sel)
        if arg.kind == "e":
            return self._shape(rule.eligibility[b] if arg.per_row else rule.eligibility, "synapse", sel)
        if arg.kind == "trace":
            name, which = arg.key
            trace = getattr(rule, name)
            value = (trace.value if which == "value" else trace.before)[b]
        elif arg.kind == "state":
            value = getattr(rule, arg.key)
        elif arg.kind == "neuron":
            side, var = arg.key
            pop = self.proj.pre if side == "pre" else self.proj.post
            value = pop.state[var][b]
        else:  # signal
            value = rule.net.modulators[arg.key].value
            if value.dim() == 0:
                return value
            value = value[b] if arg.per_row else value
        return self._shape(value, arg.side, sel) if layout else value

    def _params(self) -> dict[str, torch.Tensor]:
        """The rule's number attributes the hooks read, as 0-d tensors (read live)."""
        arg_lists = [args for _, args in self.hooks.values()] + [args for _, _, args in self.updates]
        keys = {a.key for args in arg_lists for a in args if a.kind == "param"}
        return {k: torch.tensor(float(getattr(self.rule, k)), dtype=self.proj.dtype,
                                device=self.proj.device) for k in keys}

    def _call(self, hook: str, b: int, t: int, params: dict[str, torch.Tensor],
              extra: dict[str, torch.Tensor] | None = None,
              sel: tuple[str, torch.Tensor] | None = None) -> torch.Tensor:
        fn, args = self.hooks[hook]
        return fn(*(self._value(a, b, t, extra or {}, params, sel=sel) for a in args))

    def _event_terms(self, hook: str, spikes: torch.Tensor, side: str, b: int, t: int,
                     params: dict[str, torch.Tensor], acc: torch.Tensor) -> None:
        """Add ``hook``'s term of row ``b`` at the synapses its spikes touch, in place."""
        if not self.touched_only:  # one masked pass over every synapse: no host sync (GPU)
            term = torch.where(self._shape(spikes, side), self._call(hook, b, t, params), self.zero)
            acc.add_(term)
            return
        if self.sparse:  # the synapses whose row (column) spiked
            owner = self.rule.synapse_rows if side == "pre" else self.proj.indices
            idx = spikes[owner].nonzero().flatten()
            sel = ("syn", idx)
        else:
            idx = spikes.nonzero().flatten()
            sel = ("rows" if side == "pre" else "cols", idx)
        if idx.numel() == 0:
            return
        term = self._call(hook, b, t, params, sel=sel)
        if self.sparse:
            acc.index_add_(0, idx, term.expand(idx.shape))
        elif side == "pre":
            acc.index_add_(0, idx, term.expand(idx.numel(), acc.shape[1]))
        else:
            acc.index_add_(1, idx, term.expand(acc.shape[0], idx.numel()))

    def _row_terms(self, b: int, t: int, params: dict[str, torch.Tensor], acc: torch.Tensor,
                   per_step: bool) -> torch.Tensor:
        """Add row ``b``'s on_pre, on_post (and per_step) terms to ``acc`` (in place), in
        that order; adding only at touched synapses gives the same bits as adding zeros."""
        rule = self.rule
        if "on_pre" in self.hooks:
            self._event_terms("on_pre", rule.pre_spikes(t)[b], "pre", b, t, params, acc)
        if "on_post" in self.hooks:
            self._event_terms("on_post", rule.post_spikes(t)[b], "post", b, t, params, acc)
        if per_step and "per_step" in self.hooks:
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
        e, mask = rule.eligibility, self.proj.mask
        zeros = torch.zeros_like(self.proj.weight)
        if rule.eligibility_per_row:
            for b in range(batch):
                acc = self._row_terms(b, t, params, zeros.clone(), per_step=False)
                e[b] = e[b] * rule.decay_e + (acc * mask if mask is not None else acc)
        else:
            acc = zeros
            for b in range(batch):
                self._row_terms(b, t, params, acc, per_step=False)
            e.copy_(e * rule.decay_e + (acc * mask if mask is not None else acc))

    def apply(self, t: int, force: bool = False) -> None:
        """Rules phase: the new weights (on the rule's steps or ``force``, when learning)."""
        rule, recipe, proj = self.rule, self.recipe, self.proj
        if (t % rule.every and not force) or not rule.learning:
            return
        params = self._params()
        w = proj.weight
        batch = rule.batch
        d = torch.zeros_like(w)
        if recipe.eligibility is not None:
            if rule.eligibility_per_row:
                for b in range(batch):
                    d = d + self._call("gate", b, t, params)
            else:
                d = d + self._call("gate", 0, t, params)
        else:
            for b in range(batch):
                self._row_terms(b, t, params, d, per_step=True)
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
            dw = new - w.detach()
            w.grad = -dw if w.grad is None else w.grad - dw
            return
        new = torch.where(new != w, new.clamp(rule.w_min, rule.w_max), new)
        if proj.mask is not None:
            new = new * proj.mask
        with torch.no_grad():
            w.copy_(new)
