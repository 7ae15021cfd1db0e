"""Random value specifications for initial states and weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Uniform:
    """Values drawn uniformly from ``[low, high)``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.high < self.low:
            raise ValueError(f"Uniform: need finite low <= high, got low={self.low}, high={self.high}")

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=shape)

    def describe(self) -> dict[str, Any]:
        return {"distribution": "uniform", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Normal:
    """Values drawn from a normal distribution with ``mean`` and ``std``."""

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.mean) and np.isfinite(self.std)) or self.std < 0:
            raise ValueError(f"Normal: need finite mean and std >= 0, got {self.mean}, {self.std}")

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(self.mean, self.std, size=shape)

    def describe(self) -> dict[str, Any]:
        return {"distribution": "normal", "mean": self.mean, "std": self.std}


Distribution = Uniform | Normal
