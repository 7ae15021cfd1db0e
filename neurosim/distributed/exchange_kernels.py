"""Compiled packing and unpacking of a slice's spikes for the exchange on the CPU.

The numba backend keeps, per population and ring slot, the list of the neurons that
spiked in each batch row (``cnt[slot, b]`` of them, ascending, in ``idx[slot, b]``).
A process encodes its share's spikes straight from those lists, and decodes every
process's spikes into the mirror's ring and lists at once: no scan of the rings in
Python. (The torch backend keeps no lists: the exchange lists the slots it sends
from the ring, and decodes into scratch lists.) Positions are ``(j * batch + b) * n + i`` for step ``j`` of the slice, row ``b``
and neuron ``i`` of the sender's share of ``n`` neurons (the layout of the bits too).
"""

from __future__ import annotations

from numba import njit

from neurosim.backends.numba_kernels import list_spikes


@njit(cache=True)
def encode_positions(cnt, idx, slots, n, out):
    """Write the positions of the spikes of ``slots`` (from the lists) to ``out`` while
    they fit; return how many there are (more than ``out`` holds: use the bits)."""
    batch = cnt.shape[1]
    m = 0
    for j in range(slots.shape[0]):
        s = slots[j]
        for b in range(batch):
            base = (j * batch + b) * n
            for q in range(cnt[s, b]):
                if m < out.shape[0]:
                    out[m] = base + idx[s, b, q]
                m += 1
    return m


@njit(cache=True)
def list_slots(hist, slots, cnt, idx):
    """Spike lists of ``slots`` of a ring (for a backend that keeps none: torch)."""
    for j in range(slots.shape[0]):
        s = slots[j]
        for b in range(hist.shape[1]):
            cnt[s, b] = list_spikes(hist[s, b], idx[s, b])


@njit(cache=True)
def clear_slots(hist, cnt, slots):
    """Empty ``slots`` of a mirror: its ring and its spike lists."""
    for j in range(slots.shape[0]):
        s = slots[j]
        for b in range(hist.shape[1]):
            hist[s, b, :] = False
            cnt[s, b] = 0


@njit(cache=True)
def decode_positions(pos, count, slots, n, lo, hist, cnt, idx):
    """Add one sender's spikes (``count`` positions in its share of ``n`` neurons starting
    at ``lo``) to the mirror's ring and lists. Senders are decoded in rank order and own
    ascending ranges, so each list stays ascending, as the kernels build it."""
    batch = hist.shape[1]
    for m in range(count):
        p = pos[m]
        i = p % n
        jb = p // n
        b = jb % batch
        s = slots[jb // batch]
        hist[s, b, lo + i] = True
        idx[s, b, cnt[s, b]] = lo + i
        cnt[s, b] += 1


@njit(cache=True)
def decode_bits(packed, slots, n, lo, hist, cnt, idx):
    """Add one sender's spikes given as bits (``(k, batch, ceil(n / 8))`` bytes, most
    significant bit first) to the mirror's ring and lists (ascending, as above)."""
    batch = hist.shape[1]
    width = (n + 7) // 8
    for j in range(slots.shape[0]):
        s = slots[j]
        for b in range(batch):
            row = (j * batch + b) * width
            for byte in range(width):
                value = packed[row + byte]
                if value == 0:
                    continue
                for bit in range(8):
                    if value & (128 >> bit):
                        i = byte * 8 + bit
                        hist[s, b, lo + i] = True
                        idx[s, b, cnt[s, b]] = lo + i
                        cnt[s, b] += 1

