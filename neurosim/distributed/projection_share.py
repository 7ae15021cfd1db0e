"""Drawing only this process's share of a projection onto a split population.

A projection whose connector draws by postsynaptic neuron
(:mod:`neurosim.connectors_by_post`), with one weight or a weight distribution, or an
``AllToAll`` or ``OneToOne`` projection (no random numbers) with one weight, and one
delay, is drawn share by share: each process draws the synapses onto its neurons and
nothing else. What a process needs of the whole projection comes from collectives over
the per-presynaptic-neuron synapse counts (one ``all_gather`` of ``n_pre`` integers per
process; and one ``all_gather_object`` of whether each process could draw its share,
so that a check failing in one share raises in all): the whole synapse count, the
storage choice (CSR below 10% density, as one
process chooses), and, when a state file is written or read (they hold the whole
projection), each synapse's place in the whole projection's storage order
(:func:`whole_positions`). The whole structure's fingerprint, which only
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
from numba import njit

from neurosim.distributed.collect import gather_to_first
from neurosim.distributions import Normal, Uniform
from neurosim.projection import SPARSE_DENSITY, Projection
from neurosim.validation import is_real

if TYPE_CHECKING:
    from neurosim.distributed.partition import Partition
    from neurosim.population import Population

#: synapses (CSR) or rows (dense) process 0 hashes at a time: bounds its memory
DIGEST_BLOCK = 1 << 24


def draws_share(connector: Any, weight: Any, delay: Any) -> bool:
    """True when a projection with these specifications can be drawn share by share: a
    connector drawn by postsynaptic neuron with one weight or a weight distribution, or
    ``AllToAll``/``OneToOne`` (no random numbers) with one weight; and one delay."""
    if not is_real(delay):
        return False
    if getattr(connector, "draws_by_post", False):
        return isinstance(weight, (Uniform, Normal)) or is_real(weight)
    return getattr(connector, "fixed_pairs", False) and is_real(weight)


def _all_gather(partition: "Partition", local: np.ndarray, device: torch.device) -> np.ndarray:
    """``local`` (int64, same shape in every process) of every process, stacked in rank
    order (sent from ``device``, the network's: NCCL takes GPU tensors only)."""
    if partition.size == 1:
        return local[None]
    t = torch.as_tensor(local, dtype=torch.int64, device=device)
    out = [torch.empty_like(t) for _ in range(partition.size)]
    dist.all_gather(out, t, group=partition.group)
    return torch.stack(out).cpu().numpy()


def draw_projection_share(partition: "Partition", name: str, source: "Population", post: "Population",
                          same_population: bool, connector: Any, weight: Any, receptor: str,
                          delay: Any, sparse: bool | None, rng: np.random.Generator,
                          device: torch.device, dtype: torch.dtype, stop_gradient: bool) -> Projection:
    """The share of projection ``name`` onto split population ``post`` (its neurons
    ``post.offset ..``), drawn alone, with the whole projection's facts in ``whole``
    (collective: every process calls it for the projection, in the same order)."""
    failure: Exception | None = None
    try:
        proj = Projection(name, source, post, connector, weight, receptor, delay, sparse, rng, device,
                          dtype, False, stop_gradient, share=(post.offset, post.n_global),
                          same_population=same_population)
    except Exception as exc:  # (refused on one share's synapses: refused in every process)
        failure = exc
    _refuse_together(partition, name, failure)
    d = int(delay)
    own = (np.diff(proj.indptr.cpu().numpy()) if proj.sparse else
           np.bincount(proj.synapses()[0], minlength=source.n)).astype(np.int64)
    counts = _all_gather(partition, own, device)
    nnz = int(counts.sum())
    whole_sparse = (nnz / max(1, source.n * post.n_global) < SPARSE_DENSITY) if sparse is None \
        else bool(sparse)
    if whole_sparse != proj.sparse:  # (this share's density chose otherwise than the whole's)
        proj._restore(whole_sparse)
    # (each synapse's place in the whole storage order is computed from the counts when a
    # state file needs it, whole_positions: not kept, it would be as large as the weights)
    if nnz == 0:
        d = 1  # (as one process reports a projection without synapses)
    source.require_history(d + 1)  # (as the whole projection needs, though this share be empty)
    proj.whole = {"digest": None, "nnz": nnz, "row_counts": counts,  # type: ignore[assignment]
                  "rank": partition.rank, "shape": (source.n, post.n_global), "min_delay": d,
                  "max_delay": d, "delays": [d], "offset": post.offset}
    return proj


def _refuse_together(partition: "Partition", name: str, failure: Exception | None) -> None:
    """Raise in every process when building the projection failed in any: a check that
    reads the synapses (a weight of the wrong sign, NaN) may fail in one share only, and
    the others must not go on to wait in a collective."""
    failures = [None if failure is None else f"{type(failure).__name__}: {failure}"]
    if partition.size > 1:
        failures = [None] * partition.size
        dist.all_gather_object(failures, None if failure is None else
                               f"{type(failure).__name__}: {failure}", group=partition.group)
    if failure is not None:
        raise failure
    rank, message = next(((r, m) for r, m in enumerate(failures) if m is not None), (None, None))
    if message is not None:
        raise ValueError(f"projection '{name}': process {rank} could not draw its share: {message}")


@njit(cache=True)
def _places(own: np.ndarray, base: np.ndarray, out: np.ndarray) -> None:
    s = 0
    for i in range(own.size):
        for k in range(own[i]):
            out[s] = base[i] + k
            s += 1


def whole_positions(proj: Projection) -> np.ndarray:
    """Each synapse's place among the whole projection's synapses in storage order (sorted
    by presynaptic, then postsynaptic neuron), for a projection onto a split population."""
    whole = proj.whole
    if "positions" in whole:  # (drawn whole and cut: kept when it was cut)
        return whole["positions"]
    counts, rank = whole["row_counts"], whole["rank"]
    per_row = counts.sum(axis=0)
    # row i's synapses start at the whole row's start plus those of the lower ranks, which
    # hold the lower columns
    base = np.concatenate([[0], np.cumsum(per_row)[:-1]]) + counts[:rank].sum(axis=0)
    out = np.empty(int(counts[rank].sum()), np.int64)
    _places(counts[rank], base.astype(np.int64), out)
    return out


def whole_digest(partition: "Partition", proj: Projection) -> str:
    """The whole projection's :meth:`Projection.structure_digest`, for a share drawn by
    :func:`draw_projection_share` (collective; kept in ``proj.whole`` once computed)."""
    whole = proj.whole
    if whole["digest"] is not None:
        return whole["digest"]
    n_pre, n_post = whole["shape"]
    offset = whole["offset"]
    h = hashlib.sha256(f"{n_pre} {n_post} {'csr' if proj.sparse else 'dense'}".encode())
    if proj.sparse:
        per_row = whole["row_counts"].sum(axis=0)  # (kept from the build: no collective)
        h.update(np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64).tobytes())
        positions = whole_positions(proj)
        indices = proj.indices.cpu().numpy()
        for first in range(0, whole["nnz"], DIGEST_BLOCK):
            last = min(first + DIGEST_BLOCK, whole["nnz"])
            a, b = np.searchsorted(positions, [first, last])
            parts = gather_to_first(partition, (positions[a:b], indices[a:b] + offset))
            if parts is not None:
                block = np.empty(last - first, np.int32)
                for where, values in parts:
                    block[where - first] = values
                h.update(block.tobytes())
    elif whole["nnz"] < n_pre * n_post:  # (the dense mask, packed 8 pairs to a byte, row-major)
        rows, cols = proj.synapses()
        cols = cols + offset
        step = max(8, DIGEST_BLOCK // max(1, n_post) // 8 * 8)  # rows: whole bytes per block
        for first in range(0, n_pre, step):
            last = min(first + step, n_pre)
            a, b = np.searchsorted(rows, [first, last])
            parts = gather_to_first(partition, (rows[a:b], cols[a:b]))
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
