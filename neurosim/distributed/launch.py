"""Joining the processes ``torchrun`` started (what each example does first)."""

from __future__ import annotations

import faulthandler
import os

import torch
import torch.distributed as dist

from neurosim.distributed.partition import Partition


def join_torchrun(device: str = "cpu") -> tuple[Partition | None, str]:
    """When this process was launched by ``torchrun`` with more than one process
    (``WORLD_SIZE`` > 1): take this process's GPU (``cuda:LOCAL_RANK``) for a CUDA
    ``device``, join the default process group (gloo on the CPU, NCCL on GPUs) and return
    this process's :class:`Partition` and its device; otherwise ``(None, device)``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None, device
    # a crash inside the collectives' C++ (gloo, NCCL) prints where Python was
    faulthandler.enable()
    if device != "cpu":  # one GPU per process: NCCL sums on the GPU
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    dist.init_process_group("gloo" if device == "cpu" else "nccl")
    return Partition.from_process_group(), device


def leave_torchrun(partition: Partition | None) -> None:
    """Leave the process group at the end of a run on several processes: wait until every
    process is done with it (a barrier), then destroy it, so that no process tears down
    its connections while another still uses them."""
    if partition is None or not dist.is_initialized():
        return
    if partition.size > 1:
        dist.barrier(group=partition.group)
    dist.destroy_process_group()
