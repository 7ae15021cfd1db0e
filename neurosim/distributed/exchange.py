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


#: bytes before a population's payload: a mode byte (0 bits, 1 positions), padding, then
#: the number of positions (int32), so that the payload is aligned for int32 views
_HEADER = 8


def _round4(n: int) -> int:
    return (n + 3) // 4 * 4


class SpikeExchange:
    """Copies every process's spikes of each split population into every process's
    mirror of it (the whole population's spike ring that projections read).

    ``pairs``: (this process's share, the mirror) per split population. Called after
    every slice of ``k`` steps with ``k`` no longer than the smallest delay of a
    projection reading a mirror, so no spike is read before it has arrived.

    Each process sends one buffer of a size every process knows in advance: 4 bytes
    whose first says whether it was asked to stop (Ctrl-C, so that all stop at the same
    step), then per split population a segment of an 8-byte header and ``B`` bytes,
    ``B`` being the population share's ``k x batch x neurons`` spikes packed as bits
    (rounded up to 4). The segment holds either those bits (mode 0) or, when they take
    fewer bytes, the positions of the spikes in the slice as int32 (mode 1, then their
    count): at low rates a list is much smaller, so there is less to pack and unpack.
    On the CPU both ends run compiled (:mod:`neurosim.distributed.exchange_kernels`),
    from and into the numba backend's spike lists (the torch backend's: scratch lists);
    on a GPU they are tensor operations.
    """

    def __init__(self, partition: "Partition", pairs: list[tuple["Population", "Population"]],
                 backend: Any = None) -> None:
        self.partition = partition
        self.pairs = pairs
        #: the numba backend: its spike lists are read and written directly (and it is
        #: told they are current, so its next call does not rebuild them from the rings)
        self.backend = backend if hasattr(backend, "spike_lists") else None
        self._scratch: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: seconds spent in the collective (and packing), for the benchmarks' exchange share
        self.seconds = 0.0
        self.calls = 0
        self._cache: dict[int, tuple[torch.Tensor, list[torch.Tensor], list[list[tuple[int, int, int, int]]]]] = {}

    def slice_steps(self, net: Any) -> int:
        """Steps between exchanges: the smallest delay of a projection reading a mirror."""
        return max(1, net.min_delay) if self.pairs else net._chunk_steps

    def before_slice(self) -> None:
        pass

    def _bits(self, k: int, local: "Population", mirror: "Population", rank: int) -> tuple[int, int, int]:
        """(lo, hi, payload bytes: the packed bits, rounded up to 4) of ``rank``'s share."""
        lo, hi = self.partition.share(mirror.n, rank)
        return lo, hi, _round4(k * local.batch * ((hi - lo + 7) // 8))

    def _segments(self, k: int, rank: int) -> list[tuple[int, int, int, int]]:
        """(start, lo, hi, payload bytes) of each population's segment in ``rank``'s buffer."""
        out, at = [], 4
        for local, mirror in self.pairs:
            lo, hi, nbits = self._bits(k, local, mirror, rank)
            out.append((at, lo, hi, nbits))
            at += _HEADER + nbits
        return out

    def exchange(self, t0: int, k: int, stop: bool = False) -> bool:
        """Exchange the spikes of steps ``t0 .. t0 + k - 1``; True if any process asked to stop."""
        t_start = time.perf_counter()
        part = self.partition
        send, received, layouts = self._buffers(k)
        send[0] = 1 if stop else 0
        compiled = send.device.type == "cpu"
        for (local, mirror), (at, _, _, nbits) in zip(self.pairs, layouts[part.rank]):
            ring = local.history
            slots = [(t0 + j) % ring.shape[0] for j in range(k)]
            segment = send[at:at + _HEADER + nbits]
            if compiled:
                self._encode_lists(local, slots, segment)
            else:
                self._encode(ring, slots, segment)
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
            if compiled:
                self._decode_lists(mirror, slots, [(buf, layouts[r][i]) for r, buf in enumerate(received)])
                continue
            for r, buf in enumerate(received):
                at, lo, hi, nbits = layouts[r][i]
                self._decode(buf[at:at + _HEADER + nbits], ring, slots, lo, hi, local.batch)
        if compiled and self.backend is not None:
            self.backend.lists_current = True
        self.seconds += time.perf_counter() - t_start
        self.calls += 1
        return any_stop

    def _lists(self, pop: "Population") -> tuple[np.ndarray, np.ndarray]:
        """``pop``'s spike lists: the numba backend's own, else scratch ones."""
        if self.backend is not None:
            return self.backend.spike_lists(pop)
        shape = tuple(pop.history.shape)
        lists = self._scratch.get(pop.name)
        if lists is None or lists[1].shape != shape:
            lists = self._scratch[pop.name] = (np.zeros(shape[:2], np.int64), np.zeros(shape, np.int32))
        return lists

    def _encode_lists(self, local: "Population", slots: list[int], segment: torch.Tensor) -> None:
        """On the CPU: the positions of the spikes of ``slots`` from ``local``'s spike lists
        (the bits from the ring when they are shorter)."""
        from neurosim.distributed import exchange_kernels as kernels

        data = segment.numpy()
        payload = data[_HEADER:].view(np.int32)
        where = np.asarray(slots, dtype=np.int64)
        cnt, idx = self._lists(local)
        if self.backend is None:  # (torch: no lists of its own)
            kernels.list_slots(local.history.numpy(), where, cnt, idx)
        count = kernels.encode_positions(cnt, idx, where, local.n, payload)
        if count <= payload.size:
            data[0] = 1
            data[4:8].view(np.int32)[0] = count
            return
        data[0] = 0
        bits = np.packbits(local.history.numpy()[slots], axis=-1).reshape(-1)
        data[_HEADER:_HEADER + bits.size] = bits

    def _decode_lists(self, mirror: "Population", slots: list[int],
                      parts: list[tuple[torch.Tensor, tuple[int, int, int, int]]]) -> None:
        """On the CPU: every process's spikes into the mirror's ring and spike lists."""
        from neurosim.distributed import exchange_kernels as kernels

        hist = mirror.history.numpy()
        cnt, idx = self._lists(mirror)
        where = np.asarray(slots, dtype=np.int64)
        kernels.clear_slots(hist, cnt, where)
        for buf, (at, lo, hi, nbits) in parts:  # rank order: the lists stay ascending
            data = buf.numpy()[at:at + _HEADER + nbits]
            if data[0] == 1:
                kernels.decode_positions(data[_HEADER:].view(np.int32), int(data[4:8].view(np.int32)[0]),
                                         where, hi - lo, lo, hist, cnt, idx)
            else:
                kernels.decode_bits(data[_HEADER:], where, hi - lo, lo, hist, cnt, idx)

    @staticmethod
    def _encode(ring: torch.Tensor, slots: list[int], segment: torch.Tensor) -> None:
        """On a GPU: ``slots`` of a spike ring into ``segment`` as bits (tensor operations,
        no host synchronisation)."""
        segment[0] = 0
        bits = pack_bits(ring[slots]).reshape(-1)
        segment[_HEADER:_HEADER + bits.numel()] = bits

    @staticmethod
    def _decode(segment: torch.Tensor, ring: torch.Tensor, slots: list[int], lo: int, hi: int,
                batch: int) -> None:
        """On a GPU: a segment from the process that steps neurons ``lo .. hi - 1`` into
        ``slots`` of the mirror ``ring``."""
        k, n = len(slots), hi - lo
        width = k * batch * ((n + 7) // 8)
        bits = unpack_bits(segment[_HEADER:_HEADER + width].reshape(k, batch, -1), n)
        for j, slot in enumerate(slots):
            ring[slot, :, lo:hi] = bits[j]

    def _buffers(self, k: int) -> tuple[torch.Tensor, list[torch.Tensor], list[list[tuple[int, int, int, int]]]]:
        """The send buffer, the receive buffers and every rank's segments for slices of
        ``k`` steps (kept)."""
        cached = self._cache.get(k)
        if cached is None:
            device = self.pairs[0][0].history.device if self.pairs else torch.device("cpu")
            layouts = [self._segments(k, r) for r in range(self.partition.size)]
            width = max(4 + sum(_HEADER + nbits for _, _, _, nbits in layout) for layout in layouts)
            send = torch.zeros(width, dtype=torch.uint8, device=device)
            received = ([send] if self.partition.size == 1 else
                        [torch.zeros_like(send) for _ in range(self.partition.size)])
            cached = self._cache[k] = (send, received, layouts)
        return cached
