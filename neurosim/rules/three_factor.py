"""Three-factor learning: eligibility traces turned into weight changes by a neuromodulator."""

from __future__ import annotations

import math

import torch

from neurosim.rules.base import check_positive
from neurosim.rules.stdp import STDP


class RewardModulatedSTDP(STDP):
    r"""STDP that only marks synapses as eligible; a neuromodulator makes the change.

    Each synapse keeps an eligibility trace :math:`e` fed by the STDP window
    (see :class:`~neurosim.rules.STDP`) and decaying with :math:`\tau_e`; the weight
    changes only in proportion to the modulator :math:`M` (reward, dopamine):

    .. math::

        \frac{de}{dt} = -\frac{e}{\tau_e} + \mathrm{STDP}(\Delta t)\,\delta(t - t_{spike}),
        \qquad \frac{dw}{dt} = \eta\, M(t)\, e(t)

    applied every ``every`` steps as :math:`\Delta w = \eta\, M\, e \cdot
    \mathrm{every}\cdot\Delta t`, so :math:`\eta` (``lr``) is per ms and the
    result does not depend on ``dt`` or ``every`` (beyond their discretisation).

    :math:`M` is a modulator of the network (``net.modulators``): a scalar
    (global reward or dopamine), or one value per postsynaptic neuron. Without a
    modulator signal (:math:`M = 0`) no weight changes. With ``tau_e`` of about a
    second this solves the distal reward problem (Izhikevich 2007, Cereb. Cortex
    17:2443; there :math:`\tau_e` = 1 s, dopamine decays with 200 ms, and
    :math:`w \mathrel{+}= M e` every 10 ms, i.e. ``lr=0.1`` per ms, the default);
    with a short ``tau_e`` and a reward signal it is Florian's (2007) MSTDPET.

    Args:
        modulator: name of the modulator that gates learning.
        tau_eligibility: eligibility time constant (ms).
        other arguments: as :class:`~neurosim.rules.STDP` (the window's amplitudes
            and time constants, pairing, bounds, every, learning, as_gradient);
            ``lr`` per ms (default 0.1).
    """

    continuous = True  # the modulator-gated change is a rate (the eligibility is per event)

    def __init__(self, *, modulator: str = "dopamine", tau_eligibility: float = 1000.0,
                 **kwargs) -> None:
        kwargs.setdefault("weight_dependence", "additive")
        kwargs.setdefault("lr", 0.1)  # per ms: Izhikevich's (2007) w += M e every 10 ms
        super().__init__(**kwargs)
        check_positive("RewardModulatedSTDP", tau_eligibility=tau_eligibility)
        self.modulator_name = modulator
        self.tau_eligibility = tau_eligibility

    def setup(self) -> None:
        super().setup()
        self.check_modulator(self.modulator_name)
        self.decay_e = math.exp(-self.net.dt / self.tau_eligibility)
        self.eligibility = torch.zeros_like(self.projection.weight)

    def reset(self) -> None:
        super().reset()
        self.eligibility.zero_()

    def update_traces(self, t: int) -> None:
        super().update_traces(t)
        ltp, ltd = self.stdp_terms()
        self.eligibility.mul_(self.decay_e).add_(ltp - ltd)

    def weight_change(self, t: int) -> torch.Tensor:
        return self.effective_lr * self.modulator(self.modulator_name) * self.eligibility

    def describe(self):
        return {**super().describe(), "modulator": self.modulator_name,
                "tau_eligibility": self.tau_eligibility}
