"""Compiled building blocks of the numba backend that do not depend on a model.

Spikes of each population are kept twice: in the boolean history ring that the
torch backend also uses (``hist[slot, batch, neuron]``) and, for event-driven
delivery, as per-slot lists of spiking neuron indices (``idx[slot, b, :cnt[slot, b]]``,
ascending), which the neuron kernels append to as they fire. Loops visit spikes
in the same order as the torch backend's ``nonzero`` so sums are added in the
same order and the two backends agree bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def where(cond, a, b):  # noqa: ANN001 - scalar select used by generated model code
    return a if cond else b


@njit(cache=True)
def maximum(a, b):  # noqa: ANN001 - neurosim.kernel.maximum on scalars (NaN propagates)
    return a if (a > b or a != a) else b


@njit(cache=True)
def minimum(a, b):  # noqa: ANN001 - neurosim.kernel.minimum on scalars (NaN propagates)
    return a if (a < b or a != a) else b


@njit(cache=True)
def elu(x):  # noqa: ANN001 - neurosim.kernel.elu on scalars
    return x if x > 0 else np.expm1(x)


@njit(cache=True)
def sigmoid(x):  # noqa: ANN001 - neurosim.kernel.sigmoid on scalars (exp of -|x| only)
    e = np.exp(-abs(x))
    return 1.0 / (1.0 + e) if x > 0 else e / (1.0 + e)


@njit(cache=True)
def tanh(x):  # noqa: ANN001 - neurosim.kernel.tanh on scalars
    return np.tanh(x)


@njit(cache=True)
def spike(x):  # noqa: ANN001 - the firing condition x >= 0 (neurosim.kernel.spike)
    return x >= 0


@njit(cache=True)
def spike_above(x):  # noqa: ANN001 - the strict firing condition x > 0
    return x > 0


@njit(cache=True)
def list_spikes(spikes, idx):
    """Write the indices of the True entries of ``spikes`` to ``idx``, ascending; return their count.

    Spikes are rare, so the row is read eight flags at a time and only nonzero
    words are looked into (about 5x faster than testing every flag).
    """
    n = spikes.shape[0]
    words = n // 8
    packed = spikes[:words * 8].view(np.uint64)
    c = 0
    for q in range(words):
        if packed[q] != 0:
            for i in range(q * 8, q * 8 + 8):
                if spikes[i]:
                    idx[c] = i
                    c += 1
    for i in range(words * 8, n):
        if spikes[i]:
            idx[c] = i
            c += 1
    return c


@njit(cache=True)
def list_nonzero(values, idx):
    """A graded population's list: the indices of the nonzero values, ascending; their count."""
    c = 0
    for i in range(values.shape[0]):
        if values[i] != 0:
            idx[c] = i
            c += 1
    return c


@njit(cache=True)
def rebuild_spike_lists(hist, cnt, idx):
    """Recompute the index lists from the history ring (after a reset or a load)."""
    for slot in range(hist.shape[0]):
        for b in range(hist.shape[1]):
            cnt[slot, b] = list_spikes(hist[slot, b], idx[slot, b])


@njit(cache=True)
def rebuild_value_lists(hist, cnt, idx):
    """:func:`rebuild_spike_lists` for a graded population's ring of values."""
    for slot in range(hist.shape[0]):
        for b in range(hist.shape[1]):
            cnt[slot, b] = list_nonzero(hist[slot, b], idx[slot, b])


# Each delivery takes the postsynaptic gate's gain (batch, n_post), or None for an ungated
# population: numba compiles the None case without the branch (dead-branch pruning on a
# None argument), so ungated networks run the plain loop. A gated event adds w * gain
# (graded: r * (w * gain)), as the torch backend does.
@njit(cache=True)
def deliver_csr(cnt, idx, slot, indptr, indices, weight, target, gain):
    for b in range(target.shape[0]):
        for k in range(cnt[slot, b]):
            i = idx[slot, b, k]
            for s in range(indptr[i], indptr[i + 1]):
                j = indices[s]
                if gain is None:
                    target[b, j] += weight[s]
                else:
                    target[b, j] += weight[s] * gain[b, j]


@njit(cache=True)
def deliver_csr_block(cnt, idx, slot, indptr, positions, indices, weight, target, gain):
    """One delay block of a projection with per-synapse delays: row ``i``'s synapses of
    the block are ``indptr[i]:indptr[i + 1]`` of the block's own ``positions`` (places in
    ``weight``) and ``indices`` (targets)."""
    for b in range(target.shape[0]):
        for k in range(cnt[slot, b]):
            i = idx[slot, b, k]
            for q in range(indptr[i], indptr[i + 1]):
                s = positions[q]
                j = indices[q]
                if gain is None:
                    target[b, j] += weight[s]
                else:
                    target[b, j] += weight[s] * gain[b, j]


@njit(cache=True)
def deliver_dense(cnt, idx, slot, weight, target, gain):
    n_post = target.shape[1]
    for b in range(target.shape[0]):
        for k in range(cnt[slot, b]):
            i = idx[slot, b, k]
            if gain is None:
                for j in range(n_post):
                    target[b, j] += weight[i, j]
            else:
                for j in range(n_post):
                    target[b, j] += weight[i, j] * gain[b, j]


@njit(cache=True)
def deliver_dense_values(cnt, idx, slot, hist, weight, target, gain):
    """Dense delivery from a graded population: each nonzero value r adds r * w."""
    n_post = target.shape[1]
    for b in range(target.shape[0]):
        for k in range(cnt[slot, b]):
            i = idx[slot, b, k]
            r = hist[slot, b, i]
            if gain is None:
                for j in range(n_post):
                    target[b, j] += r * weight[i, j]
            else:
                for j in range(n_post):
                    target[b, j] += r * (weight[i, j] * gain[b, j])


@njit(cache=True)
def deliver_csr_values(cnt, idx, slot, hist, indptr, indices, weight, target, gain):
    for b in range(target.shape[0]):
        for k in range(cnt[slot, b]):
            i = idx[slot, b, k]
            r = hist[slot, b, i]
            for s in range(indptr[i], indptr[i + 1]):
                j = indices[s]
                if gain is None:
                    target[b, j] += r * weight[s]
                else:
                    target[b, j] += r * (weight[s] * gain[b, j])


@njit(cache=True)
def deliver_csr_block_values(cnt, idx, slot, hist, indptr, positions, indices, weight, target, gain):
    for b in range(target.shape[0]):
        for k in range(cnt[slot, b]):
            i = idx[slot, b, k]
            r = hist[slot, b, i]
            for q in range(indptr[i], indptr[i + 1]):
                s = positions[q]
                j = indices[q]
                if gain is None:
                    target[b, j] += r * weight[s]
                else:
                    target[b, j] += r * (weight[s] * gain[b, j])


@njit(cache=True)
def emit_events(t, hist, cnt, idx, ev_steps, ev_rows, ev_neurons):
    """Spike generator: set this step's slot from the (step, row, neuron)-sorted events."""
    slot = t % hist.shape[0]
    hist[slot, :, :] = False
    cnt[slot, :] = 0
    lo = np.searchsorted(ev_steps, t)
    hi = np.searchsorted(ev_steps, t + 1)
    for e in range(lo, hi):
        b = ev_rows[e]
        i = ev_neurons[e]
        if not hist[slot, b, i]:
            hist[slot, b, i] = True
            idx[slot, b, cnt[slot, b]] = i
            cnt[slot, b] += 1


@njit(cache=True)
def record_events(cnt, idx, slot, t, ev_step, ev_neuron, ev_row, fill):
    """Append this step's spikes as (step, neuron, row) events, rows then neurons ascending."""
    f = fill[0]
    for b in range(cnt.shape[1]):
        for k in range(cnt[slot, b]):
            ev_step[f] = t
            ev_neuron[f] = idx[slot, b, k]
            ev_row[f] = b
            f += 1
    fill[0] = f


@njit(cache=True)
def record_state(src, neurons, buf, row):
    for b in range(src.shape[0]):
        for j in range(neurons.shape[0]):
            buf[row, b, j] = src[b, neurons[j]]


@njit(cache=True)
def count_spikes(cnt, idx, slot, counts):
    for b in range(cnt.shape[1]):
        for k in range(cnt[slot, b]):
            counts[b, idx[slot, b, k]] += 1.0
