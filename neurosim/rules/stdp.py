"""Pair-based spike-timing-dependent plasticity with exponential traces."""

from __future__ import annotations

import math

from neurosim.rules.base import Rule, check_positive
from neurosim.rules.recipe import Recipe, Trace


# Hooks (see neurosim.rules.recipe): a presynaptic arrival pairs with the postsynaptic
# trace from before this step's postsynaptic spikes; a postsynaptic spike pairs with
# the presynaptic trace including this step's arrivals (coincident spikes potentiate).
def potentiate(x_pre, a_plus, lr):
    return lr * a_plus * x_pre


def depress(x_post_before, a_minus, lr):
    return -(lr * a_minus * x_post_before)


def potentiate_soft(w, x_pre, a_plus, lr, w_max):
    return lr * a_plus * x_pre * (w_max - w)


def depress_soft(w, x_post_before, a_minus, lr, w_min):
    return -(lr * a_minus * x_post_before * (w - w_min))


class STDP(Rule):
    r"""Pair-based STDP (Song, Miller & Abbott 2000; Bi & Poo 1998), with traces.

    For a presynaptic spike arriving at the synapse at :math:`t_{pre}` and a
    postsynaptic spike at :math:`t_{post}`, :math:`\Delta t = t_{post} - t_{pre}`:

    .. math::

        \Delta w = \begin{cases} A_+ \, e^{-\Delta t/\tau_+} & \Delta t \ge 0 \\
                                 -A_- \, e^{\Delta t/\tau_-} & \Delta t < 0 \end{cases}

    implemented with a presynaptic trace :math:`x` (time constant :math:`\tau_+`)
    and a postsynaptic trace :math:`y` (:math:`\tau_-`): at a postsynaptic spike
    :math:`w \mathrel{+}= A_+ x`, at a presynaptic arrival :math:`w \mathrel{-}= A_- y`.
    Within one step, presynaptic spikes are counted before postsynaptic ones, so
    coincident spikes (:math:`\Delta t = 0`) potentiate, as in Brian2.

    Args:
        a_plus, a_minus: amplitudes (weight units), both >= 0.
        tau_plus, tau_minus: window time constants (ms).
        pairing: ``"all"`` (all-to-all: every pair counts) or ``"nearest"``
            (each spike pairs with the nearest spike of the other side).
        weight_dependence: ``"additive"`` (the window above) or
            ``"multiplicative"`` (soft bounds: potentiation scaled by
            :math:`w_{max} - w`, depression by :math:`w - w_{min}`; van Rossum et al. 2000).
        lr, w_min, w_max, every, learning, as_gradient: see :class:`~neurosim.rules.Rule`.

    The change is summed over the batch (weights are shared by all samples).
    """

    def __init__(self, *, a_plus: float = 0.01, a_minus: float = 0.0105, tau_plus: float = 20.0,
                 tau_minus: float = 20.0, pairing: str = "all",
                 weight_dependence: str = "additive", **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive("STDP", tau_plus=tau_plus, tau_minus=tau_minus)
        if a_plus < 0 or a_minus < 0 or not math.isfinite(a_plus + a_minus):
            raise ValueError("STDP: a_plus and a_minus must be finite and >= 0")
        if pairing not in ("all", "nearest"):
            raise ValueError(f"STDP: pairing must be 'all' or 'nearest', got {pairing!r}")
        if weight_dependence not in ("additive", "multiplicative"):
            raise ValueError("STDP: weight_dependence must be 'additive' or 'multiplicative', "
                             f"got {weight_dependence!r}")
        if weight_dependence == "multiplicative" and math.isinf(kwargs.get("w_max", math.inf)):
            raise ValueError("STDP: multiplicative weight dependence needs a finite w_max")
        self.a_plus, self.a_minus = a_plus, a_minus
        self.tau_plus, self.tau_minus = tau_plus, tau_minus
        self.pairing, self.weight_dependence = pairing, weight_dependence

    def traces(self) -> tuple[Trace, Trace]:
        return (Trace("x_pre", "pre", self.tau_plus, self.pairing),
                Trace("x_post", "post", self.tau_minus, self.pairing))

    def recipe(self) -> Recipe:
        if self.weight_dependence == "multiplicative":
            return Recipe(traces=self.traces(), on_pre=depress_soft, on_post=potentiate_soft)
        return Recipe(traces=self.traces(), on_pre=depress, on_post=potentiate)

    def describe(self):
        return {**super().describe(), "a_plus": self.a_plus, "a_minus": self.a_minus,
                "tau_plus": self.tau_plus, "tau_minus": self.tau_minus, "pairing": self.pairing,
                "weight_dependence": self.weight_dependence}
