"""Plain Hebbian learning with weight decay."""

from __future__ import annotations

import math

import torch

from neurosim.rules.rate_rule import RateRule


class Hebb(RateRule):
    r"""Plain Hebbian learning with weight decay: :math:`dw_{ij}/dt = \eta\, x_i y_j - \lambda w_{ij}`.

    :math:`x, y` are trace-estimated rates (Hz); :math:`\eta` (``lr``) and
    :math:`\lambda` (``decay``) are per ms (Hebb 1949; the decay keeps weights bounded).
    """

    def __init__(self, *, decay: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if decay < 0 or not math.isfinite(decay):
            raise ValueError("Hebb: decay must be finite and >= 0")
        self.decay = decay

    @staticmethod
    def delta(w: torch.Tensor, xy: torch.Tensor, lr: float, decay: float) -> torch.Tensor:
        """xy: per-synapse sum over the batch of pre x post activity."""
        return lr * xy - decay * w

    def weight_change(self, t: int) -> torch.Tensor:
        x, y = self.rates()
        return self.delta(self.projection.weight, self.outer(x, y), self.effective_lr,
                          self.decay * self.step_scale)
