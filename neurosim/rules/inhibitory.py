"""Inhibitory plasticity that balances excitation and inhibition (homeostasis)."""

from __future__ import annotations

from neurosim.rules.base import Rule, check_positive
from neurosim.rules.recipe import Recipe, Trace


# inhibitory weights are negative: a stronger synapse is a more negative weight
def strengthen_at_post(x_pre, lr):
    return -(lr * x_pre)


def strengthen_at_pre(x_post_before, alpha, lr):
    return -(lr * (x_post_before - alpha))


class InhibitoryPlasticity(Rule):
    r"""Vogels et al. (2011) inhibitory STDP: drives each neuron to a target rate.

    With spike traces :math:`x_i` (presynaptic) and :math:`y_j` (postsynaptic),
    time constant :math:`\tau`, the *strength* :math:`g_{ij} = -w_{ij} \ge 0` of an
    inhibitory synapse changes as

    .. math::

        \text{post spike: } g \mathrel{+}= \eta\, x_i, \qquad
        \text{pre spike: } g \mathrel{+}= \eta\, (y_j - \alpha), \qquad
        \alpha = 2 \rho_0 \tau

    so a neuron firing above the target rate :math:`\rho_0` gains inhibition and one
    firing below loses it; the rates settle at :math:`\rho_0` (Vogels, Sprekeler,
    Zenke, Clopath & Gerstner, Science 334:1569, 2011). Attach it to a projection
    with receptor ``"inh"``; weights stay in ``[w_min, 0]``.
    """

    def __init__(self, *, target_rate_hz: float, tau_ms: float = 20.0, **kwargs) -> None:
        kwargs.setdefault("w_min", -float("inf"))
        kwargs.setdefault("w_max", 0.0)
        super().__init__(**kwargs)
        check_positive("InhibitoryPlasticity", target_rate_hz=target_rate_hz, tau_ms=tau_ms)
        self.target_rate_hz, self.tau_ms = target_rate_hz, tau_ms
        self.alpha = 2.0 * target_rate_hz * 1e-3 * tau_ms

    def setup(self) -> None:
        self.require_receptor("inh")

    def recipe(self) -> Recipe:
        traces = (Trace("x_pre", "pre", self.tau_ms), Trace("x_post", "post", self.tau_ms))
        return Recipe(traces=traces, on_pre=strengthen_at_pre, on_post=strengthen_at_post)
