"""An e-prop-style three-factor rule: presynaptic trace times a voltage pseudo-derivative,
kept as an eligibility trace, turned into weight changes by a per-neuron learning signal."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neurosim.kernel import maximum
from neurosim.rules.base import Rule, check_positive
from neurosim.rules.recipe import Recipe, Trace


# psi_j * x_i: psi = gamma * max(0, 1 - |v - v_threshold| / width), one hook per name of
# the membrane variable (a hook's arguments name what it reads)
def feed_from_mem(x_pre, post_mem, v_threshold, width, gamma):
    d = post_mem - v_threshold
    return gamma * maximum(1.0 - maximum(d, -d) / width, 0.0) * x_pre


def feed_from_v(x_pre, post_v, v_threshold, width, gamma):
    d = post_v - v_threshold
    return gamma * maximum(1.0 - maximum(d, -d) / width, 0.0) * x_pre


def signal_times_eligibility(e, m, lr):
    return lr * m * e


_FEEDS = {"mem": feed_from_mem, "v": feed_from_v}


class EProp(Rule):
    r"""Eligibility propagation in three-factor form (Bellec et al., Nat. Commun. 11:3625,
    2020, "e-prop"; the symmetric-free "random e-prop" when the learning signal comes
    through fixed random feedback, as in broadcast alignment).

    Every step, each synapse :math:`i \to j` adds the product of a presynaptic trace
    :math:`\bar x_i` and a pseudo-derivative :math:`\psi_j` of the postsynaptic
    membrane potential to its eligibility :math:`e_{ji}`, which decays with its own
    time constant:

    .. math::

        \bar x_i \leftarrow \bar x_i\, e^{-\Delta t/\tau_{pre}} + s_i,\qquad
        \psi_j = \gamma \max\!\left(0,\ 1 - \frac{|v_j - \vartheta|}{w}\right),\qquad
        e_{ji} \leftarrow e_{ji}\, e^{-\Delta t/\tau_e} + \psi_j\, \bar x_i

    A learning signal :math:`L_j` (a modulator: one value per postsynaptic neuron, or
    per sample and neuron, e.g. an output error broadcast through fixed random
    weights) makes the change :math:`\Delta w_{ji} = \eta \sum_b L_{bj}\, e_{bji}`,
    each sample's signal times that sample's eligibility, summed over the batch.
    It applies once per sample (``apply_at="end_of_sample"``, the default: fired
    by ``net.trigger``) or every ``every`` steps (``apply_at=None``, with the signal
    of that step). With :math:`\tau_e = \infty` and the change applied at the end of
    the sample, :math:`e` is e-prop's sum over the sample of
    :math:`\psi_j^t \bar x_i^t` (its eligibility filtered by the readout is left to
    the learning signal).

    :math:`\vartheta` and the width :math:`w` default to the postsynaptic model's
    threshold: ``threshold`` and ``w = threshold`` for the dimensionless
    :class:`~neurosim.SnnTorchLeaky` (e-prop's :math:`\max(0, 1 - |v - \vartheta|/\vartheta)`,
    read from its membrane ``mem`` before the reset, as e-prop's :math:`v^t`), or
    ``v_thresh`` and ``w = v_thresh - v_rest`` for :class:`~neurosim.LIF` (its ``v``,
    after the step's reset). The learning rate ``lr`` multiplies each application.

    Args:
        modulator: name of the learning signal (``net.modulators``).
        lr: learning rate per application.
        tau_pre: presynaptic trace time constant (ms); e-prop uses the membrane's.
        tau_eligibility: eligibility time constant (ms); ``math.inf`` for a plain sum.
        gamma: pseudo-derivative amplitude (e-prop: 0.3, here 1 by default).
        v_threshold, width: see above (default: from the postsynaptic model).
        voltage: the postsynaptic membrane variable (default ``mem`` or ``v``, whichever
            the model has).
        w_min, w_max: weight bounds (default unbounded: signed weights).
        apply_at, every, learning, as_gradient: as :class:`~neurosim.rules.Rule`.
    """

    def __init__(self, *, modulator: str, lr: float = 1e-3, tau_pre: float = 20.0,
                 tau_eligibility: float = math.inf, gamma: float = 1.0,
                 v_threshold: float | None = None, width: float | None = None,
                 voltage: str | None = None, w_min: float = -math.inf, w_max: float = math.inf,
                 apply_at: str | None = "end_of_sample", every: int = 1, learning: bool = True,
                 as_gradient: bool = False) -> None:
        super().__init__(lr=lr, w_min=w_min, w_max=w_max, every=every, learning=learning,
                         as_gradient=as_gradient, apply_at=apply_at)
        check_positive("EProp", tau_pre=tau_pre, gamma=gamma)
        if not (isinstance(tau_eligibility, (int, float)) and tau_eligibility > 0
                and not math.isnan(tau_eligibility)):
            raise ValueError(f"EProp: tau_eligibility must be a positive number of ms or math.inf, "
                             f"got {tau_eligibility!r}")
        if voltage is not None and voltage not in _FEEDS:
            raise ValueError(f"EProp: voltage must be one of {sorted(_FEEDS)}, got {voltage!r}")
        for name, value in (("v_threshold", v_threshold), ("width", width)):
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"EProp: {name} must be a finite number, got {value!r}")
        if width is not None and width <= 0:
            raise ValueError(f"EProp: width must be positive, got {width!r}")
        self.modulator_name = modulator
        self.tau_pre, self.tau_eligibility, self.gamma = float(tau_pre), float(tau_eligibility), float(gamma)
        self._given = (v_threshold, width, voltage)

    def setup(self) -> None:
        post = self.projection.post
        v_threshold, width, voltage = self._given
        if voltage is None:
            voltage = next((v for v in _FEEDS if v in post.state), None)
            if voltage is None:
                raise ValueError(f"rule {self.name}: EProp reads the membrane potential ('mem' or "
                                 f"'v'), and '{post.name}' has neither (it has {list(post.state)})")
        elif voltage not in post.state:
            raise ValueError(f"rule {self.name}: '{post.name}' has no state variable {voltage!r}")
        params = post.params

        def one(name: str) -> float:
            value = np.unique(np.asarray(params[name], dtype=np.float64))
            if value.size != 1:
                raise ValueError(f"rule {self.name}: '{post.name}' has more than one {name}; pass "
                                 "v_threshold and width to EProp")
            return float(value[0])

        if v_threshold is None or width is None:
            if "threshold" in params:
                theta, span = one("threshold"), one("threshold")
            elif "v_thresh" in params and "v_rest" in params:
                theta, span = one("v_thresh"), one("v_thresh") - one("v_rest")
            else:
                raise ValueError(f"rule {self.name}: '{post.name}' ({post.model_name}) names no "
                                 "threshold EProp knows; pass v_threshold and width")
            v_threshold = theta if v_threshold is None else v_threshold
            width = span if width is None else width
        if not width > 0:
            raise ValueError(f"rule {self.name}: the pseudo-derivative's width must be positive, got {width}")
        self.voltage, self.v_threshold, self.width = voltage, float(v_threshold), float(width)

    def recipe(self) -> Recipe:
        return Recipe(traces=(Trace("x_pre", "pre", self.tau_pre),), per_step=_FEEDS[self.voltage],
                      gate=signal_times_eligibility, eligibility=self.tau_eligibility,
                      signals={"m": self.modulator_name}, per_step_factor="x_pre",
                      gate_scales_e=True)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "modulator": self.modulator_name, "tau_pre": self.tau_pre,
                "tau_eligibility": self.tau_eligibility, "gamma": self.gamma,
                "v_threshold": getattr(self, "v_threshold", None), "width": getattr(self, "width", None),
                "voltage": getattr(self, "voltage", None)}
