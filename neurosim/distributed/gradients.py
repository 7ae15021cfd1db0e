"""Gradient training on several processes: what DistributedDataParallel does for a module,
for a network's parameters (``net.parameters()``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from neurosim.distributed.partition import Partition


def sum_gradients(parameters: Iterable[torch.nn.Parameter], partition: "Partition") -> None:
    """Replace each parameter's ``.grad`` by its sum over the processes (one ``all_reduce``
    of all gradients flattened, as DDP's buckets do; collective).

    With each process's loss normalised by the whole batch (all processes' samples), the
    sums are the gradient one process gets on the whole batch, up to the order in which
    the rows' terms are added; every process then takes the same optimiser step. A
    parameter without a gradient counts as zeros (every process must pass the same list).
    """
    params = list(parameters)
    if partition.size == 1 or not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    try:
        dist.all_reduce(flat, group=partition.group)
    except Exception as exc:  # noqa: BLE001 - gloo and NCCL raise several kinds
        raise RuntimeError(f"sum_gradients: process {partition.rank} of {partition.size} lost contact "
                           f"with the others (another process died or stopped with an error): "
                           f"{type(exc).__name__}: {exc}") from exc
    at = 0
    for p in params:
        n = p.numel()
        p.grad = flat[at:at + n].view_as(p).clone()
        at += n
