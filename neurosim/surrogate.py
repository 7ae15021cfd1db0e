"""Surrogate gradients: the firing condition of a model as a float step that trains.

A model writes its firing condition once, with :func:`neurosim.kernel.spike`
(``spike(v - v_thresh)``, fires where the argument is >= 0) or
:func:`~neurosim.kernel.spike_above` (> 0, snnTorch's Heaviside). In a normal run it is
a comparison. In a differentiable run (:meth:`neurosim.Network.unroll`) it is bound
here to a float step whose *value* is exactly the comparison's (so the spikes are the
normal run's) and whose *derivative* is a surrogate's (Neftci, Mostafa & Zenke 2019),
taken from :mod:`snntorch.surrogate`:

.. math::

    s = H(x) + \\big(\\sigma(x) - \\mathrm{sg}[\\sigma(x)]\\big),\\qquad
    \\frac{\\partial s}{\\partial x} = \\sigma'(x)

where :math:`\\mathrm{sg}` stops the gradient. ``where`` with a float spike as its
condition selects by ``spike != 0`` with no gradient through the condition, so a
reset written ``where(spiked, v_reset, v)`` is detached, as snnTorch detaches its
reset by default.
"""

from __future__ import annotations

import math
import weakref
from typing import Any, Callable, Mapping

import torch

from neurosim.kernel import torch_maximum, torch_minimum

#: surrogate names accepted by ``Network.population(..., surrogate=...)``
NAMES = ("atan", "fast_sigmoid", "sigmoid", "triangular", "straight_through_estimator")

Surrogate = Callable[[torch.Tensor], torch.Tensor]


def resolve(surrogate: str | Surrogate | None, owner: str = "surrogate") -> Surrogate:
    """The surrogate function of ``surrogate``: ``None`` is snnTorch's default
    (``atan()``, alpha 2), a name in :data:`NAMES` is that snnTorch surrogate with its
    default slope, and a callable (e.g. ``snntorch.surrogate.fast_sigmoid(slope=25)``)
    is used as it is."""
    if surrogate is None:
        surrogate = "atan"
    if isinstance(surrogate, str):
        if surrogate not in NAMES:
            raise ValueError(f"{owner}: unknown surrogate {surrogate!r}; use one of {list(NAMES)} "
                             "or a function such as snntorch.surrogate.fast_sigmoid(slope=25)")
        import snntorch.surrogate as sg

        return getattr(sg, surrogate)()
    if not callable(surrogate):
        raise TypeError(f"{owner}: surrogate must be a name ({', '.join(NAMES)}), a function "
                        f"from snntorch.surrogate, or None; got {type(surrogate).__name__}")
    return surrogate


def describe(surrogate: str | Surrogate | None) -> str:
    if surrogate is None or isinstance(surrogate, str):
        return surrogate or "atan"
    return getattr(surrogate, "__qualname__", type(surrogate).__name__).split(".<locals>")[0]


#: a probe of the values where a step function is easiest to get wrong
_PROBE = (-math.inf, -1e30, -2.0, -1e-30, -0.0, 0.0, 1e-45, 1e-30, 0.5, 3.0, 1e30, math.inf)
_STEP_FORWARD: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()
_STRONG: dict[int, tuple[Any, bool]] = {}


def heaviside_forward(surrogate: Surrogate) -> bool:
    """True when ``surrogate``'s forward value is exactly ``x > 0`` (snnTorch's are), so
    its output can be the spike itself; checked once per surrogate on a probe."""
    try:
        known = _STEP_FORWARD.get(surrogate)
    except TypeError:  # not weakly referable: remember it (and keep it alive) by id
        known = _STRONG.get(id(surrogate), (None, None))[1]
    if known is None:
        probe = torch.tensor(_PROBE, dtype=torch.float64, requires_grad=True)
        try:
            out = surrogate(probe)
            ok = isinstance(out, torch.Tensor) and torch.equal(out.detach().double(),
                                                               (probe.detach() > 0).double())
        except Exception:  # noqa: BLE001 - any failure: use the general form
            ok = False
        try:
            _STEP_FORWARD[surrogate] = ok
        except TypeError:
            _STRONG[id(surrogate)] = (surrogate, ok)
        known = ok
    return known


def _step(strict: bool, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    """The float step ``x > 0`` (``strict``) or ``x >= 0`` with ``surrogate``'s derivative."""
    if not x.requires_grad:  # nothing to differentiate: the float step alone
        return ((x > 0) if strict else (x >= 0)).to(x.dtype)
    if heaviside_forward(surrogate):  # its value is the step: fewer operations
        out = surrogate(x)
        out = out if out.dtype == x.dtype else out.to(x.dtype)
        return out if strict else out + (x == 0).to(x.dtype)
    smooth = surrogate(x)
    step = (x > 0) if strict else (x >= 0)
    return step.to(x.dtype) + (smooth - smooth.detach())


def _where(cond: Any, a: Any, b: Any) -> torch.Tensor:
    if isinstance(cond, torch.Tensor) and cond.dtype != torch.bool:
        cond = cond.detach() != 0
    return torch.where(cond, a, b)


def differentiable_math(surrogate: Surrogate) -> Mapping[str, Callable[..., Any]]:
    """The math namespace (see :func:`neurosim.kernel.bind`) of a differentiable run."""
    return {"exp": torch.exp, "where": _where, "maximum": torch_maximum, "minimum": torch_minimum,
            "spike": lambda x: _step(False, x, surrogate),
            "spike_above": lambda x: _step(True, x, surrogate),
            "elu": torch.nn.functional.elu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
