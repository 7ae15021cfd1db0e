"""Random connectors drawn by postsynaptic neuron, so that any split draws the same synapses.

:class:`~neurosim.connectors.FixedProbability` draws a projection's pairs in one
sequence: to know the synapses onto one neuron, a process must draw them all. The
connectors here draw each postsynaptic neuron's presynaptic neurons from that neuron's
own counter-based stream (:mod:`neurosim.synapse_random`), as NEST's
``pairwise_bernoulli`` and ``fixed_indegree`` draw on the process that owns the target.
A process of a partitioned run (``Network(partition=...)``) then draws only the synapses
onto its share of the postsynaptic population, with their weights, and gets exactly the
synapses and weights one process draws: the time and memory of building a projection
divide by the number of processes. In one process they are ordinary connectors (their
numbers differ from ``FixedProbability``'s for the same seed).

Weights given as a distribution (``Uniform``, ``Normal``) are drawn per synapse from the
same kind of stream (see :func:`draw_weights`).
"""

from __future__ import annotations

import numpy as np

from neurosim import synapse_random
from neurosim.connectors import Connector, _flag
from neurosim.distributions import Normal, Uniform
from neurosim.validation import is_real, show


def stream_keys(rng: np.random.Generator) -> tuple[int, int]:
    """The keys of a projection's synapse stream and weight stream, drawn first from its
    numpy stream (the same in every process of a run)."""
    keys = rng.integers(0, 2**32, size=2, dtype=np.int64)
    return int(keys[0]), int(keys[1])


class ByPostConnector(Connector):
    """A connector drawn by postsynaptic neuron: :meth:`pairs_onto` gives the synapses
    onto neurons ``lo .. hi - 1`` alone; :meth:`pairs` is its whole range."""

    draws_by_post = True

    def pairs(self, n_pre, n_post, rng, same_population):
        return self.pairs_onto(n_pre, n_post, 0, n_post, stream_keys(rng)[0], same_population)

    def pairs_onto(self, n_pre: int, n_post: int, lo: int, hi: int, key: int,
                   same_population: bool) -> tuple[np.ndarray, np.ndarray]:
        """The synapses onto postsynaptic neurons ``lo .. hi - 1`` of ``n_post`` (rows and
        global columns, int32, sorted by presynaptic, then postsynaptic neuron), drawn from
        stream ``key``: the same as those of :meth:`pairs` onto these neurons."""
        if not 0 <= lo <= hi <= n_post:
            raise ValueError(f"{type(self).__name__}: need 0 <= lo <= hi <= n_post, got "
                             f"{lo}, {hi}, {n_post}")
        skip_self = bool(same_population) and not self.allow_autapses
        self._check(n_pre, n_post, skip_self)  # (on the whole range: every process alike)
        colptr, pre = self._columns(n_pre, lo, hi, int(key), skip_self)
        rows = np.empty(pre.size, np.int32)
        cols = np.empty(pre.size, np.int32)
        synapse_random.column_to_row_major(n_pre, lo, colptr, pre, rows, cols)
        return rows, cols

    def _check(self, n_pre: int, n_post: int, skip_self: bool) -> None:
        """Refuse a projection this connector cannot draw."""

    def _columns(self, n_pre: int, lo: int, hi: int, key: int,
                 skip_self: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(colptr, pre)``: the presynaptic neurons of each postsynaptic neuron, ascending."""
        raise NotImplementedError


class PairwiseBernoulli(ByPostConnector):
    """Each pair connected independently with probability ``p``, drawn by postsynaptic
    neuron (NEST's ``pairwise_bernoulli``): the distribution of
    :class:`~neurosim.connectors.FixedProbability`, and a partitioned run draws only its
    share (see :mod:`neurosim.connectors_by_post`).

    Each neuron's presynaptic neurons are drawn by geometric skips (the cost is
    proportional to the number of synapses). ``allow_autapses=False`` leaves out
    ``i -> i`` in a projection from a population onto itself.
    """

    def __init__(self, p: float, allow_autapses: bool = True) -> None:
        if not is_real(p):
            raise TypeError(f"PairwiseBernoulli: p must be a number in [0, 1], got {show(p)}")
        if not (0.0 <= p <= 1.0):
            raise ValueError(f"PairwiseBernoulli: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.allow_autapses = _flag("PairwiseBernoulli", allow_autapses)

    def _columns(self, n_pre, lo, hi, key, skip_self):
        width = hi - lo
        if self.p == 0.0 or n_pre == 0 or width == 0:
            return np.zeros(width + 1, np.int64), np.zeros(0, np.int32)
        if self.p == 1.0:
            pre = np.tile(np.arange(n_pre, dtype=np.int32), width)
            counts = np.full(width, n_pre, np.int64)
            if skip_self:
                keep = pre != np.repeat(np.arange(lo, hi, dtype=np.int32), n_pre)
                pre = pre[keep]
                counts -= (np.arange(lo, hi) < n_pre)
            return np.concatenate([[0], np.cumsum(counts)]), pre
        colptr = np.zeros(width + 1, np.int64)
        scratch = np.empty(n_pre, np.int32)
        expected = n_pre * width * self.p
        pre = np.empty(int(expected + 6.0 * np.sqrt(expected) + 64), np.int32)
        j = lo
        while True:  # one pass; the array grows in the (rare) case the guess was short
            j = synapse_random.bernoulli_columns(key, n_pre, j, hi, self.p, skip_self,
                                                 colptr[j - lo:], scratch, pre)
            if j == hi:
                return colptr, pre[:colptr[-1]]
            pre = np.concatenate([pre, np.empty(pre.size // 2 + n_pre, np.int32)])

    def expected_pairs(self, n_pre, n_post):
        return int(self.p * n_pre * n_post)

    def describe(self):
        return {"connector": "PairwiseBernoulli", "p": self.p, "allow_autapses": self.allow_autapses}


class FixedInDegree(ByPostConnector):
    """Each postsynaptic neuron gets exactly ``k`` distinct presynaptic neurons, chosen
    uniformly at random (NEST's ``fixed_indegree`` without multapses; as in Brunel 2000),
    drawn by postsynaptic neuron: a partitioned run draws only its share (see
    :mod:`neurosim.connectors_by_post`). ``allow_autapses=False`` chooses, in a
    projection from a population onto itself, among the other ``n - 1`` neurons.
    """

    def __init__(self, k: int, allow_autapses: bool = True) -> None:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"FixedInDegree: k must be a whole number >= 0, got {show(k)}")
        if k < 0:
            raise ValueError(f"FixedInDegree: k must be >= 0, got {k}")
        self.k = int(k)
        self.allow_autapses = _flag("FixedInDegree", allow_autapses)

    def _check(self, n_pre, n_post, skip_self):
        fewest = n_pre - 1 if skip_self and n_post > 0 else n_pre
        if self.k > fewest:
            raise ValueError(f"FixedInDegree: k={self.k} distinct presynaptic neurons, but there are "
                             f"{fewest}{' other than the neuron itself' if fewest < n_pre else ''}")

    def _columns(self, n_pre, lo, hi, key, skip_self):
        width = hi - lo
        pre = np.empty(width * self.k, np.int32)
        if pre.size:
            synapse_random.indegree_columns(key, n_pre, lo, hi, self.k, skip_self,
                                            np.zeros(n_pre, np.bool_), pre)
        return np.arange(width + 1, dtype=np.int64) * self.k, pre

    def expected_pairs(self, n_pre, n_post):
        return self.k * n_post

    def describe(self):
        return {"connector": "FixedInDegree", "k": self.k, "allow_autapses": self.allow_autapses}


def draw_weights(spec: Uniform | Normal, key: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The weights of synapses ``(rows[s], cols[s])`` (global indices) drawn from ``spec``,
    each a function of the weight stream ``key`` and the synapse alone (float64)."""
    rows, cols = np.ascontiguousarray(rows), np.ascontiguousarray(cols)
    out = np.empty(rows.size, np.float64)
    if isinstance(spec, Uniform):
        synapse_random.pair_uniforms(key, rows, cols, out)
        out *= spec.high - spec.low  # (in place: no temporary the size of the weights)
        out += spec.low
        return out
    if isinstance(spec, Normal):
        synapse_random.pair_normals(key, rows, cols, out)
        out *= spec.std
        out += spec.mean
        return out
    raise TypeError(f"draw_weights: expected Uniform or Normal, got {type(spec).__name__}")

