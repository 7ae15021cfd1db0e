"""Homeostatic inhibitory plasticity driven by each neuron's slow rate error."""

from __future__ import annotations

from neurosim.rules.base import Rule, check_positive
from neurosim.rules.recipe import Recipe, Trace


def homeostatic(x_pre, rate, rate_scale, target_rate_hz, lr):
    # inhibitory weights are negative: more inhibition is a more negative weight
    return -(lr * x_pre * (rate * rate_scale - target_rate_hz))


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
    The rule is continuous: :math:`dg/dt = \eta\, x_i (r_j - \rho_0)`, ``lr`` per ms.
    """

    continuous = True

    def __init__(self, *, target_rate_hz: float, tau_ms: float = 20.0, tau_rate_ms: float = 1000.0,
                 **kwargs) -> None:
        kwargs.setdefault("w_min", -float("inf"))
        kwargs.setdefault("w_max", 0.0)
        super().__init__(**kwargs)
        check_positive("RateHomeostasis", target_rate_hz=target_rate_hz, tau_ms=tau_ms,
                       tau_rate_ms=tau_rate_ms)
        self.target_rate_hz, self.tau_ms, self.tau_rate_ms = target_rate_hz, tau_ms, tau_rate_ms

    def setup(self) -> None:
        self.require_receptor("inh")

    @property
    def rate_scale(self) -> float:
        return 1000.0 / self.tau_rate_ms

    def recipe(self) -> Recipe:
        traces = (Trace("x_pre", "pre", self.tau_ms), Trace("rate", "post", self.tau_rate_ms))
        return Recipe(traces=traces, per_step=homeostatic)
