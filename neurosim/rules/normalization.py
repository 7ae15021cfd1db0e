"""Homeostatic normalisation of each neuron's incoming weights."""

from __future__ import annotations

import torch

from neurosim.kernel import where
from neurosim.rules.base import Rule
from neurosim.rules.recipe import Recipe


def weight(w):
    return w


def rescale(w, post_sum, total):
    # columns that sum to zero stay as they are
    nonzero = post_sum != 0.0
    return w * where(nonzero, total / where(nonzero, post_sum, 1.0), 1.0)


class WeightNormalization(Rule):
    r"""Scale each postsynaptic neuron's incoming weights to a fixed sum.

    .. math:: w_{ij} \leftarrow w_{ij}\, \frac{S}{\sum_k w_{kj}}

    every ``every`` steps (Diehl & Cook 2015 use :math:`S = 78` for 784 inputs,
    applied before each image). Columns that sum to zero are left alone.
    """

    needs_spiking_post = False

    def __init__(self, total: float, *, every: int = 1, learning: bool = True,
                 apply_at: str | None = None) -> None:
        super().__init__(every=every, learning=learning, w_min=-float("inf"), apply_at=apply_at)
        if not (total == total) or total in (float("inf"), -float("inf")):
            raise ValueError("WeightNormalization: total must be finite")
        self.total = float(total)

    def column_sums(self) -> torch.Tensor:
        p = self.projection
        if not p.sparse:
            return p.weight.sum(0)
        sums = torch.zeros(p.post.n, dtype=p.dtype, device=p.device)
        return sums.index_add_(0, p.indices, p.weight)

    def recipe(self) -> Recipe:
        return Recipe(column=weight, on_apply=rescale)

    def describe(self):
        return {**super().describe(), "total": self.total}
