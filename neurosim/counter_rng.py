"""Counter-based random numbers: a pure function of (stream key, step, element).

A Poisson source needs fresh uniform numbers for every neuron at every step. They
are computed, not drawn from a stateful generator: ``u = hash(key, step, index)``.
So the numbers do not depend on the order in which elements are processed, the
backend (torch or numba), the device, or how neurons are split across threads or
processes, and the "position" of a stream is just the step counter, which the
network's state already holds. The hash is Chris Wellons' ``lowbias32`` integer
hash, written so that no intermediate exceeds 2**49: the same code is exact on
Python ints, numpy/torch int64 arrays and numba int64 scalars (the functions are
``register_jitable``: plain Python, and compiled when called from numba code).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numba.extending import register_jitable

MASK32 = 0xFFFFFFFF
#: 2**-24: a 24-bit integer times this is an exactly representable float32 in [0, 1)
UNIT24 = 1.0 / 16777216.0


@register_jitable
def _mul32(x: Any, c: int) -> Any:
    """(x * c) mod 2**32 for 0 <= x, c < 2**32, without 64-bit overflow."""
    lo = x * (c & 0xFFFF)
    hi = ((x * (c >> 16)) & 0xFFFF) << 16
    return (lo + hi) & MASK32


@register_jitable
def lowbias32(x: Any) -> Any:
    """A 32-bit integer hash with low bias (Wellons 2018); x in [0, 2**32)."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    x = x ^ (x >> 16)
    return x


def stream_key(seed: int, name: str) -> int:
    """A 32-bit key for the stream of component ``name`` under run seed ``seed``."""
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little")


def element_keys(key: int, count: int) -> np.ndarray:
    """Per-element hashes (int64) that, combined with a step hash, give the numbers."""
    return lowbias32(np.arange(count, dtype=np.int64) ^ key).astype(np.int64)


def element_keys_at(key: int, places: np.ndarray) -> np.ndarray:
    """:func:`element_keys` of the elements at ``places`` (int64, any shape): element
    ``i`` has the same key whichever others are computed with it."""
    return lowbias32(np.asarray(places, dtype=np.int64) ^ key).astype(np.int64)


@register_jitable
def step_key(key: int, step: int) -> int:
    """The per-step hash of a stream, in [0, 2**32), for any step >= 0.

    The low 32 bits of the step are hashed as in every earlier version, so the
    numbers of steps below 2**32 (and every published result) are unchanged.
    From step 2**32 on (119 h at dt 0.1 ms) the high bits are hashed in too, so
    the sequence does not start over. (A 32-bit step key cannot be unique over
    more than 2**32 steps: a later step may share the numbers of some earlier
    step, but at scattered steps, never as a repeat of a stretch.)
    """
    h = lowbias32(((step & MASK32) ^ lowbias32(key ^ 0x9E3779B9)) & MASK32)
    high = step >> 32
    if high != 0:  # one scalar branch per step and stream, not per neuron
        h = lowbias32(h ^ lowbias32((high ^ 0x85EBCA6B) & MASK32))
    return h


def step_keys(key: int, start: int, count: int) -> np.ndarray:
    """:func:`step_key` of steps ``start .. start + count - 1``, as int64 (vectorised,
    for a table filled once per stretch of steps; the same numbers)."""
    steps = np.arange(start, start + count, dtype=np.int64)
    base = lowbias32((key ^ 0x9E3779B9) & MASK32)
    h = lowbias32(((steps & MASK32) ^ base) & MASK32)
    high = steps >> 32
    return np.where(high != 0, lowbias32(h ^ lowbias32((high ^ 0x85EBCA6B) & MASK32)), h)
