"""The BCM rule with a sliding modification threshold."""

from __future__ import annotations

import math

import torch

from neurosim.rules.base import check_positive
from neurosim.rules.rate_rule import RateRule
from neurosim.rules.recipe import NeuronState, Recipe


def bcm(x_pre, x_post, theta, rate_scale, lr):
    y = x_post * rate_scale
    return lr * (x_pre * rate_scale) * y * (y - theta)


def sliding_threshold(theta, x_post, rate_scale, theta_decay):
    """Exact step of tau dtheta/dt = y^2 - theta with y^2 held over the step (batch mean)."""
    y2 = (x_post * rate_scale) * (x_post * rate_scale)
    return y2 + (theta - y2) * theta_decay


class BCM(RateRule):
    r"""BCM rule with a sliding threshold (Bienenstock, Cooper & Munro 1982; Intrator & Cooper 1992).

    .. math::

        \frac{dw_{ij}}{dt} = \eta\, x_i\, y_j (y_j - \theta_j), \qquad
        \tau_\theta \frac{d\theta_j}{dt} = y_j^2 - \theta_j

    Responses above the threshold potentiate, below it depress; because
    :math:`\theta` tracks :math:`E[y^2]`, the neuron becomes selective to a subset
    of its input patterns. ``tau_theta`` (ms) must be short against the weight
    time scale; ``lr`` is per ms.
    """

    def __init__(self, *, tau_theta: float = 1000.0, theta_init: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive("BCM", tau_theta=tau_theta)
        self.tau_theta, self.theta_init = tau_theta, theta_init

    def setup(self) -> None:
        self.theta_decay = math.exp(-self.net.dt / self.tau_theta)

    @staticmethod
    def delta(x_phi: torch.Tensor, lr: float) -> torch.Tensor:
        """x_phi: per-synapse sum_b x_i y_j (y_j - theta_j)."""
        return lr * x_phi

    @staticmethod
    def theta_step(theta: torch.Tensor, mean_y2: torch.Tensor, decay: float) -> torch.Tensor:
        """Exact step of tau dtheta/dt = y^2 - theta with y^2 held over the step."""
        return mean_y2 + (theta - mean_y2) * decay

    def recipe(self) -> Recipe:
        theta = NeuronState("theta", "post", self.theta_init, sliding_threshold)
        return Recipe(traces=self.traces(), per_step=bcm, neuron_state=(theta,))
