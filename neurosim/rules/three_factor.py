"""Three-factor learning: eligibility traces turned into weight changes by a neuromodulator."""

from __future__ import annotations

from neurosim.rules.base import check_positive
from neurosim.rules.recipe import Recipe
from neurosim.rules.stdp import STDP


# the STDP window feeds the eligibility (no learning rate: it is applied by the gate)
def eligible_ltp(x_pre, a_plus):
    return a_plus * x_pre


def eligible_ltd(x_post_before, a_minus):
    return -(a_minus * x_post_before)


def modulated_change(e, m, lr):
    return lr * m * e


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
    (global reward or dopamine), one value per postsynaptic neuron, or one per
    sample and postsynaptic neuron (``per_sample=True``; each sample then keeps
    its own eligibility, and the change is the batch sum of :math:`M_b e_b`). Without a
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

    def recipe(self) -> Recipe:
        # a modulator shaped (batch, n) keeps one eligibility per sample, so each
        # sample's signal meets its own eligibility before the batch sum
        return Recipe(traces=self.traces(), on_pre=eligible_ltd, on_post=eligible_ltp,
                      gate=modulated_change, eligibility=self.tau_eligibility,
                      signals={"m": self.modulator_name})

    def describe(self):
        return {**super().describe(), "modulator": self.modulator_name,
                "tau_eligibility": self.tau_eligibility}
