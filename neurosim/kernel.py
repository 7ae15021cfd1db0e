"""One source, several engines: how a model's update function is written and run.

A neuron model's update is an ordinary Python function of per-neuron values
(state variables, inputs, constants) that is *branch-free*: it uses arithmetic,
comparisons, and only the math names defined here (``exp``, ``where``,
``maximum``/``minimum``, the activations ``elu``, ``sigmoid``, ``tanh``, and
``spike``/``spike_above`` for the firing condition). The same function object is
then re-bound to a backend's math:

* torch backend: ``exp`` -> ``torch.exp``, ``where`` -> ``torch.where``; the
  function runs once per step on whole ``(batch, n)`` tensors;
* numpy (reference/tests): the defaults below, on arrays;
* a compiled backend (numba) can bind scalar versions and call the function
  inside a loop over neurons;
* differentiable runs (:mod:`neurosim.surrogate`) bind ``spike`` to a float step
  whose derivative is a surrogate gradient, so the same equations train by BPTT.

Rebinding swaps the function's globals, so the equations are written once and
no backend keeps a hand-written twin that could drift.
"""

from __future__ import annotations

import types
from typing import Any, Callable, Mapping

import numpy as np
import torch

#: Names a kernel function may use from its module globals besides arithmetic.
KERNEL_MATH_NAMES = ("exp", "where", "maximum", "minimum", "spike", "spike_above", "elu", "sigmoid",
                     "tanh")


def exp(x: Any) -> Any:
    """Elementwise exponential (numpy reference implementation)."""
    return np.exp(x)


def where(cond: Any, a: Any, b: Any) -> Any:
    """Elementwise select: ``a`` where ``cond`` holds, else ``b`` (numpy reference)."""
    return np.where(cond, a, b)


def maximum(a: Any, b: Any) -> Any:
    """Elementwise larger of ``a`` and ``b`` (numpy reference); e.g. ``maximum(z, 0.0)``."""
    return np.maximum(a, b)


def minimum(a: Any, b: Any) -> Any:
    """Elementwise smaller of ``a`` and ``b`` (numpy reference)."""
    return np.minimum(a, b)


def elu(x: Any) -> Any:
    """``x`` where ``x > 0``, else ``exp(x) - 1`` (the ELU, alpha 1; numpy reference). Each
    backend computes it in one pass (torch: ``F.elu``)."""
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` without overflow (numpy reference; torch: ``torch.sigmoid``)."""
    e = np.exp(-np.abs(x))  # <= 1
    return np.where(x > 0, 1.0 / (1.0 + e), e / (1.0 + e))


def tanh(x: Any) -> Any:
    """The hyperbolic tangent (numpy reference; torch: ``torch.tanh``)."""
    return np.tanh(x)


def torch_maximum(a: Any, b: Any) -> Any:
    """``maximum`` on tensors: a clamp when one side is a number (several times faster
    than a ``where`` on the CPU)."""
    if not isinstance(b, torch.Tensor):
        return torch.clamp_min(a, b) if isinstance(a, torch.Tensor) else max(a, b)
    if not isinstance(a, torch.Tensor):
        return torch.clamp_min(b, a)
    return torch.maximum(a, b)


def torch_minimum(a: Any, b: Any) -> Any:
    """``minimum`` on tensors (see :func:`torch_maximum`)."""
    if not isinstance(b, torch.Tensor):
        return torch.clamp_max(a, b) if isinstance(a, torch.Tensor) else min(a, b)
    if not isinstance(a, torch.Tensor):
        return torch.clamp_max(b, a)
    return torch.minimum(a, b)


def spike(x: Any) -> Any:
    """The firing condition ``x >= 0`` (e.g. ``spike(v - v_thresh)``): boolean here; a
    float step with a surrogate derivative in differentiable runs."""
    return x >= 0


def spike_above(x: Any) -> Any:
    """The strict firing condition ``x > 0`` (snnTorch's Heaviside); see :func:`spike`."""
    return x > 0


TORCH_MATH: Mapping[str, Callable[..., Any]] = {"exp": torch.exp, "where": torch.where,
                                                "maximum": torch_maximum, "minimum": torch_minimum,
                                                "spike": spike, "spike_above": spike_above,
                                                "elu": torch.nn.functional.elu, "sigmoid": torch.sigmoid,
                                                "tanh": torch.tanh}
NUMPY_MATH: Mapping[str, Callable[..., Any]] = {"exp": exp, "where": where, "maximum": maximum,
                                                "minimum": minimum, "spike": spike,
                                                "spike_above": spike_above, "elu": elu,
                                                "sigmoid": sigmoid, "tanh": tanh}


def kernel(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a branch-free helper that other kernel functions call.

    :func:`bind` re-binds marked helpers too, so a helper shared by two models
    (e.g. the exact membrane step of LIF and adaptive LIF) is written once.
    """
    fn.__neurosim_kernel__ = True
    return fn


def bind(fn: Callable[..., Any], math: Mapping[str, Callable[..., Any]]) -> Callable[..., Any]:
    """Return a copy of ``fn`` whose math names (:data:`KERNEL_MATH_NAMES`) resolve to ``math``.

    Helpers marked with :func:`kernel` that ``fn`` calls are re-bound the same way.
    """
    missing = [name for name in KERNEL_MATH_NAMES if name not in math]
    if missing:
        raise ValueError(f"math namespace lacks {missing}")
    glob = dict(fn.__globals__)
    # (a kernel helper the function's module defines under a math name, e.g. its own
    # sigmoid(x, slope), stays its own; but not spike: the firing condition is what
    # gating and surrogate gradients re-bind)
    own = {name for name in KERNEL_MATH_NAMES if name not in ("spike", "spike_above")
           and getattr(glob.get(name), "__neurosim_kernel__", False)}
    glob.update({name: math[name] for name in KERNEL_MATH_NAMES if name not in own})
    for name in fn.__code__.co_names:
        helper = glob.get(name)
        if getattr(helper, "__neurosim_kernel__", False):
            glob[name] = bind(helper, math)
    bound = types.FunctionType(fn.__code__, glob, fn.__name__, fn.__defaults__, fn.__closure__)
    bound.__doc__ = fn.__doc__
    return bound
