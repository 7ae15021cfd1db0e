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

    def pairs(self, n_pre, n_post, rng, same_population):
        rows = np.repeat(np.arange(n_pre, dtype=np.int64), n_post)
        cols = np.tile(np.arange(n_post, dtype=np.int64), n_pre)
        if same_population and not self.allow_autapses:
            rows, cols = _drop_autapses(rows, cols)
        return rows, cols

    def expected_pairs(self, n_pre, n_post):
        return n_pre * n_post

    def describe(self):
        return {"connector": "AllToAll", "allow_autapses": self.allow_autapses}


class OneToOne(Connector):
    """Neuron i to neuron i; both populations must have the same size."""

    def pairs(self, n_pre, n_post, rng, same_population):
        if n_pre != n_post:
            raise ValueError(f"OneToOne needs equal sizes, got {n_pre} pre and {n_post} post")
        idx = np.arange(n_pre, dtype=np.int64)
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
