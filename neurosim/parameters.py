"""Declared model parameters: default, unit, accepted range, and validation.

A model lists its parameters once, as :class:`Parameter` objects. Values given by
the user are checked against that declaration when the model is built, so a typo
or an out-of-range value fails at construction with a message naming the
parameter, its unit and the accepted range, not as a NaN halfway through a run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

ParameterValue = float | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Parameter:
    """One model parameter.

    Args:
        default: value used when the user gives none.
        unit: physical unit, e.g. ``"ms"``, ``"mV"``, ``"Hz"``; ``"1"`` if dimensionless.
        doc: one line saying what it is.
        low, high: accepted closed range (``math.inf`` for unbounded).
        low_open, high_open: make that end of the range open (excluded).
        per_neuron: whether an array of one value per neuron (or per batch
            row and neuron) is accepted as well as a scalar.
        allow_inf: whether ``inf`` is a meaningful value (e.g. a time constant
            of ``inf`` for no decay); otherwise non-finite values are rejected,
            since they turn the state into NaN mid-run.
    """

    default: float
    unit: str
    doc: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    per_neuron: bool = True
    allow_inf: bool = False

    def range_text(self) -> str:
        left = "(" if self.low_open or (math.isinf(self.low) and not self.allow_inf) else "["
        right = ")" if self.high_open or (math.isinf(self.high) and not self.allow_inf) else "]"
        return f"{left}{self.low:g}, {self.high:g}{right}"

    def check(self, name: str, owner: str, value: ParameterValue, n: int | None = None,
              batch: int | None = None) -> ParameterValue:
        """Return ``value`` (scalar float or float64 array) after validating it.

        ``n`` (population size) and ``batch`` are checked against an array's
        shape when known; with ``n=None`` only the values are checked.
        """
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, (list, tuple)):
            value = np.asarray(value, dtype=np.float64)
        if isinstance(value, np.ndarray):
            if value.ndim == 0:
                value = float(value)
            elif not self.per_neuron:
                raise ValueError(f"{owner}: parameter '{name}' must be a scalar, "
                                 f"got an array of shape {value.shape}")
        if isinstance(value, np.ndarray):
            value = value.astype(np.float64)
            if n is None:
                if value.ndim > 2:
                    raise ValueError(f"{owner}: parameter '{name}' has {value.ndim} dimensions; "
                                     "expected a scalar, (n,) or (batch, n)")
            elif not (value.shape == (n,) or (value.ndim == 2 and value.shape[1] == n and
                                           (batch is None or value.shape[0] in (1, batch)))):
                raise ValueError(f"{owner}: parameter '{name}' has shape {value.shape}; "
                                 f"expected a scalar, ({n},) or (batch, {n})")
            values = value
        else:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise TypeError(f"{owner}: parameter '{name}' must be a number or an "
                                f"array of numbers, got {type(value).__name__}") from None
            values = np.asarray([value])
        if np.any(np.isnan(values)):
            raise ValueError(f"{owner}: parameter '{name}' contains NaN")
        if not self.allow_inf and np.any(np.isinf(values)):
            offender = values[np.isinf(values)].flat[0]
            raise ValueError(f"{owner}: parameter '{name}' = {offender:g} {self.unit} must be finite; "
                             f"accepted {self.range_text()} {self.unit} ({self.doc})")
        bad_low = values <= self.low if self.low_open else values < self.low
        bad_high = values >= self.high if self.high_open else values > self.high
        if np.any(bad_low) or np.any(bad_high):
            offender = values[bad_low | bad_high].flat[0]
            raise ValueError(f"{owner}: parameter '{name}' = {offender:g} {self.unit} is out of "
                             f"range; accepted {self.range_text()} {self.unit} ({self.doc})")
        return value


def validate_parameters(owner: str, declared: Mapping[str, Parameter],
                        given: Mapping[str, ParameterValue], n: int | None = None,
                        batch: int | None = None) -> dict[str, ParameterValue]:
    """Fill defaults, reject unknown names, and range-check every value."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(f"{owner}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                         f"known parameters are {', '.join(sorted(declared))}")
    values: dict[str, ParameterValue] = {}
    for name, spec in declared.items():
        values[name] = spec.check(name, owner, given.get(name, spec.default), n, batch)
    return values
