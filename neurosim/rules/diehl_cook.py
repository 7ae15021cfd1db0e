"""The STDP rule of Diehl & Cook's (2015) released code."""

from __future__ import annotations

from neurosim.rules.base import Rule, check_positive
from neurosim.rules.recipe import Recipe, Trace


def dc_ltp(x, y2_before, nu_post, lr):
    return lr * nu_post * x * y2_before


def dc_ltd(y1_before, nu_pre, lr):
    return -(lr * nu_pre * y1_before)


class DiehlCookSTDP(Rule):
    r"""Nearest-spike "triplet-like" STDP used in Diehl & Cook's (2015) MNIST code.

    Traces are *set* to 1 at their neuron's spikes and decay: presynaptic
    :math:`x` (20 ms), postsynaptic :math:`y_1` (20 ms) and :math:`y_2` (40 ms). Then

    .. math::

        \text{pre arrival: } w \mathrel{-}= \nu_{pre}\, y_1, \qquad
        \text{post spike: } w \mathrel{+}= \nu_{post}\, x\, y_2(t-\epsilon)

    with :math:`\nu_{pre}` = 1e-4, :math:`\nu_{post}` = 1e-2 and weights clipped to
    [0, 1] (Diehl & Cook, Front. Comput. Neurosci. 9:99, 2015; released code).
    """

    def __init__(self, *, nu_pre: float = 1e-4, nu_post: float = 1e-2, tau_pre: float = 20.0,
                 tau_post1: float = 20.0, tau_post2: float = 40.0, **kwargs) -> None:
        kwargs.setdefault("w_max", 1.0)
        super().__init__(**kwargs)
        check_positive("DiehlCookSTDP", tau_pre=tau_pre, tau_post1=tau_post1, tau_post2=tau_post2)
        self.nu_pre, self.nu_post = nu_pre, nu_post
        self.taus = (tau_pre, tau_post1, tau_post2)

    def recipe(self) -> Recipe:
        tau_pre, tau_post1, tau_post2 = self.taus
        traces = (Trace("x", "pre", tau_pre, "nearest"), Trace("y1", "post", tau_post1, "nearest"),
                  Trace("y2", "post", tau_post2, "nearest"))
        return Recipe(traces=traces, on_pre=dc_ltd, on_post=dc_ltp)
