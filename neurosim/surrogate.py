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

from typing import Any, Callable, Mapping

import torch

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


def _step(heaviside: torch.Tensor, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:
    if not x.requires_grad:  # nothing to differentiate: the float step alone
        return heaviside.to(x.dtype)
    smooth = surrogate(x)
    return heaviside.to(x.dtype) + (smooth - smooth.detach())


def _where(cond: Any, a: Any, b: Any) -> torch.Tensor:
    if isinstance(cond, torch.Tensor) and cond.dtype != torch.bool:
        cond = cond.detach() != 0
    return torch.where(cond, a, b)


def differentiable_math(surrogate: Surrogate) -> Mapping[str, Callable[..., Any]]:
    """The math namespace (see :func:`neurosim.kernel.bind`) of a differentiable run."""
    return {"exp": torch.exp, "where": _where,
            "spike": lambda x: _step(x >= 0, x, surrogate),
            "spike_above": lambda x: _step(x > 0, x, surrogate)}
