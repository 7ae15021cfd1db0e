r"""Rate-based rules' common part: activities as trace-estimated firing rates.

Activities are the neurons' firing rates estimated by exponential traces of
their spikes, in Hz: :math:`r = 1000\,x/\tau` where :math:`x` is a spike trace
with time constant :math:`\tau` (ms). Each rule's equation is a static
``delta`` function of batch-summed per-synapse products, shared by the rule on
a projection and by anyone who wants the bare update (e.g. on rate data).
Rate rules are continuous: ``lr`` is per ms and each application stands for
``every * dt`` ms (see :class:`~neurosim.rules.Rule`).
"""

from __future__ import annotations

import torch

from neurosim.rules.base import Rule, check_positive


class RateRule(Rule):
    """A rule that sees pre and post activity as trace-estimated rates (Hz)."""

    continuous = True

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
