"""Graded (non-spiking) rate units: ``r = phi(z)``, delivered as ``r @ W``.

A graded population emits a real value per neuron and step instead of a spike: its
projections add ``r_i * w_ij`` to the receptor (``"in"``, weights of either sign), so a
chain of graded populations joined by delay-0 projections computes a multilayer
perceptron's forward pass in one step, with a batch axis. Counter-current learning,
gating and the adaptive E/I reservoir are built on them.

Per step: ``z = i + i_ext + bias`` (``i``: the synaptic input delivered this step,
cleared once used; ``i_ext``: an injected input, e.g. the pixels of an input layer),
``r = phi(z)``. Each update writes the sum itself, not through a helper, so that a torch
run on the CPU drops a bias of 0 (:mod:`neurosim.backends.torch_update` sees the
update's own source). ``z`` and ``r`` stay readable as state (rules read ``post_z`` for
``phi'(z)``). ``phi`` is one of ``identity``, ``relu``, ``elu``, ``sigmoid``, ``tanh``,
each a model class of its own (one branch-free ``update`` each), chosen by
``Graded(activation=...)``. ELU, sigmoid and tanh are the kernel math functions of
those names (:mod:`neurosim.kernel`): one pass each on torch (``F.elu``,
``torch.sigmoid``, ``torch.tanh``, whose gradients the differentiable mode uses), a
scalar function in numba's loop (sigmoid in the overflow-free form, whose exponent is
never positive); ReLU is ``maximum(z, 0)``, a clamp on torch.
"""

from __future__ import annotations

from typing import Any, ClassVar

from neurosim.kernel import elu, exp, kernel, maximum, minimum, sigmoid, tanh, where
from neurosim.models.base import NeuronModel, StateVariable
from neurosim.parameters import Parameter

GRADED_STATE = {
    "i": StateVariable("1", "synaptic input delivered this step (cleared after the update)", 0.0),
    "z": StateVariable("1", "pre-activation: input + injected input + bias", 0.0),
    # (phi is finite on every finite z: checking z covers r; a subclass whose own phi can
    # overflow, exp say, declares r without finite_with)
    "r": StateVariable("1", "output activity phi(z)", 0.0, finite_with="z"),
}
GRADED_PARAMETERS = {"bias": Parameter(0.0, "1", "constant added to the pre-activation")}


@kernel
def stable_sigmoid(z):
    """1 / (1 + exp(-z)) without overflow: exp of a non-positive number only."""
    e = exp(minimum(z, 0.0 - z))  # exp(-|z|) <= 1
    return where(z > 0.0, 1.0 / (1.0 + e), e / (1.0 + e))


class Graded(NeuronModel):
    """A rate unit ``r = phi(z)``; ``Graded(activation="elu")`` (or ``GradedELU()``, ...).

    Args:
        activation: ``"identity"``, ``"relu"``, ``"elu"``, ``"sigmoid"`` or ``"tanh"``.
        bias: constant added to the pre-activation.

    Example:
        >>> import neurosim as ns
        >>> net = ns.Network(dt=1.0, batch=2)
        >>> x = net.population(3, ns.Graded("identity"), name="x")
        >>> h = net.population(2, ns.Graded("relu"), name="h")
        >>> p = net.projection(x, h, weight=[[1.0, -1.0]] * 3, receptor="in", delay=0)
    """

    output: ClassVar[str] = "graded"
    activation: ClassVar[str] = ""
    parameters = GRADED_PARAMETERS
    state_variables = GRADED_STATE
    inputs = ("i_ext",)
    receptors = {"in": "i"}

    def __new__(cls, activation: str | None = None, **params: Any) -> "Graded":
        if cls is Graded:
            if activation not in GRADED_MODELS:
                raise ValueError(f"Graded: activation must be one of {sorted(GRADED_MODELS)}, "
                                 f"got {activation!r}")
            cls = GRADED_MODELS[activation]
        elif activation not in (None, cls.activation):
            raise ValueError(f"{cls.__name__} has activation {cls.activation!r}, got {activation!r}")
        return super().__new__(cls)

    def __init__(self, activation: str | None = None, **params: Any) -> None:
        super().__init__(**params)

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (self.activation,), {}

    def constants(self, p, dt):
        return {"bias": p["bias"]}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "activation": self.activation}


class GradedIdentity(Graded):
    """``r = z``."""

    activation = "identity"

    @staticmethod
    def update(i, z, r, i_ext, bias):
        z = i + i_ext + bias
        return 0.0 * i, z, z, z


class GradedReLU(Graded):
    """``r = max(z, 0)``."""

    activation = "relu"

    @staticmethod
    def update(i, z, r, i_ext, bias):
        z = i + i_ext + bias
        r = maximum(z, 0.0)
        return 0.0 * i, z, r, r


class GradedELU(Graded):
    """``r = z`` for ``z > 0``, else ``exp(z) - 1`` (alpha 1)."""

    activation = "elu"

    @staticmethod
    def update(i, z, r, i_ext, bias):
        z = i + i_ext + bias
        r = elu(z)
        return 0.0 * i, z, r, r


class GradedSigmoid(Graded):
    """``r = 1 / (1 + exp(-z))``."""

    activation = "sigmoid"

    @staticmethod
    def update(i, z, r, i_ext, bias):
        z = i + i_ext + bias
        r = sigmoid(z)
        return 0.0 * i, z, r, r


class GradedTanh(Graded):
    """``r = tanh(z)``."""

    activation = "tanh"

    @staticmethod
    def update(i, z, r, i_ext, bias):
        z = i + i_ext + bias
        r = tanh(z)
        return 0.0 * i, z, r, r


class GradedInput(NeuronModel):
    """A graded source: emits the values injected into it (``r = i_ext``), e.g. an image.

    Cheaper than ``Graded("identity")`` for an input layer: no synaptic input, no
    pre-activation to keep, one value per neuron and step.
    """

    output: ClassVar[str] = "graded"
    parameters = {}
    state_variables = {"r": StateVariable("1", "output activity: the injected value", 0.0)}
    inputs = ("i_ext",)
    receptors = {}

    def constants(self, p, dt):
        return {}

    @staticmethod
    def update(r, i_ext):
        return i_ext, i_ext


GRADED_MODELS: dict[str, type[Graded]] = {
    c.activation: c for c in (GradedIdentity, GradedReLU, GradedELU, GradedSigmoid, GradedTanh)}
