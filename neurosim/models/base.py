"""What a neuron model declares, so that any backend can run it.

Recipe for a new model (both backends come from it):

1. Subclass :class:`NeuronModel`.
2. Declare ``parameters`` (name -> :class:`~neurosim.parameters.Parameter`, with
   unit and accepted range) and ``state_variables`` (name -> :class:`StateVariable`).
3. Name the ``receptors``: which state variable synaptic input of each kind
   (``"exc"``, ``"inh"``) is added to, once per step, before the update.
4. Write ``constants(p, dt)``: everything that depends only on parameters and the
   time step (propagators such as ``exp(-dt/tau)``) computed once, not every step.
5. Write ``update`` as a *branch-free* function (arithmetic, comparisons, ``exp``
   and ``where`` from :mod:`neurosim.kernel`) whose arguments are, by name, the
   state variables, the declared ``inputs`` and ``random_inputs``, and the keys
   of ``constants``; it returns the new state variables in declaration order and
   finally the spike condition, written ``spike(v - v_thresh)`` (fires where the
   argument is >= 0; ``spike_above`` for > 0): a comparison in a normal run, and
   a float step with a surrogate derivative in ``Network.unroll``, so the model
   trains by gradient too. (A plain comparison runs, but cannot be unrolled.)

The engine binds ``update`` to the backend's math and calls it on ``(batch, n)``
arrays; the same function body is the single source of the model's equations.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

from neurosim.parameters import Parameter, ParameterValue, validate_parameters


@dataclass(frozen=True)
class StateVariable:
    """A per-neuron state variable.

    Args:
        unit: physical unit.
        doc: one line saying what it is.
        init: initial value, either a number or the name of a parameter whose
            value to start from (e.g. ``"v_rest"``).
        learned: a slow, learned quantity (e.g. a homeostatic threshold) that
            ``Network.reset_state`` keeps, as it keeps weights.
        finite_with: another state variable this one is a function of each step, finite
            wherever that one is (a graded unit's ``r = phi(z)``): the run's finiteness
            check reads that one only.
    """

    unit: str
    doc: str
    init: float | str = 0.0
    learned: bool = False
    finite_with: str | None = None


class NeuronModel:
    """Base class of neuron models; see the module docstring for the recipe."""

    parameters: ClassVar[dict[str, Parameter]] = {}
    state_variables: ClassVar[dict[str, StateVariable]] = {}
    #: per-step inputs held by the population (set by input objects, e.g. StepCurrent)
    inputs: ClassVar[tuple[str, ...]] = ()
    #: uniform [0, 1) random numbers drawn for every neuron each step, from the
    #: population's own random stream
    random_inputs: ClassVar[tuple[str, ...]] = ()
    #: receptor name -> state variable that synaptic input of that kind adds to
    receptors: ClassVar[dict[str, str]] = {}
    #: what the population emits each step: ``"spike"`` (a bool; projections add the weight
    #: where it is True) or ``"graded"`` (a real value ``r``; projections add ``r * w``)
    output: ClassVar[str] = "spike"
    #: the update argument a gate's threshold offset is added to (see :mod:`neurosim.gating`),
    #: for a model whose threshold also acts outside its ``spike()`` call (e.g. a reset
    #: decided by the last step's membrane); None: the offset shifts ``spike()``'s argument
    threshold_argument: ClassVar[str | None] = None
    #: the branch-free update; subclasses set it with ``staticmethod``
    update: ClassVar[Callable[..., Any]]

    def __init__(self, **params: ParameterValue) -> None:
        self.params = validate_parameters(type(self).__name__, self.parameters, params)
        self.check_consistency(self.params)

    # -- hooks for subclasses -------------------------------------------------------
    def check_consistency(self, p: Mapping[str, ParameterValue]) -> None:
        """Raise ValueError when parameters are individually valid but jointly not."""

    def initial_values(self, p: Mapping[str, Any]) -> dict[str, Any]:
        """Derived values that a :class:`StateVariable`'s ``init`` may name."""
        return {}

    def constants(self, p: Mapping[str, Any], dt: float) -> dict[str, Any]:
        """Values the update needs that depend only on parameters and ``dt`` (ms)."""
        raise NotImplementedError

    # -- used by the engine -----------------------------------------------------------
    @classmethod
    def update_arguments(cls) -> list[str]:
        """Names of ``update``'s arguments, in order."""
        return list(inspect.signature(cls.update).parameters)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description (model name and scalar parameters)."""
        return {"model": type(self).__name__, "parameters": describe_parameters(self.params)}


def describe_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as a description holds them: a number, or ``"array[<shape>]"``."""
    return {k: (v if isinstance(v, float) else f"array{list(getattr(v, 'shape', ()))}")
            for k, v in params.items()}


def check_less(owner: str, p: Mapping[str, Any], low: str, high: str) -> None:
    """Raise unless parameter ``low`` < parameter ``high`` everywhere."""
    import numpy as np

    if np.any(np.asarray(p[low]) >= np.asarray(p[high])):
        raise ValueError(f"{owner}: parameter '{low}' must be below '{high}' "
                         f"(got {low}={p[low]}, {high}={p[high]})")
