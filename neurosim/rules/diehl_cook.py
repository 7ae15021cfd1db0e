"""The STDP rule of Diehl & Cook's (2015) released code."""

from __future__ import annotations

from neurosim.rules.base import Rule, check_positive


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

    def setup(self) -> None:
        tau_pre, tau_post1, tau_post2 = self.taus
        self.x = self.pre_trace(tau_pre, "nearest")
        self.y1 = self.post_trace(tau_post1, "nearest")
        self.y2 = self.post_trace(tau_post2, "nearest")

    def update_traces(self, t: int) -> None:
        self._pre, self._post = self.pre_spikes(t), self.post_spikes(t)
        self.x.update(self._pre)
        self.y1.update(self._post)
        self.y2.update(self._post)

    def weight_change(self, t: int):
        post = self._post.to(self.projection.dtype)
        ltp = self.outer(self.x.value, post * self.y2.before) * self.nu_post
        ltd = self.outer(self._pre, self.y1.before) * self.nu_pre
        return self.lr * (ltp - ltd)
