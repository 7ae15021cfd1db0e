"""Plain Hebbian learning with weight decay."""

from __future__ import annotations

import math

import torch

from neurosim.rules.rate_rule import RateRule
from neurosim.rules.recipe import Recipe


def hebbian(x_pre, x_post, rate_scale, lr):
    return lr * (x_pre * rate_scale) * (x_post * rate_scale)


def with_decay(w, d, decay_step):
    return w + d - decay_step * w


class Hebb(RateRule):
    r"""Plain Hebbian learning with weight decay: :math:`dw_{ij}/dt = \eta\, x_i y_j - \lambda w_{ij}`.

    :math:`x, y` are trace-estimated rates (Hz); :math:`\eta` (``lr``) and
    :math:`\lambda` (``decay``) are per ms (Hebb 1949; the decay keeps weights bounded).
    The product is summed over the batch; the decay applies once per application.
    """

    def __init__(self, *, decay: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if decay < 0 or not math.isfinite(decay):
            raise ValueError("Hebb: decay must be finite and >= 0")
        self.decay = decay

    @property
    def decay_step(self) -> float:
        """The decay of one application: ``decay * every * dt``."""
        return self.decay * self.step_scale

    @staticmethod
    def delta(w: torch.Tensor, xy: torch.Tensor, lr: float, decay: float) -> torch.Tensor:
        """xy: per-synapse sum over the batch of pre x post activity."""
        return lr * xy - decay * w

    def recipe(self) -> Recipe:
        return Recipe(traces=self.traces(), per_step=hebbian, on_apply=with_decay)
