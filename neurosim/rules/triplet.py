"""Triplet STDP (Pfister & Gerstner 2006)."""

from __future__ import annotations

import math

from neurosim.rules.base import Rule, check_positive
from neurosim.rules.recipe import Recipe, Trace


def triplet_ltp(r1, o2_before, a2_plus, a3_plus, lr):
    return lr * r1 * (a2_plus + a3_plus * o2_before)


def triplet_ltd(o1_before, r2_before, a2_minus, a3_minus, lr):
    return -(lr * o1_before * (a2_minus + a3_minus * r2_before))


class TripletSTDP(Rule):
    r"""Triplet STDP, all-to-all form (Pfister & Gerstner, J. Neurosci. 26:9673, 2006).

    Presynaptic traces :math:`r_1` (:math:`\tau_+`), :math:`r_2` (:math:`\tau_x`);
    postsynaptic traces :math:`o_1` (:math:`\tau_-`), :math:`o_2` (:math:`\tau_y`);
    each jumps by 1 at its neuron's spikes. Then

    .. math::

        \text{post spike: } w \mathrel{+}= r_1 \left(A_2^+ + A_3^+\, o_2(t-\epsilon)\right),\qquad
        \text{pre arrival: } w \mathrel{-}= o_1 \left(A_2^- + A_3^-\, r_2(t-\epsilon)\right)

    where :math:`(t-\epsilon)` means the trace's value just before the spike's own
    jump. The triplet terms make potentiation grow with the postsynaptic rate,
    reproducing the frequency dependence of pairing protocols. Defaults: the
    paper's all-to-all full model fitted to visual cortex data (Table 2): :math:`\tau_+` 16.8 ms, :math:`\tau_-` 33.7 ms, :math:`\tau_x` 101 ms,
    :math:`\tau_y` 125 ms, :math:`A_2^+` 5e-10, :math:`A_3^+` 6.2e-3,
    :math:`A_2^-` 7e-3, :math:`A_3^-` 2.3e-4.
    """

    def __init__(self, *, a2_plus: float = 5e-10, a3_plus: float = 6.2e-3, a2_minus: float = 7e-3,
                 a3_minus: float = 2.3e-4, tau_plus: float = 16.8, tau_minus: float = 33.7,
                 tau_x: float = 101.0, tau_y: float = 125.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive("TripletSTDP", tau_plus=tau_plus, tau_minus=tau_minus, tau_x=tau_x, tau_y=tau_y)
        amps = (a2_plus, a3_plus, a2_minus, a3_minus)
        if any(a < 0 or not math.isfinite(a) for a in amps):
            raise ValueError("TripletSTDP: amplitudes must be finite and >= 0")
        self.a2_plus, self.a3_plus, self.a2_minus, self.a3_minus = amps
        self.taus = (tau_plus, tau_x, tau_minus, tau_y)

    def recipe(self) -> Recipe:
        tau_plus, tau_x, tau_minus, tau_y = self.taus
        traces = (Trace("r1", "pre", tau_plus), Trace("r2", "pre", tau_x),
                  Trace("o1", "post", tau_minus), Trace("o2", "post", tau_y))
        return Recipe(traces=traces, on_pre=triplet_ltd, on_post=triplet_ltp)

    def describe(self):
        return {**super().describe(), "a2_plus": self.a2_plus, "a3_plus": self.a3_plus,
                "a2_minus": self.a2_minus, "a3_minus": self.a3_minus,
                "tau_plus_x_minus_y": list(self.taus)}
