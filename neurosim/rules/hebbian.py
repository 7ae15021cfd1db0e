r"""Rate-based Hebbian rules: plain Hebb with decay, Oja, BCM.

Activities are the neurons' firing rates estimated by exponential traces of
their spikes, in Hz: :math:`r = 1000\,x/\tau` where :math:`x` is a spike trace
with time constant :math:`\tau` (ms). Each rule's equation is a static
``delta`` function of batch-summed per-synapse products, shared by the rule on
a projection and by anyone who wants the bare update (e.g. on rate data).
"""

from __future__ import annotations

import math

import torch

from neurosim.rules.base import Rule, check_positive


class RateRule(Rule):
    """A rule that sees pre and post activity as trace-estimated rates (Hz)."""

    def __init__(self, *, tau_activity: float = 50.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive(type(self).__name__, tau_activity=tau_activity)
        self.tau_activity = tau_activity

    def setup(self) -> None:
        self.x_pre = self.pre_trace(self.tau_activity)
        self.x_post = self.post_trace(self.tau_activity)

    def update_traces(self, t: int) -> None:
        self.x_pre.update(self.pre_spikes(t))
        self.x_post.update(self.post_spikes(t))

    def rates(self) -> tuple[torch.Tensor, torch.Tensor]:
        scale = 1000.0 / self.tau_activity
        return self.x_pre.value * scale, self.x_post.value * scale


class Hebb(RateRule):
    r"""Plain Hebbian learning with weight decay: :math:`\Delta w_{ij} = \eta\, x_i y_j - \lambda w_{ij}`.

    (Hebb 1949; the decay keeps weights bounded.) ``decay`` is :math:`\lambda` per update.
    """

    def __init__(self, *, decay: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if decay < 0 or not math.isfinite(decay):
            raise ValueError("Hebb: decay must be finite and >= 0")
        self.decay = decay

    @staticmethod
    def delta(w, xy, lr, decay):
        """xy: per-synapse sum over the batch of pre x post activity."""
        return lr * xy - decay * w

    def weight_change(self, t):
        x, y = self.rates()
        return self.delta(self.projection.weight, self.outer(x, y), self.lr, self.decay)


class Oja(RateRule):
    r"""Oja's rule (Oja 1982): :math:`\Delta w_{ij} = \eta\, y_j (x_i - y_j w_{ij})`.

    For a linear neuron :math:`y = w\cdot x` on zero-mean input the weight vector
    converges to the unit-norm leading eigenvector of the input covariance (the
    first principal component). ``lr`` must be small compared with
    :math:`1/\lambda_{max}`.
    """

    @staticmethod
    def delta(w, xy, y2, lr):
        """xy: per-synapse sum_b x_i y_j; y2: sum_b y_j**2 broadcast to the weights."""
        return lr * (xy - y2 * w)

    def weight_change(self, t):
        x, y = self.rates()
        return self.delta(self.projection.weight, self.outer(x, y), self.per_post((y * y).sum(0)),
                          self.lr)


class BCM(RateRule):
    r"""BCM rule with a sliding threshold (Bienenstock, Cooper & Munro 1982; Intrator & Cooper 1992).

    .. math::

        \Delta w_{ij} = \eta\, x_i\, y_j (y_j - \theta_j), \qquad
        \tau_\theta \frac{d\theta_j}{dt} = y_j^2 - \theta_j

    Responses above the threshold potentiate, below it depress; because
    :math:`\theta` tracks :math:`E[y^2]`, the neuron becomes selective to a subset
    of its input patterns. ``tau_theta`` (ms) must be short against the weight
    time scale.
    """

    def __init__(self, *, tau_theta: float = 1000.0, theta_init: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive("BCM", tau_theta=tau_theta)
        self.tau_theta, self.theta_init = tau_theta, theta_init

    def setup(self) -> None:
        super().setup()
        self.theta = torch.full((self.projection.post.n,), float(self.theta_init),
                                dtype=self.projection.dtype, device=self.projection.device)
        self.theta_decay = math.exp(-self.net.dt / self.tau_theta)

    def reset(self) -> None:
        super().reset()
        self.theta.fill_(self.theta_init)

    @staticmethod
    def delta(x_phi, lr):
        """x_phi: per-synapse sum_b x_i y_j (y_j - theta_j)."""
        return lr * x_phi

    @staticmethod
    def theta_step(theta, mean_y2, decay):
        """Exact step of tau dtheta/dt = y^2 - theta with y^2 held over the step."""
        return mean_y2 + (theta - mean_y2) * decay

    def update_traces(self, t):
        super().update_traces(t)
        _, y = self.rates()
        self.theta = self.theta_step(self.theta, (y * y).mean(0), self.theta_decay)

    def weight_change(self, t):
        x, y = self.rates()
        return self.delta(self.outer(x, y * (y - self.theta)), self.lr)
