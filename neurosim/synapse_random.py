"""Counter-based random numbers per postsynaptic neuron and per synapse.

The connectors drawn by postsynaptic neuron (:mod:`neurosim.connectors_by_post`) and the
weights drawn for them take their numbers from :mod:`neurosim.counter_rng`'s hash, keyed
by the projection's stream and by the neuron or the synapse: the ``k``-th number of
postsynaptic neuron ``j`` and the number of synapse ``(i, j)`` are pure functions of
``(key, j, k)`` and ``(key, i, j)``. So a process that steps postsynaptic neurons
``lo .. hi - 1`` draws exactly their synapses and weights, the same as one process that
draws them all, without drawing the rest (as NEST draws each neuron's incoming
connections on the process that owns it).

Each neuron has two 32-bit keys (:func:`neuron_keys`). A number is the hash of the
counter (or of the presynaptic neuron) combined with the first key, hashed again and
combined with the second: with one key, two neurons' streams, and two synapses' states,
would be XOR-translates of each other (every coincidence of two values would come with
a crossed one). Synapse states and connection draws have 32 bits: uniforms have 2**32
levels in (0, 1), and normal weights (Box-Muller) are cut beyond 6.76 standard
deviations. The random choices of :class:`~neurosim.connectors_by_post.FixedInDegree`
take 53-bit uniforms (two such numbers), so choosing among even 10**8 neurons is unbiased
to 1e-7.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from neurosim.counter_rng import MASK32, lowbias32

#: 2**-32: a 32-bit hash plus one half times this is a uniform number in (0, 1)
UNIT32 = 1.0 / 4294967296.0


#: 2**-53: a 53-bit integer times this is a uniform number in [0, 1)
UNIT53 = 1.0 / 9007199254740992.0


@njit(cache=True)
def neuron_keys(key: int, j: int) -> tuple[int, int]:
    """The two stream keys of postsynaptic neuron ``j`` under projection key ``key``."""
    first = lowbias32(lowbias32(((j & MASK32) ^ 0x632BE5AB) & MASK32) ^ key)
    return first, lowbias32(first ^ 0x5BD1E995)


@njit(cache=True)
def _mix(x: int, key1: int, key2: int) -> int:
    return lowbias32(lowbias32(x ^ key1) ^ key2)


@njit(cache=True)
def uniform_at(key1: int, key2: int, k: int) -> float:
    """The ``k``-th uniform number in (0, 1) of a neuron's stream (its :func:`neuron_keys`)."""
    return (_mix(lowbias32(((k & MASK32) ^ 0x2545F491) & MASK32), key1, key2) + 0.5) * UNIT32


@njit(cache=True)
def uniform53_at(key1: int, key2: int, k: int) -> float:
    """The ``k``-th 53-bit uniform number in [0, 1) of a neuron's stream (another sequence
    than :func:`uniform_at`'s)."""
    a = _mix(lowbias32(((k & MASK32) ^ 0x7A3C9E11) & MASK32), key1, key2)
    b = _mix(lowbias32(((k & MASK32) ^ 0x1F83D9AB) & MASK32), key2, key1)
    return ((a >> 5) * 67108864.0 + (b >> 6)) * UNIT53


@njit(cache=True)
def _column_keys(key: int, cols: np.ndarray) -> tuple[int, np.ndarray]:
    """The :func:`neuron_keys` of every postsynaptic neuron from ``cols.min()`` to
    ``cols.max()`` (computed once per neuron, not per synapse; ``(count, 2)``), and that
    first neuron."""
    first = cols.min() if cols.size else 0
    last = cols.max() if cols.size else -1
    keys = np.empty((last - first + 1, 2), np.int64)
    for j in range(first, last + 1):
        keys[j - first, 0], keys[j - first, 1] = neuron_keys(key, j)
    return first, keys


@njit(cache=True)
def _pair_state(i: int, keys: np.ndarray, c: int) -> int:
    """The 32-bit state of synapse ``(i, j)``: the hash of its presynaptic neuron mixed
    with its postsynaptic neuron's keys (row ``c`` of ``keys``)."""
    return _mix(lowbias32(((i & MASK32) ^ 0x4F1BBCDD) & MASK32), keys[c, 0], keys[c, 1])


@njit(cache=True)
def pair_uniforms(key: int, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
    """``out[s]``: the uniform number in (0, 1) of synapse ``(rows[s], cols[s])``."""
    first, keys = _column_keys(key, cols)
    for s in range(rows.size):
        out[s] = (_pair_state(rows[s], keys, cols[s] - first) + 0.5) * UNIT32


@njit(cache=True)
def pair_normals(key: int, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> None:
    """``out[s]``: the standard normal number of synapse ``(rows[s], cols[s])`` (Box-Muller
    from two hashes of the synapse's state)."""
    first, keys = _column_keys(key, cols)
    for s in range(rows.size):
        state = _pair_state(rows[s], keys, cols[s] - first)
        u1 = (lowbias32(state ^ 0x68E31DA4) + 0.5) * UNIT32
        u2 = (lowbias32(state ^ 0x1B56C4E9) + 0.5) * UNIT32
        out[s] = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


@njit(cache=True)
def bernoulli_column(key1: int, key2: int, n_pre: int, p: float, out: np.ndarray) -> int:
    """The presynaptic neurons of one postsynaptic neuron (keys ``key1, key2``), each of
    ``n_pre`` present with probability ``0 < p < 1``, ascending, written to ``out`` (of
    ``n_pre``); returns how many. Geometric skips: the cost is proportional to the number
    drawn, not to ``n_pre``."""
    log_q = np.log1p(-p)
    position, k, count = -1, 0, 0
    while True:
        # (a skip past the end ends the draw; capped, so no float too large for an int)
        skip = min(np.ceil(np.log(uniform_at(key1, key2, k)) / log_q), float(n_pre + 1))
        position += int(skip)
        k += 1
        if position >= n_pre:
            return count
        out[count] = position
        count += 1


@njit(cache=True)
def bernoulli_columns(key: int, n_pre: int, lo: int, hi: int, p: float, skip_self: bool,
                      colptr: np.ndarray, scratch: np.ndarray, sink: np.ndarray) -> int:
    """Writes the presynaptic neurons of postsynaptic neurons ``lo, lo + 1, ..`` to ``sink``
    (neuron ``j``'s from ``colptr[j - lo]``, which must be set for ``lo``; sets the next)
    until all up to ``hi - 1`` are written or the next would not fit; returns the first
    neuron not written. ``skip_self`` leaves out ``i == j``."""
    for j in range(lo, hi):
        key1, key2 = neuron_keys(key, j)
        m = bernoulli_column(key1, key2, n_pre, p, scratch)
        at = colptr[j - lo]
        if at + m > sink.size:
            return j
        for a in range(m):
            if not (skip_self and scratch[a] == j):
                sink[at] = scratch[a]
                at += 1
        colptr[j - lo + 1] = at
    return hi


@njit(cache=True)
def indegree_columns(key: int, n_pre: int, lo: int, hi: int, k: int, skip_self: bool,
                     chosen: np.ndarray, sink: np.ndarray) -> None:
    """``k`` distinct presynaptic neurons for each postsynaptic neuron ``lo .. hi - 1``,
    ascending, in ``sink[(j - lo) * k ...]`` (Floyd's sampling without replacement;
    ``skip_self``: from the ``n_pre - 1`` neurons other than ``j``). ``chosen``: a
    False array of ``n_pre``, left False."""
    for j in range(lo, hi):
        key1, key2 = neuron_keys(key, j)
        m = n_pre - 1 if skip_self and j < n_pre else n_pre
        base = (j - lo) * k
        for c in range(k):
            t = m - k + c
            r = int(uniform53_at(key1, key2, c) * (t + 1))
            if r > t:  # (the top uniform level times t + 1 may round up to t + 1)
                r = t
            if chosen[r]:
                r = t
            chosen[r] = True
            sink[base + c] = r
        block = sink[base:base + k]
        block.sort()
        for c in range(k):
            chosen[block[c]] = False
            if m < n_pre and block[c] >= j:  # the numbers skip neuron j itself
                block[c] += 1


@njit(cache=True)
def column_to_row_major(n_pre: int, lo: int, colptr: np.ndarray, pre: np.ndarray,
                        rows: np.ndarray, cols: np.ndarray) -> None:
    """Synapses listed by postsynaptic neuron (``colptr`` over ``pre``, neurons from
    ``lo``) rewritten sorted by presynaptic, then postsynaptic neuron."""
    start = np.zeros(n_pre + 1, np.int64)
    for s in range(colptr[colptr.size - 1]):
        start[pre[s] + 1] += 1
    for i in range(n_pre):
        start[i + 1] += start[i]
        for s in range(start[i], start[i + 1]):  # (written in order: one stream, not n_pre)
            rows[s] = i
    for c in range(colptr.size - 1):
        for s in range(colptr[c], colptr[c + 1]):
            i = pre[s]
            cols[start[i]] = lo + c
            start[i] += 1
