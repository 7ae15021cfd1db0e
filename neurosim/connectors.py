"""Connectivity patterns: which (pre, post) pairs a projection connects.

A connector returns the connected pairs as two index arrays sorted by
presynaptic then postsynaptic index (the order of CSR storage). Random
connectors draw from the projection's own stream, so connectivity depends only
on the seed and the projection's name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from neurosim.sparse_matrices import canonical_csr, csr_pairs, is_sparse
from neurosim.validation import is_real, numeric_array, show


class Connector:
    """Base class: ``pairs(n_pre, n_post, rng, same_population)`` -> (rows, cols)."""

    #: True for connectors that draw each postsynaptic neuron's synapses from its own
    #: counter-based stream (:mod:`neurosim.connectors_by_post`): a process of a
    #: partitioned run then draws only the synapses onto its share (:meth:`pairs_onto`)
    draws_by_post: bool = False
    #: True for connectors whose pairs take no random numbers (``AllToAll``, ``OneToOne``):
    #: a process of a partitioned run computes only those onto its share (:meth:`pairs_onto`)
    fixed_pairs: bool = False

    def pairs(self, n_pre: int, n_post: int, rng: np.random.Generator,
              same_population: bool) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def expected_pairs(self, n_pre: int, n_post: int) -> int | None:
        """About how many pairs :meth:`pairs` will return, before drawing them (for the
        memory check); None if not known in advance."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"connector": type(self).__name__}


def _flag(owner: str, value: bool) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: allow_autapses must be True or False, got {show(value)}")
    return bool(value)


def _drop_autapses(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = rows != cols
    return rows[keep], cols[keep]


class AllToAll(Connector):
    """Every presynaptic neuron to every postsynaptic neuron."""

    def __init__(self, allow_autapses: bool = True) -> None:
        self.allow_autapses = _flag("AllToAll", allow_autapses)

    fixed_pairs = True

    def pairs(self, n_pre, n_post, rng, same_population):
        return self.pairs_onto(n_pre, n_post, 0, n_post, None, same_population)

    def pairs_onto(self, n_pre: int, n_post: int, lo: int, hi: int, key: Any,
                   same_population: bool) -> tuple[np.ndarray, np.ndarray]:
        """The pairs onto postsynaptic neurons ``lo .. hi - 1`` (global indices; ``key``
        unused: no random numbers)."""
        rows = np.repeat(np.arange(n_pre, dtype=np.int64), hi - lo)
        cols = np.tile(np.arange(lo, hi, dtype=np.int64), n_pre)
        if same_population and not self.allow_autapses:
            rows, cols = _drop_autapses(rows, cols)
        return rows, cols

    def expected_pairs(self, n_pre, n_post):
        return n_pre * n_post

    def describe(self):
        return {"connector": "AllToAll", "allow_autapses": self.allow_autapses}


class OneToOne(Connector):
    """Neuron i to neuron i; both populations must have the same size."""

    fixed_pairs = True

    def pairs(self, n_pre, n_post, rng, same_population):
        return self.pairs_onto(n_pre, n_post, 0, n_post, None, same_population)

    def pairs_onto(self, n_pre: int, n_post: int, lo: int, hi: int, key: Any,
                   same_population: bool) -> tuple[np.ndarray, np.ndarray]:
        """The pairs onto postsynaptic neurons ``lo .. hi - 1`` (see AllToAll.pairs_onto)."""
        if n_pre != n_post:
            raise ValueError(f"OneToOne needs equal sizes, got {n_pre} pre and {n_post} post")
        idx = np.arange(lo, hi, dtype=np.int64)
        return idx, idx.copy()

    def expected_pairs(self, n_pre, n_post):
        return min(n_pre, n_post)


class FixedProbability(Connector):
    """Each pair connected independently with probability ``p`` (seeded).

    Drawn by geometric skipping over the flattened pair index, so the cost and
    memory are proportional to the number of synapses, not to n_pre * n_post.
    """

    def __init__(self, p: float, allow_autapses: bool = True) -> None:
        if not is_real(p):
            raise TypeError(f"FixedProbability: p must be a number in [0, 1], got {show(p)}")
        if not (0.0 <= p <= 1.0):
            raise ValueError(f"FixedProbability: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.allow_autapses = _flag("FixedProbability", allow_autapses)

    def pairs(self, n_pre, n_post, rng, same_population):
        if self.p == 0.0 or n_pre * n_post == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty.copy()
        # blocks of presynaptic rows keep the temporary arrays small whatever the size
        block = max(1, int(4_000_000 / max(1.0, n_post * self.p * 1.2)))
        rows_out, cols_out = [], []
        for first in range(0, n_pre, block):
            count = min(block, n_pre - first)
            flat = self._draw(count * n_post, rng)
            rows_out.append((flat // n_post + first).astype(np.int32))
            cols_out.append((flat % n_post).astype(np.int32))
        rows, cols = np.concatenate(rows_out), np.concatenate(cols_out)
        if same_population and not self.allow_autapses:
            rows, cols = _drop_autapses(rows, cols)
        return rows, cols

    def _draw(self, total: int, rng: np.random.Generator) -> np.ndarray:
        """Sorted flat indices in [0, total), each present with probability p."""
        chunks, position = [], -1
        expected = total * self.p
        while position < total:
            size = int(expected + 6.0 * np.sqrt(expected) + 64)
            flat = position + np.cumsum(rng.geometric(self.p, size=size))
            chunks.append(flat[flat < total])
            position = int(flat[-1])
        return np.concatenate(chunks)

    def expected_pairs(self, n_pre, n_post):
        return int(self.p * n_pre * n_post)

    def describe(self):
        return {"connector": "FixedProbability", "p": self.p, "allow_autapses": self.allow_autapses}


class FromMatrix(Connector):
    """Connections and weights from an explicit ``(n_pre, n_post)`` matrix.

    A dense matrix (numpy array or tensor): its nonzero entries are synapses. A
    ``scipy.sparse`` matrix or array of any format (CSR, CSC, COO, ...), used
    without a dense copy: its *stored* entries are synapses, so an explicitly
    stored zero is a synapse of weight 0 and an entry not stored is none.
    Either way the values are the weights (the projection's ``weight``
    argument must then be left out). A projection given a sparse matrix as
    ``weight`` and no connector uses ``FromMatrix`` on it.
    """

    def __init__(self, matrix: np.ndarray | torch.Tensor | Any) -> None:
        self._csr: Any = None
        self._dense: np.ndarray | None = None
        if is_sparse(matrix):
            self._csr = canonical_csr(matrix, "FromMatrix")
            self.shape = tuple(self._csr.shape)
            return
        dense = numeric_array(matrix, "FromMatrix: matrix must be an array of numbers (dense or "
                                      "scipy.sparse)").astype(np.float64, copy=False)
        if dense.ndim != 2:
            raise ValueError(f"FromMatrix: expected a 2-D matrix, got shape {dense.shape}")
        if not np.all(np.isfinite(dense)):
            raise ValueError("FromMatrix: matrix contains NaN or inf")
        self._dense = dense
        self.shape = dense.shape

    @property
    def matrix(self) -> Any:
        """The matrix as given: a dense float64 array, or a canonical scipy CSR copy."""
        return self._dense if self._csr is None else self._csr

    def pairs(self, n_pre, n_post, rng, same_population):
        if self.shape != (n_pre, n_post):
            raise ValueError(f"FromMatrix: matrix has shape {self.shape}, but the projection "
                             f"needs ({n_pre}, {n_post}) (n_pre, n_post)")
        if self._csr is not None:
            return csr_pairs(self._csr)
        rows, cols = np.nonzero(self._dense)
        return rows.astype(np.int64), cols.astype(np.int64)

    def values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The weights of the pairs that :meth:`pairs` returned, in that order."""
        if self._csr is not None:
            return self._csr.data  # pairs() lists the stored entries in data's order
        return self._dense[rows, cols]

    def expected_pairs(self, n_pre, n_post):
        return int(self._csr.nnz) if self._csr is not None else None  # dense: held already

    def describe(self):
        return {"connector": "FromMatrix", "shape": list(self.shape),
                "matrix": "scipy.sparse" if self._csr is not None else "dense"}


def _indices(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else values)
    if array.ndim != 1:
        raise ValueError(f"FromPairs: {name} must be a 1-D list of neuron indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not (np.issubdtype(array.dtype, np.floating) and np.all(array == np.round(array))):
            raise TypeError(f"FromPairs: {name} must hold integer neuron indices, got dtype {array.dtype}")
    return array.astype(np.int64)


class FromPairs(Connector):
    """Synapses from explicit ``(pre[k], post[k])`` index lists, without a dense matrix.

    The lists may come in any order; they are stored sorted (presynaptic, then
    postsynaptic index), and a per-synapse ``weight`` or ``delay`` array given to the
    projection follows the order of the lists. A pair listed twice is refused, as is an index outside
    the populations (checked when the projection is built). With ``weights`` (one
    per pair, in the order given) the connector gives the weights, and the
    projection's ``weight`` argument must be left out.

    Args:
        pre, post: presynaptic and postsynaptic neuron indices, equal lengths.
        weights: optional weight of each pair.
    """

    def __init__(self, pre: Any, post: Any, weights: Any = None) -> None:
        self.pre, self.post = _indices(pre, "pre"), _indices(post, "post")
        if self.pre.size != self.post.size:
            raise ValueError(f"FromPairs: pre and post must have equal lengths, got {self.pre.size} "
                             f"and {self.post.size}")
        self.weights = None
        if weights is not None:
            w = numeric_array(weights, "FromPairs: weights must be numbers").astype(np.float64, copy=False)
            if w.shape != self.pre.shape:
                raise ValueError(f"FromPairs: weights must have one value per pair ({self.pre.size}), "
                                 f"got shape {w.shape}")
            if not np.all(np.isfinite(w)):
                raise ValueError("FromPairs: weights contain NaN or inf")
            self.weights = w

    @property
    def gives_weights(self) -> bool:
        return self.weights is not None

    def pairs(self, n_pre, n_post, rng, same_population):
        for name, idx, n in (("pre", self.pre, n_pre), ("post", self.post, n_post)):
            bad = np.flatnonzero((idx < 0) | (idx >= n))
            if bad.size:
                raise ValueError(f"FromPairs: {name}[{bad[0]}] = {idx[bad[0]]} is out of range for a "
                                 f"{name}synaptic population of {n} neurons (valid: 0..{n - 1}); "
                                 f"{bad.size} such index(es)")
        key = self.pre * n_post + self.post
        self._order = np.argsort(key, kind="stable")
        sorted_key = key[self._order]
        twice = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
        if twice.size:
            k = sorted_key[twice[0]]
            raise ValueError(f"FromPairs: the pair ({k // n_post}, {k % n_post}) is listed more than "
                             f"once ({twice.size} repeated pair(s)); a projection has one synapse per pair")
        return self.pre[self._order], self.post[self._order]

    @property
    def given_order(self) -> np.ndarray:
        """For each stored (sorted) synapse, its position in the lists as given: a
        projection's per-synapse ``weight`` or ``delay`` array follows the given order."""
        return self._order

    def values(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The weights in the order :meth:`pairs` returned the pairs."""
        return self.weights[self._order]

    def expected_pairs(self, n_pre, n_post):
        return int(self.pre.size)

    def describe(self):
        return {"connector": "FromPairs", "pairs": int(self.pre.size), "weights": self.gives_weights}


class WattsStrogatz(Connector):
    r"""A small world (Watts & Strogatz, Nature 393:440, 1998): a ring lattice, rewired.

    The neurons of both populations sit on one ring (presynaptic neuron ``i`` at
    position ``(i + 1/2) / n_pre``, postsynaptic ``j`` at ``(j + 1/2) / n_post``).
    Each presynaptic neuron first connects to the ``k`` postsynaptic neurons
    nearest to it on the ring (ties: the lower index; itself excluded within one
    population unless ``allow_autapses``), so within one population an even ``k``
    gives ``k/2`` neighbours on each side, as in the original. Then each of these
    edges is rewired, with probability ``p``, to a postsynaptic neuron drawn
    uniformly among those the presynaptic neuron does not reach at that moment
    (itself excluded; the target the edge left may be drawn again). Every
    presynaptic neuron keeps exactly ``k`` synapses (the out-degree); :attr:`rewired`
    counts the edges redrawn (about ``p`` of them), of which a fraction of about
    ``k / n_post`` lands back in the lattice. ``p = 0`` keeps the lattice, ``p = 1``
    gives a random graph of out-degree ``k``.

    Between populations of different sizes this maps a layer onto a ring of targets
    (e.g. hidden neurons to nearby readout neurons, with long-range shortcuts).

    Args:
        k: synapses per presynaptic neuron (``1 <= k``, and fewer than the possible targets).
        p: rewiring probability in ``[0, 1]``.
        allow_autapses: within one population, whether a neuron may reach itself.
    """

    def __init__(self, k: int, p: float, allow_autapses: bool = False) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"WattsStrogatz: k must be a positive integer (synapses per neuron), got {show(k)}")
        if not is_real(p) or not (0.0 <= p <= 1.0):
            raise ValueError(f"WattsStrogatz: p must be a number in [0, 1], got {show(p)}")
        self.k, self.p = int(k), float(p)
        self.allow_autapses = _flag("WattsStrogatz", allow_autapses)
        #: how many edges the last draw rewired (long-range edges)
        self.rewired: int | None = None

    def lattice(self, n_pre: int, n_post: int, same_population: bool) -> np.ndarray:
        """``(n_pre, k)``: each presynaptic neuron's ``k`` nearest targets on the ring."""
        no_self = same_population and not self.allow_autapses
        if self.k > n_post - int(no_self):
            raise ValueError(f"WattsStrogatz: k={self.k} but a presynaptic neuron can reach only "
                             f"{n_post - int(no_self)} postsynaptic neurons")
        centre = (np.arange(n_pre) + 0.5) * (n_post / n_pre) - 0.5  # in postsynaptic index units
        span = self.k + 1  # targets within this many places on each side hold the k nearest
        if 2 * span + 1 >= n_post:  # a small ring: every target is a candidate, once
            cand = np.broadcast_to(np.arange(n_post, dtype=np.int64), (n_pre, n_post))
        else:
            offsets = np.arange(-span, span + 1)
            cand = (np.floor(centre).astype(np.int64)[:, None] + offsets[None, :]) % n_post
        dist = np.abs(((cand - centre[:, None]) + n_post / 2) % n_post - n_post / 2)
        if no_self:
            dist = np.where(cand == np.arange(n_pre)[:, None], np.inf, dist)
        order = np.lexsort((cand, dist), axis=1)[:, :self.k]  # nearest first, ties: lower index
        return np.take_along_axis(cand, order, 1)

    def pairs(self, n_pre, n_post, rng, same_population):
        near = self.lattice(n_pre, n_post, same_population)
        no_self = same_population and not self.allow_autapses
        targets = near.copy()
        rewire = rng.random(near.shape) < self.p
        for i in np.flatnonzero(rewire.any(axis=1)):  # rows with shortcuts (about p*k each)
            reached = set(near[i].tolist())
            if no_self:
                reached.add(int(i))
            for slot in np.flatnonzero(rewire[i]):
                # the edge leaves its target, then lands uniformly on one the neuron does
                # not reach now (the lattice target it left included, as in the original);
                # rejection sampling, or an explicit list when few targets are free
                reached.discard(int(targets[i, slot]))
                free = n_post - len(reached)
                if free * 4 >= n_post:
                    while True:
                        j = int(rng.integers(n_post))
                        if j not in reached:
                            break
                else:
                    options = np.setdiff1d(np.arange(n_post), np.fromiter(reached, np.int64))
                    j = int(options[rng.integers(options.size)])
                reached.add(j)
                targets[i, slot] = j
        self.rewired = int(rewire.sum())
        rows = np.repeat(np.arange(n_pre, dtype=np.int64), self.k)
        cols = np.sort(targets, axis=1).reshape(-1).astype(np.int64)
        return rows, cols

    def expected_pairs(self, n_pre, n_post):
        return n_pre * self.k

    def describe(self):
        return {"connector": "WattsStrogatz", "k": self.k, "p": self.p,
                "allow_autapses": self.allow_autapses}
