"""A factorised eligibility feed, folded into the eligibility by matrix products.

When a rule's per-step eligibility term is a presynaptic trace times a factor of the
postsynaptic side only (``Recipe.per_step_factor``; e-prop's ``psi_j * x_i``), the
per-synapse update ``e <- lam e + x g^T`` every step costs a pass over every synapse
(and every sample), bound by memory traffic. Over ``n`` steps it sums to

.. math::

    e \\leftarrow \\lambda^n e + \\sum_{k<n} \\lambda^{n-1-k}\\, x_k\\, g_k^T,

one matrix product per sample (``X^T Y`` with the ``n`` steps as the inner dimension).
So the backends only store each step's presynaptic trace ``x_k`` ``(batch, n_pre)``
and postsynaptic factor ``g_k`` ``(batch, n_post)`` into a buffer of ``capacity``
steps (64), and :meth:`EligibilityFeed.fold` adds them to the eligibility when the buffer
is full or when the eligibility is read (``rule.eligibility`` folds first). A gate
that is the eligibility times a factor (``Recipe.gate_scales_e``) makes its change
straight from the factors (:meth:`EligibilityFeed.change`: ``X^T (G * L)``, one
product over steps and samples), so a sample that fits the buffer never materialises
its per-sample eligibility. Memory does not grow with the steps of a run. Both
backends fold and apply with this same code, so they keep giving the same bits.

It is used for projections whose rule changes weights only at an event
(``apply_at``), where the eligibility is read only between steps: dense ones, and
CSR ones whose synapses fill at least 1/8 of the matrix the product makes
(:func:`folds_csr`). For CSR the product is made as a dense ``(columns, n_post)``
matrix and read at the synapses; with per-synapse delays its rows are the columns of
the presynaptic trace, one block of ``n_pre`` per delay (``Rule.pre_index``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from neurosim.rules.base import Rule

#: steps buffered before a fold (a compiled stretch is at most this long)
CAPACITY = 64
#: CSR synapses are folded through a dense product when they fill at least this share of
#: it (below, the per-synapse pass is cheaper than the product's zeros) ...
CSR_MIN_FILL = 1 / 8
#: ... and the product has at most this many elements (its memory is temporary)
CSR_MAX_PRODUCT = 2**26


def folds_csr(rule: "Rule") -> bool:
    """Whether a CSR projection's feed is folded through a dense product (see above)."""
    p = rule.projection
    columns = p.pre.n * (1 if rule.pre_delays is None else len(rule.pre_delays))
    size = columns * p.post.n
    return size <= CSR_MAX_PRODUCT and p.nnz >= CSR_MIN_FILL * size


class EligibilityFeed:
    """The buffered factors of one rule's eligibility feed (see the module docstring)."""

    def __init__(self, rule: "Rule", capacity: int = CAPACITY) -> None:
        p = rule.projection
        self.rule, self.capacity = rule, int(capacity)
        columns = p.pre.n * (1 if rule.pre_delays is None else len(rule.pre_delays))
        #: CSR: the synapses' (row, column) in the dense product
        self.at = (rule.pre_index, p.indices.long()) if p.sparse else None
        self.pre = torch.zeros((capacity, rule.batch, columns), dtype=p.dtype, device=p.device)
        self.post = torch.zeros((capacity, rule.batch, p.post.n), dtype=p.dtype, device=p.device)
        #: steps written since the last fold (a host counter: the compiled step writes it)
        self.fill = torch.zeros(1, dtype=torch.int64)
        #: the eligibility is all zeros (after a reset), whatever its memory holds
        self.zero = True

    def arrays(self) -> dict[str, torch.Tensor]:
        """``pre`` ``(capacity, batch, columns)`` (the presynaptic trace's), ``post`` ``(capacity, batch, n_post)``, ``fill``."""
        return {"pre": self.pre, "post": self.post, "fill": self.fill}

    @property
    def full(self) -> bool:
        return int(self.fill[0]) >= self.capacity

    def _factors(self) -> tuple[int, torch.Tensor, torch.Tensor]:
        """(steps buffered, their presynaptic traces, their postsynaptic factors each
        weighted by the decay still to come: step k of n decays n - 1 - k more times)."""
        n = int(self.fill[0])
        x, g = self.pre[:n], self.post[:n]
        decay = float(self.rule.decay_e)
        if decay != 1.0 and n:
            powers = decay ** torch.arange(n - 1, -1, -1, dtype=torch.float64)  # (mps: no float64)
            g = g * powers.to(device=g.device, dtype=g.dtype).view(n, 1, 1)
        return n, x, g

    def fold(self) -> None:
        """Add the buffered steps to the eligibility (with its decay) and empty the buffer."""
        n, x, g = self._factors()
        e = self.rule._eligibility
        if n == 0:
            if self.zero:
                e.zero_()
                self.zero = False
            return
        decay = float(self.rule.decay_e)
        beta = 0.0 if self.zero else decay ** n  # (beta 0: e's old memory is not read)
        if self.at is not None:  # CSR: each sample's product read at the synapses
            rows = range(x.shape[1]) if self.rule.eligibility_per_row else (None,)
            for b in rows:
                xb, gb = (x[:, b], g[:, b]) if b is not None else (x.reshape(-1, x.shape[-1]),
                                                                   g.reshape(-1, g.shape[-1]))
                target = e[b] if b is not None else e
                if beta == 0.0:
                    target.copy_((xb.T @ gb)[self.at])
                else:
                    target.mul_(beta).add_((xb.T @ gb)[self.at])
            self.fill[0] = 0
            self.zero = False
            return
        if self.rule.eligibility_per_row:  # (batch, n_pre, n) @ (batch, n, n_post)
            e.baddbmm_(x.permute(1, 2, 0), g.permute(1, 0, 2), beta=beta)
        else:  # summed over the samples too
            e.addmm_(x.reshape(-1, x.shape[-1]).T, g.reshape(-1, g.shape[-1]), beta=beta)
        mask = self.rule.projection.mask
        if mask is not None:
            e.mul_(mask)
        self.fill[0] = 0
        self.zero = False

    def change(self, scale: torch.Tensor) -> torch.Tensor:
        """``sum_b scale_b * e_b`` for a gate that is the eligibility times ``scale``
        (``(batch, n_post)``, or ``(n_post,)`` for an eligibility shared by the batch),
        computed from the buffered factors without folding them: ``X^T (G * scale)``, one
        matrix product over the steps and samples, plus the eligibility folded before."""
        n, x, g = self._factors()
        rule = self.rule
        w = rule.projection.weight
        scale = scale.to(w.dtype)
        d = torch.zeros_like(w)
        if not self.zero:  # what was folded before, decayed over the buffered steps
            e, later = rule._eligibility, float(rule.decay_e) ** n
            if self.at is not None:  # CSR: each synapse's factor is its column's
                scale_at = scale[..., self.at[1]]
                if rule.eligibility_per_row:
                    for b in range(e.shape[0]):
                        d.addcmul_(e[b], scale_at[b] * later)
                else:
                    d.addcmul_(e, scale_at * later)
            elif rule.eligibility_per_row:
                for b in range(e.shape[0]):  # in place, row by row: no batch-sized temporary
                    d.addcmul_(e[b], scale[b] * later)
            else:
                d.addcmul_(e, scale * later)
        if n and self.at is not None:  # CSR: the product read at the synapses
            d.add_((x.reshape(-1, x.shape[-1]).T @ (g * scale).reshape(-1, g.shape[-1]))[self.at])
        elif n:
            d.addmm_(x.reshape(-1, x.shape[-1]).T, (g * scale).reshape(-1, g.shape[-1]))
        mask = rule.projection.mask
        return d * mask if mask is not None else d

    def reset(self) -> None:
        """Forget the buffered steps (a new sample: the eligibility restarts at zero)."""
        self.fill[0] = 0
        self.zero = True
