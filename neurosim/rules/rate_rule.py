r"""Rate-based rules' common part: activities as trace-estimated firing rates.

Activities are the neurons' firing rates estimated by exponential traces of
their spikes, in Hz: :math:`r = 1000\,x/\tau` where :math:`x` is a spike trace
with time constant :math:`\tau` (ms); hooks read them as ``x_pre * rate_scale``
and ``x_post * rate_scale``. Each rule's equation is also a static ``delta``
function of batch-summed per-synapse products, for anyone who wants the bare
update (e.g. on rate data). Rate rules are continuous: ``lr`` is per ms and each
application stands for ``every * dt`` ms (see :class:`~neurosim.rules.Rule`).
"""

from __future__ import annotations

import torch

from neurosim.rules.base import Rule, check_positive
from neurosim.rules.recipe import Trace


class RateRule(Rule):
    """A rule that sees pre and post activity as trace-estimated rates (Hz)."""

    continuous = True

    def __init__(self, *, tau_activity: float = 50.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive(type(self).__name__, tau_activity=tau_activity)
        self.tau_activity = tau_activity

    @property
    def rate_scale(self) -> float:
        """Hz per unit of trace: ``1000 / tau_activity``."""
        return 1000.0 / self.tau_activity

    def traces(self) -> tuple[Trace, Trace]:
        return (Trace("x_pre", "pre", self.tau_activity), Trace("x_post", "post", self.tau_activity))

    def rates(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(presynaptic, postsynaptic) rates now, in Hz, ``(batch, n)`` each (the
        presynaptic ones ``(batch, n_pre * len(pre_delays))`` on a projection with
        per-synapse delays: one block of columns per delay, see ``Rule.pre_index``)."""
        return self.x_pre.value * self.rate_scale, self.x_post.value * self.rate_scale
