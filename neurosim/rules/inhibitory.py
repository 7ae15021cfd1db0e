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
        p = self.projection
        if p.receptor != "inh":
            raise ValueError(f"rule {self.name}: InhibitoryPlasticity needs a projection with "
                             f"receptor 'inh', got '{p.receptor}'")
        self.x_pre, self.x_post = self.pre_trace(self.tau_ms), self.post_trace(self.tau_ms)

    def update_traces(self, t):
        self._pre, self._post = self.pre_spikes(t), self.post_spikes(t)
        self.x_pre.update(self._pre)
        self.x_post.update(self._post)

    def weight_change(self, t):
        strengthen = self.outer(self.x_pre.value, self._post) + self.outer(
            self._pre, self.x_post.before - self.alpha)
        return -self.lr * strengthen  # inhibitory weights are negative: stronger = more negative


class RateHomeostasis(Rule):
    r"""Inhibitory plasticity driven by each neuron's slow rate error (homeostasis).

    .. math::

        \Delta g_{ij} = \eta\, x_i\, (r_j - \rho_0)

    where :math:`g_{ij} = -w_{ij}` is the inhibitory strength, :math:`x_i` a
    presynaptic spike trace (``tau_ms``) and :math:`r_j` the postsynaptic rate
    estimated over ``tau_rate_ms`` (Hz). Each neuron's inhibition grows while it
    fires above the target :math:`\rho_0` and shrinks below it, in proportion to
    how active each inhibitory input is. Because :math:`r_j` averages over much
    longer than one input spike's effect, the correlation between an input and the
    rate is small and the rate settles at the target itself, whereas the
    spike-pair form (:class:`InhibitoryPlasticity`) settles a little above it.
    """

    def __init__(self, *, target_rate_hz: float, tau_ms: float = 20.0, tau_rate_ms: float = 1000.0,
                 **kwargs) -> None:
        kwargs.setdefault("w_min", -float("inf"))
        kwargs.setdefault("w_max", 0.0)
        super().__init__(**kwargs)
        check_positive("RateHomeostasis", target_rate_hz=target_rate_hz, tau_ms=tau_ms,
                       tau_rate_ms=tau_rate_ms)
        self.target_rate_hz, self.tau_ms, self.tau_rate_ms = target_rate_hz, tau_ms, tau_rate_ms

    def setup(self) -> None:
        p = self.projection
        if p.receptor != "inh":
            raise ValueError(f"rule {self.name}: RateHomeostasis needs a projection with "
                             f"receptor 'inh', got '{p.receptor}'")
        self.x_pre, self.rate = self.pre_trace(self.tau_ms), self.post_trace(self.tau_rate_ms)

    def update_traces(self, t):
        self.x_pre.update(self.pre_spikes(t))
        self.rate.update(self.post_spikes(t))

    def weight_change(self, t):
        rate_hz = self.rate.value * (1000.0 / self.tau_rate_ms)
        return -self.lr * self.outer(self.x_pre.value, rate_hz - self.target_rate_hz)
