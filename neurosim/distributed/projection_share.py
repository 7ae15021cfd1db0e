"""Drawing only this process's share of a projection onto a split population.

A projection whose connector draws by postsynaptic neuron
(:mod:`neurosim.connectors_by_post`), with one weight or a weight distribution and one
delay, is drawn share by share: each process draws the synapses onto its neurons and
nothing else. What a process needs of the whole projection comes from collectives over
the per-presynaptic-neuron synapse counts (one ``all_gather`` of ``n_pre`` integers per
process): the whole synapse count, the storage choice (CSR below 10% density, as one
process chooses), and each synapse's place in the whole projection's storage order (for
state files, which are written whole). The whole structure's fingerprint, which only
state files need, is computed when one is saved or loaded (:func:`whole_digest`:
process 0 hashes the whole structure streamed to it in blocks).

Every other projection onto a split population is drawn whole and cut
(:meth:`Projection.keep_columns`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

from neurosim.distributions import Normal, Uniform
from neurosim.projection import SPARSE_DENSITY, Projection
from neurosim.validation import is_real

if TYPE_CHECKING:
    from neurosim.distributed.partition import Partition
    from neurosim.population import Population

#: synapses (CSR) or rows (dense) process 0 hashes at a time: bounds its memory
DIGEST_BLOCK = 1 << 24


def draws_share(connector: Any, weight: Any, delay: Any) -> bool:
    """True when a projection with these specifications can be drawn share by share."""
    return (getattr(connector, "draws_by_post", False) and is_real(delay)
            and (isinstance(weight, (Uniform, Normal)) or is_real(weight)))


def _all_gather(partition: "Partition", local: np.ndarray) -> np.ndarray:
    """``local`` (int64, same shape in every process) of every process, stacked in rank order."""
    if partition.size == 1:
        return local[None]
    t = torch.as_tensor(local, dtype=torch.int64)
    out = [torch.empty_like(t) for _ in range(partition.size)]
    dist.all_gather(out, t, group=partition.group)
    return torch.stack(out).numpy()


def draw_projection_share(partition: "Partition", name: str, source: "Population", post: "Population",
                          same_population: bool, connector: Any, weight: Any, receptor: str,
                          delay: Any, sparse: bool | None, rng: np.random.Generator,
                          device: torch.device, dtype: torch.dtype, stop_gradient: bool) -> Projection:
    """The share of projection ``name`` onto split population ``post`` (its neurons
    ``post.offset ..``), drawn alone, with the whole projection's facts in ``whole``
    (collective: every process calls it for the projection, in the same order)."""
    proj = Projection(name, source, post, connector, weight, receptor, delay, sparse, rng, device,
                      dtype, False, stop_gradient, share=(post.offset, post.n_global),
                      same_population=same_population)
    d = int(delay)
    source.require_history(d + 1)  # (as the whole projection needs, though this share be empty)
    rows, cols = proj.synapses()
    counts = _all_gather(partition, np.bincount(rows, minlength=source.n).astype(np.int64))
    per_row = counts.sum(axis=0)
    nnz = int(per_row.sum())
    whole_sparse = (nnz / max(1, source.n * post.n_global) < SPARSE_DENSITY) if sparse is None \
        else bool(sparse)
    if whole_sparse != proj.sparse:  # (this share's density chose otherwise than the whole's)
        proj.restore(whole_sparse)
    row_start = np.concatenate([[0], np.cumsum(per_row)[:-1]])
    before = counts[:partition.rank].sum(axis=0)  # (lower ranks hold the lower columns)
    own_start = np.concatenate([[0], np.cumsum(counts[partition.rank])[:-1]])
    positions = row_start[rows] + before[rows] + (np.arange(rows.size) - own_start[rows])
    proj.whole = {"digest": None, "nnz": nnz, "positions": positions,  # type: ignore[assignment]
                  "shape": (source.n, post.n_global), "min_delay": d, "max_delay": d, "delays": [d],
                  "offset": post.offset}
    return proj


def _gather_to_first(partition: "Partition", obj: Any) -> list[Any] | None:
    if partition.size == 1:
        return [obj]
    out = [None] * partition.size if partition.rank == 0 else None
    dst = 0 if partition.group is None else dist.get_global_rank(partition.group, 0)
    dist.gather_object(obj, out, dst=dst, group=partition.group)
    return out


def whole_digest(partition: "Partition", proj: Projection) -> str:
    """The whole projection's :meth:`Projection.structure_digest`, for a share drawn by
    :func:`draw_projection_share` (collective; kept in ``proj.whole`` once computed)."""
    whole = proj.whole
    if whole["digest"] is not None:
        return whole["digest"]
    n_pre, n_post = whole["shape"]
    rows, cols = proj.synapses()
    cols = cols.astype(np.int64) + whole["offset"]
    h = hashlib.sha256(f"{n_pre} {n_post} {'csr' if proj.sparse else 'dense'}".encode())
    if proj.sparse:
        per_row = _all_gather(partition, np.bincount(rows, minlength=n_pre).astype(np.int64)).sum(axis=0)
        h.update(np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64).tobytes())
        positions = whole["positions"]
        for first in range(0, whole["nnz"], DIGEST_BLOCK):
            last = min(first + DIGEST_BLOCK, whole["nnz"])
            a, b = np.searchsorted(positions, [first, last])
            parts = _gather_to_first(partition, (positions[a:b], cols[a:b]))
            if parts is not None:
                block = np.empty(last - first, np.int32)
                for where, values in parts:
                    block[where - first] = values
                h.update(block.tobytes())
    elif whole["nnz"] < n_pre * n_post:  # (the dense mask, packed 8 pairs to a byte, row-major)
        step = max(8, DIGEST_BLOCK // max(1, n_post) // 8 * 8)  # rows: whole bytes per block
        for first in range(0, n_pre, step):
            last = min(first + step, n_pre)
            a, b = np.searchsorted(rows, [first, last])
            parts = _gather_to_first(partition, (rows[a:b], cols[a:b]))
            if parts is not None:
                mask = np.zeros((last - first, n_post), dtype=bool)
                for r, c in parts:
                    mask[r - first, c] = True
                h.update(np.packbits(mask).tobytes())
    digest = [h.hexdigest()[:32] if partition.rank == 0 else None]
    if partition.size > 1:
        src = 0 if partition.group is None else dist.get_global_rank(partition.group, 0)
        dist.broadcast_object_list(digest, src=src, group=partition.group)
    whole["digest"] = digest[0]
    return digest[0]
