"""Oja's rule: Hebbian learning that finds the first principal component."""

from __future__ import annotations

import torch

from neurosim.rules.rate_rule import RateRule
from neurosim.rules.recipe import Recipe


def oja(w, x_pre, x_post, rate_scale, lr):
    y = x_post * rate_scale
    return lr * y * (x_pre * rate_scale - y * w)


class Oja(RateRule):
    r"""Oja's rule (Oja 1982): :math:`dw_{ij}/dt = \eta\, y_j (x_i - y_j w_{ij})`, ``lr`` per ms.

    For a linear neuron :math:`y = w\cdot x` on zero-mean input the weight vector
    converges to the unit-norm leading eigenvector of the input covariance (the
    first principal component). ``lr`` must be small compared with
    :math:`1/\lambda_{max}`.
    """

    @staticmethod
    def delta(w: torch.Tensor, xy: torch.Tensor, y2: torch.Tensor, lr: float) -> torch.Tensor:
        """xy: per-synapse sum_b x_i y_j; y2: sum_b y_j**2 broadcast to the weights."""
        return lr * (xy - y2 * w)

    def recipe(self) -> Recipe:
        return Recipe(traces=self.traces(), per_step=oja)
