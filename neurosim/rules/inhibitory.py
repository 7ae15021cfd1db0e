"""Inhibitory plasticity that balances excitation and inhibition (homeostasis)."""

from __future__ import annotations

from neurosim.rules.base import Rule, check_positive


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
        self.x_pre, self.x_post = self.pre_trace(self.tau_ms), self.post_trace(self.tau_ms)

    def update_traces(self, t):
        self._pre, self._post = self.pre_spikes(t), self.post_spikes(t)
        self.x_pre.update(self._pre)
        self.x_post.update(self._post)

    def weight_change(self, t):
        strengthen = self.outer(self.x_pre.value, self._post) + self.outer(
            self._pre, self.x_post.before - self.alpha)
        return -self.lr * strengthen  # inhibitory weights are negative: stronger = more negative
