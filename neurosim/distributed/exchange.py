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
    projection reading a mirror, so no spike is read before it has arrived.

    Each process sends one buffer of a size every process knows in advance: a byte
    saying whether it was asked to stop (Ctrl-C, so that all stop at the same step),
    then per split population a segment of ``1 + 4 + B`` bytes, ``B`` being the
    population share's ``k x batch x neurons`` spikes packed as bits. The segment holds
    either those bits (first byte 0) or, when they take fewer bytes, the positions of
    the spikes in the slice as int32 (first byte 1, then their count): at low rates a
    list is much smaller, so there is less to pack and unpack.
    """

    def __init__(self, partition: "Partition", pairs: list[tuple["Population", "Population"]],
                 backend: Any = None) -> None:
        self.partition = partition
        self.pairs = pairs
        #: told which ring slots the exchange wrote (the numba backend then updates its
        #: spike lists of those slots only, instead of rebuilding all from the rings)
        self.backend = backend
        #: seconds spent in the collective (and packing), for the benchmarks' exchange share
        self.seconds = 0.0
        self.calls = 0
        self._cache: dict[int, tuple[torch.Tensor, list[torch.Tensor]]] = {}

    def slice_steps(self, net: Any) -> int:
        """Steps between exchanges: the smallest delay of a projection reading a mirror."""
        return max(1, net.min_delay) if self.pairs else net._chunk_steps

    def before_slice(self) -> None:
        pass

    def _bits(self, k: int, local: "Population", mirror: "Population", rank: int) -> tuple[int, int, int]:
        """(lo, hi, bytes of packed bits) of ``rank``'s share of a split population."""
        lo, hi = self.partition.share(mirror.n, rank)
        return lo, hi, k * local.batch * ((hi - lo + 7) // 8)

    def _sizes(self, k: int) -> list[int]:
        """Bytes each rank sends for ``k`` steps: a stop flag, then a segment per population."""
        return [1 + sum(5 + self._bits(k, local, mirror, r)[2] for local, mirror in self.pairs)
                for r in range(self.partition.size)]

    def exchange(self, t0: int, k: int, stop: bool = False) -> bool:
        """Exchange the spikes of steps ``t0 .. t0 + k - 1``; True if any process asked to stop."""
        t_start = time.perf_counter()
        part = self.partition
        send, received = self._buffers(k)
        send[0] = 1 if stop else 0
        at = 1
        for local, mirror in self.pairs:
            nbits = self._bits(k, local, mirror, part.rank)[2]
            ring = local.history
            slots = [(t0 + j) % ring.shape[0] for j in range(k)]
            self._encode(ring, slots, send[at:at + 5 + nbits])
            at += 5 + nbits
        try:
            if part.size > 1:
                dist.all_gather(received, send, group=part.group)
        except Exception as exc:  # noqa: BLE001 - gloo and NCCL raise several kinds
            raise RuntimeError(
                f"partitioned run: process {part.rank} of {part.size} lost contact with the others "
                f"while exchanging the spikes of steps {t0}..{t0 + k - 1} (another process died, "
                f"was killed or stopped with an error): {type(exc).__name__}: {exc}") from exc
        any_stop = any(bool(buf[0]) for buf in received)
        for i, (local, mirror) in enumerate(self.pairs):
            ring = mirror.history
            slots = [(t0 + j) % ring.shape[0] for j in range(k)]
            for r, buf in enumerate(received):
                at = 1 + sum(5 + self._bits(k, lc, mr, r)[2] for lc, mr in self.pairs[:i])
                lo, hi, nbits = self._bits(k, local, mirror, r)
                self._decode(buf[at:at + 5 + nbits], ring, slots, lo, hi, local.batch)
            written = getattr(self.backend, "spikes_written", None)
            if written is not None:
                written(mirror, sorted(set(slots)))
        self.seconds += time.perf_counter() - t_start
        self.calls += 1
        return any_stop

    @staticmethod
    def _encode(ring: torch.Tensor, slots: list[int], segment: torch.Tensor) -> None:
        """Write ``slots`` of a spike ring into ``segment``: a list of positions in the
        ``(k, batch, n)`` slice when it is shorter than the bits, else the bits."""
        nbits = segment.numel() - 5
        if ring.device.type == "cpu":
            spikes = ring.numpy()
            cells = spikes.shape[1] * spikes.shape[2]
            flat = np.concatenate([np.flatnonzero(spikes[slot]) + j * cells
                                   for j, slot in enumerate(slots)])
            if 4 * flat.size <= nbits:
                out = segment.numpy()
                out[0] = 1
                out[1:5] = np.frombuffer(np.uint32(flat.size).tobytes(), np.uint8)
                out[5:5 + 4 * flat.size] = flat.astype(np.int32).view(np.uint8)
                return
            segment.numpy()[0] = 0
            segment.numpy()[5:] = np.packbits(spikes[slots], axis=-1).reshape(-1)
            return
        segment[0] = 0
        segment[5:] = pack_bits(ring[slots]).reshape(-1)

    @staticmethod
    def _decode(segment: torch.Tensor, ring: torch.Tensor, slots: list[int], lo: int, hi: int,
                batch: int) -> None:
        """Write a segment from the process that steps neurons ``lo .. hi - 1`` into
        ``slots`` of the mirror ``ring``."""
        k, n = len(slots), hi - lo
        if ring.device.type == "cpu":
            data, out = segment.numpy(), ring.numpy()
            if data[0] == 1:
                count = int(np.frombuffer(data[1:5].tobytes(), np.uint32)[0])
                flat = np.frombuffer(data[5:5 + 4 * count].tobytes(), np.int32)
                for j, slot in enumerate(slots):
                    out[slot, :, lo:hi] = False
                j, rest = np.divmod(flat, batch * n)
                b, i = np.divmod(rest, n)
                out[np.asarray(slots)[j], b, lo + i] = True
                return
            bits = np.unpackbits(data[5:].reshape(k, batch, -1), axis=-1, count=n).view(bool)
            for j, slot in enumerate(slots):
                out[slot, :, lo:hi] = bits[j]
            return
        bits = unpack_bits(segment[5:].reshape(k, batch, -1), n)
        for j, slot in enumerate(slots):
            ring[slot, :, lo:hi] = bits[j]

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
