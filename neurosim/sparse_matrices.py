"""scipy.sparse matrices in and out: connectomes without a dense copy.

A sparse matrix's *stored* entries are synapses (an explicitly stored zero is a
synapse of weight 0; an entry not stored is no synapse), whatever its format
(CSR, CSC, COO, ...). Duplicate entries of a COO matrix add up, as scipy's own
conversions do. scipy is imported only when a sparse matrix is involved.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def is_sparse(value: Any) -> bool:
    """Whether ``value`` is a scipy.sparse matrix or array (without importing scipy)."""
    module = sys.modules.get("scipy.sparse")  # not imported: the value cannot be one
    return module is not None and module.issparse(value)


def canonical_csr(matrix: Any, what: str) -> Any:
    """A CSR copy of ``matrix`` with sorted, unique column indices per row (the
    order of neurosim's CSR storage) and finite float64 values."""
    if matrix.ndim != 2:
        raise ValueError(f"{what}: expected a 2-D matrix, got {matrix.ndim} dimensions")
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected numbers, got a sparse matrix of {matrix.dtype}")
    csr = matrix.tocsr(copy=True).astype(np.float64, copy=False)
    csr.sum_duplicates()  # sorts the indices of each row; keeps explicit zeros
    if not np.all(np.isfinite(csr.data)):
        raise ValueError(f"{what}: matrix contains NaN or inf")
    return csr


def csr_pairs(csr: Any) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the stored entries, row-major: the order of ``csr.data``."""
    rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    return rows, csr.indices.astype(np.int64)


def values_at(csr: Any, rows: np.ndarray, cols: np.ndarray, what: str) -> np.ndarray:
    """The stored values at (rows, cols); every pair must be a stored entry."""
    n_cols = csr.shape[1]
    stored_rows, stored_cols = csr_pairs(csr)
    stored = stored_rows * n_cols + stored_cols  # ascending: rows, then sorted columns
    wanted = rows.astype(np.int64) * n_cols + cols.astype(np.int64)
    pos = np.searchsorted(stored, wanted)
    found = pos < len(stored)
    found[found] = stored[pos[found]] == wanted[found]
    if not found.all():
        k = int(np.argmin(found))
        raise ValueError(f"{what}: the sparse weight matrix stores no entry for {int((~found).sum())} "
                         f"of the connector's {len(wanted)} synapses (first: pre {int(rows[k])}, post "
                         f"{int(cols[k])}); entries not stored are not synapses. Store them, or leave "
                         "out the connector to take the synapses from the matrix")
    return csr.data[pos]


def csr_array(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> Any:
    """A ``scipy.sparse.csr_array`` of copies of the given CSR parts."""
    import scipy.sparse

    return scipy.sparse.csr_array((np.array(data), np.array(indices), np.array(indptr)), shape=shape)
