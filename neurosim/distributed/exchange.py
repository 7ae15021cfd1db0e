"""The spike exchange of a partitioned run: one ``all_gather`` per slice of steps."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from neurosim.distributed.partition import Partition
    from neurosim.population import Population

#: bit i of a packed byte holds neuron 8 * byte + i (most significant bit first)
_SHIFTS = torch.arange(7, -1, -1, dtype=torch.uint8)


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """``(..., n)`` bool -> ``(..., ceil(n / 8))`` uint8, eight neurons per byte."""
    n = bits.shape[-1]
    padded = torch.nn.functional.pad(bits.to(torch.uint8), (0, (-n) % 8))
    grouped = padded.reshape(*bits.shape[:-1], -1, 8)
    return (grouped << _SHIFTS.to(bits.device)).sum(-1, dtype=torch.uint8)


def unpack_bits(packed: torch.Tensor, n: int) -> torch.Tensor:
    """The inverse of :func:`pack_bits`: ``(..., bytes)`` uint8 -> ``(..., n)`` bool."""
    bits = (packed.unsqueeze(-1) >> _SHIFTS.to(packed.device)) & 1
    return bits.reshape(*packed.shape[:-1], -1)[..., :n].bool()


class SpikeExchange:
    """Copies every process's spikes of each split population into every process's
    mirror of it (the whole population's spike ring that projections read).

    ``pairs``: (this process's share, the mirror) per split population. Called after
    every slice of ``k`` steps with ``k`` no longer than the smallest delay of a
    projection reading a mirror, so no spike is read before it has arrived. Each
    process sends, bit-packed, its ``k`` steps of spikes of every split population and
    one byte saying whether it was asked to stop (Ctrl-C), so that all stop at the
    same step.
    """

    def __init__(self, partition: "Partition", pairs: list[tuple["Population", "Population"]]) -> None:
        self.partition = partition
        self.pairs = pairs
        #: seconds spent in the collective (and packing), for the benchmarks' exchange share
        self.seconds = 0.0
        self.calls = 0
        self._cache: dict[int, tuple[torch.Tensor, list[torch.Tensor]]] = {}

    def _sizes(self, k: int) -> list[int]:
        """Bytes each rank sends for ``k`` steps: a stop flag and its packed spikes."""
        out = []
        for r in range(self.partition.size):
            size = 1
            for local, mirror in self.pairs:
                lo, hi = self.partition.share(mirror.n, r)
                size += k * local.batch * ((hi - lo + 7) // 8)
            out.append(size)
        return out

    def exchange(self, t0: int, k: int, stop: bool = False) -> bool:
        """Exchange the spikes of steps ``t0 .. t0 + k - 1``; True if any process asked to stop."""
        t_start = time.perf_counter()
        part = self.partition
        send, received = self._buffers(k)
        cpu = send.device.type == "cpu"
        send[0] = 1 if stop else 0
        at = 1
        for local, _ in self.pairs:
            ring = local.history
            for j in range(k):
                slot = ring[(t0 + j) % ring.shape[0]]
                if cpu:  # numpy packs in place, without temporaries
                    packed = np.packbits(slot.numpy(), axis=-1)
                    send.numpy()[at:at + packed.size] = packed.reshape(-1)
                else:
                    packed = pack_bits(slot).reshape(-1)
                    send[at:at + packed.numel()] = packed
                at += packed.size if cpu else packed.numel()
        try:
            if part.size > 1:
                dist.all_gather(received, send, group=part.group)
        except Exception as exc:  # noqa: BLE001 - gloo and NCCL raise several kinds
            raise RuntimeError(
                f"partitioned run: process {part.rank} of {part.size} lost contact with the others "
                f"while exchanging the spikes of steps {t0}..{t0 + k - 1} (another process died, "
                f"was killed or stopped with an error): {type(exc).__name__}: {exc}") from exc
        any_stop = False
        for r, buf in enumerate(received):
            data = buf.numpy() if cpu else buf
            any_stop = any_stop or bool(data[0])
            at = 1
            for local, mirror in self.pairs:
                lo, hi = part.share(mirror.n, r)
                nbytes = (hi - lo + 7) // 8
                ring = mirror.history
                for j in range(k):
                    seg = data[at:at + local.batch * nbytes].reshape(local.batch, nbytes)
                    at += local.batch * nbytes
                    slot = ring[(t0 + j) % ring.shape[0]]
                    if cpu:
                        slot.numpy()[:, lo:hi] = np.unpackbits(seg, axis=-1, count=hi - lo).view(bool)
                    else:
                        slot[:, lo:hi] = unpack_bits(seg, hi - lo)
        self.seconds += time.perf_counter() - t_start
        self.calls += 1
        return any_stop

    def _buffers(self, k: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The send buffer and the receive buffers for slices of ``k`` steps (kept)."""
        cached = self._cache.get(k)
        if cached is None:
            device = self.pairs[0][0].history.device if self.pairs else torch.device("cpu")
            width = max(self._sizes(k))
            send = torch.zeros(width, dtype=torch.uint8, device=device)
            received = ([send] if self.partition.size == 1 else
                        [torch.zeros_like(send) for _ in range(self.partition.size)])
            cached = self._cache[k] = (send, received)
        return cached
