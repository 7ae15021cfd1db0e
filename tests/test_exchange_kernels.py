"""The compiled packing of a partitioned run's exchange (numba backend): every sender's
spikes, encoded from its spike lists as positions or packed as bits, decoded into the
mirror's ring and lists, give the whole population's ring and the lists the kernels
would build from it (ascending)."""

from __future__ import annotations

import numpy as np
import pytest

from neurosim.backends.numba_kernels import list_spikes
from neurosim.distributed import exchange_kernels as kernels


def _lists(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cnt = np.zeros(ring.shape[:2], np.int64)
    idx = np.zeros(ring.shape, np.int32)
    for s in range(ring.shape[0]):
        for b in range(ring.shape[1]):
            cnt[s, b] = list_spikes(ring[s, b], idx[s, b])
    return cnt, idx


@pytest.mark.parametrize("mode", ["positions", "bits", "mixed"])
def test_every_senders_spikes_reach_the_mirror_and_its_lists(mode):
    rng = np.random.default_rng(5)
    slots_in_ring, batch, n = 7, 3, 53
    bounds = [0, 17, 18, 53]  # three senders, one with a single neuron
    slots = np.array([5, 6, 0, 1], dtype=np.int64)  # a slice that wraps around the ring
    whole = rng.random((slots_in_ring, batch, n)) < 0.2
    mirror = rng.random((slots_in_ring, batch, n)) < 0.5  # stale contents to be replaced
    cnt, idx = _lists(mirror)
    kernels.clear_slots(mirror, cnt, slots)
    for r, (lo, hi) in enumerate(zip(bounds, bounds[1:])):
        share = np.ascontiguousarray(whole[:, :, lo:hi])
        use_bits = mode == "bits" or (mode == "mixed" and r == 1)
        if use_bits:
            packed = np.packbits(share[slots], axis=-1).reshape(-1)
            kernels.decode_bits(packed, slots, hi - lo, lo, mirror, cnt, idx)
            continue
        s_cnt, s_idx = _lists(share)
        out = np.zeros(len(slots) * batch * (hi - lo), np.int32)
        count = kernels.encode_positions(s_cnt, s_idx, slots, hi - lo, out)
        assert count == share[slots].sum()
        kernels.decode_positions(out, count, slots, hi - lo, lo, mirror, cnt, idx)
    assert np.array_equal(mirror[slots], whole[slots])
    ref_cnt, ref_idx = _lists(mirror)
    for s in slots:
        assert np.array_equal(cnt[s], ref_cnt[s])
        for b in range(batch):
            assert np.array_equal(idx[s, b, :cnt[s, b]], ref_idx[s, b, :cnt[s, b]])
    others = [s for s in range(slots_in_ring) if s not in slots]
    assert not np.array_equal(mirror[others], whole[others])  # (untouched slots stay)


def test_positions_that_do_not_fit_are_counted_for_the_bits():
    ring = np.ones((2, 1, 10), dtype=bool)
    cnt, idx = _lists(ring)
    out = np.zeros(5, np.int32)
    assert kernels.encode_positions(cnt, idx, np.array([0, 1], dtype=np.int64), 10, out) == 20


def test_the_tensor_path_for_gpus_round_trips_on_the_cpu():
    """SpikeExchange's tensor encoding (used on a GPU; run here on CPU tensors): bits of
    a slice into a segment, back into a mirror's slots."""
    import torch

    from neurosim.distributed.exchange import _HEADER, SpikeExchange

    gen = torch.Generator().manual_seed(2)
    ring = torch.rand((5, 2, 13), generator=gen) < 0.3
    slots = [3, 4, 0]
    segment = torch.zeros(_HEADER + len(slots) * 2 * 2 + 4, dtype=torch.uint8)
    SpikeExchange._encode(ring, slots, segment)
    mirror = torch.zeros((5, 2, 20), dtype=torch.bool)
    SpikeExchange._decode(segment, mirror, slots, 4, 17, 2)
    assert torch.equal(mirror[slots][:, :, 4:17], ring[slots])
    assert not mirror[:, :, :4].any() and not mirror[:, :, 17:].any() and not mirror[[1, 2]].any()
