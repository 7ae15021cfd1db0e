"""Results gathered across processes: sums and per-sample values every process of a
data-parallel run needs whole, and objects gathered to process 0."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from neurosim.distributed.partition import Partition


def sum_values(values: Sequence[float], partition: "Partition | None",
               device: Any = "cpu") -> list[float]:
    """``values`` summed over the processes (collective; as they are in one process)."""
    if partition is None or partition.size == 1:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(t, group=partition.group)
    return t.tolist()


def gather_to_first(partition: "Partition", obj: Any) -> list[Any] | None:
    """``obj`` of every process, in rank order, in the group's process 0 (None in the
    others; collective)."""
    if partition.size == 1:
        return [obj]
    out = [None] * partition.size if partition.rank == 0 else None
    dst = 0 if partition.group is None else dist.get_global_rank(partition.group, 0)
    dist.gather_object(obj, out, dst=dst, group=partition.group)
    return out


def by_sample(parts: list[tuple[np.ndarray, np.ndarray]], n: int,
              partition: "Partition | None") -> np.ndarray:
    """Per-sample values of ``n`` samples from (sample indices, values) pairs, every
    process's gathered when ``partition`` holds several (collective)."""
    if partition is not None and partition.size > 1:
        gathered: list[Any] = [None] * partition.size
        dist.all_gather_object(gathered, parts, group=partition.group)
        parts = [pair for part in gathered for pair in part]
    first = next((values for _, values in parts if len(values)), None)
    out = np.zeros((n,) + (() if first is None else first.shape[1:]),
                   dtype=np.int64 if first is None else first.dtype)
    for where, values in parts:
        out[where] = values
    return out
