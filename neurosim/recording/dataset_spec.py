"""What a log is asked to hold: one extendible dataset's key, dtype, trailing shape, attributes.

Storage (``neurosim.recording``) defines it and the domain (monitors) fills it in,
so that storage never depends on the domain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class DatasetSpec:
    """An extendible dataset a monitor appends to: trailing shape, dtype, attributes."""

    key: str
    dtype: str
    tail: tuple[int, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)
