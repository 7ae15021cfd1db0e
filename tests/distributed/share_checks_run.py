"""Projections drawn share by share against one process's, over many configurations,
under ``torchrun`` (any number of processes): the synapses, weights, each synapse's
place in the whole storage order, the storage choice (densities around the 10% at which
one process switches to dense), and the whole structure's fingerprint, hashed in many
small blocks. Then a projection whose weights break a check in some shares only: every
process must raise. Process 0 writes ``bad`` (configurations that differ), ``names``
and ``refused`` (how many processes raised) to ``--out``.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch
import torch.distributed as dist
from common import finish, join

import neurosim as ns
from neurosim.connectors_by_post import draw_weights, stream_keys
from neurosim.distributed import projection_share
from neurosim.distributed.projection_share import whole_digest, whole_positions
from neurosim.seeding import numpy_stream


def configs():
    yield "aa_no_autapses", "a", "a", ns.PairwiseBernoulli(0.3, allow_autapses=False), 0.4, None
    yield "ab_normal", "a", "b", ns.PairwiseBernoulli(0.05), ns.Normal(1.5, 0.3), None
    yield "ab_all", "a", "b", ns.PairwiseBernoulli(1.0), 0.5, None
    yield "aa_all_no_autapses_csr", "a", "a", ns.PairwiseBernoulli(1.0, False), 0.5, True
    yield "aa_k_max", "a", "a", ns.FixedInDegree(46, False), 0.5, None
    yield "ba_k_all", "b", "a", ns.FixedInDegree(33), ns.Normal(1.0, 0.1), None
    yield "ab_tiny_dense", "a", "b", ns.PairwiseBernoulli(0.0005), 0.5, False
    yield "ab_none", "a", "b", ns.PairwiseBernoulli(0.0), 0.5, None
    yield "ab_csr_forced", "a", "b", ns.PairwiseBernoulli(0.6), 0.5, True
    yield "ca_k0", "c", "a", ns.FixedInDegree(0), 0.5, None
    yield "aa_all_to_all_no_autapses", "a", "a", ns.AllToAll(allow_autapses=False), 0.3, None
    yield "ab_all_to_all_csr", "a", "b", ns.AllToAll(), 0.3, True
    yield "aa_one_to_one", "a", "a", ns.OneToOne(), 0.7, None
    for q in range(8):  # around 10%: shares' own densities fall on both sides
        yield f"near{q}", "a", "b", ns.PairwiseBernoulli(0.094 + 0.002 * q), ns.Uniform(0.1, 1.0), None


def build(partition):
    net = ns.Network(seed=5, partition=partition)
    pops = {"a": net.population(47, ns.LIF(), name="a"), "b": net.population(33, ns.LIF(), name="b"),
            "c": net.population(1, ns.LIF(), name="c", split=False if partition else None)}
    for name, pre, post, connector, weight, sparse in configs():
        net.projection(pops[pre], pops[post], connector, weight=weight, sparse=sparse, name=name)
    return net


def mixed_sign_seed(size: int) -> int:
    """A seed whose Normal(0, 1) weights from one neuron onto ``3 * size`` neurons (the
    projection ``lif0_lif1`` below) are all negative onto one process's 3 neurons and
    positive onto some neuron of another's."""
    for seed in range(10000):
        weight_key = stream_keys(numpy_stream(seed, "projection/lif0_lif1"))[1]
        w = draw_weights(ns.Normal(0.0, 1.0), weight_key, np.zeros(3 * size, np.int64),
                         np.arange(3 * size, dtype=np.int64)).reshape(size, 3)
        fine = (w <= 0).all(axis=1)
        if fine.any() and not fine.all():
            return seed
    raise RuntimeError("no seed found")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    projection_share.DIGEST_BLOCK = 7  # many blocks, some empty in a process
    partition = join()
    size = 1 if partition is None else partition.size
    ref, net = build(None), build(partition)
    bad = []
    for name, *_ in configs():
        mine, one = net.projections[name], ref.projections[name]
        rows, cols = mine.synapses()
        values = mine.weight_matrix()[rows, cols]
        held = (whole_positions(mine), rows, cols + mine.post.offset, values, mine.sparse, mine.whole["nnz"])
        digest = whole_digest(partition, mine) if partition else mine.structure_digest()
        parts = [None] * size
        if partition:
            dist.all_gather_object(parts, held)
        else:
            parts = [held]
        pos = np.concatenate([p[0] for p in parts])
        order = np.argsort(pos)
        r_rows, r_cols = one.synapses()
        same = (np.array_equal(pos[order], np.arange(one.nnz))
                and np.array_equal(np.concatenate([p[1] for p in parts])[order], r_rows)
                and np.array_equal(np.concatenate([p[2] for p in parts])[order], r_cols)
                and np.array_equal(np.concatenate([p[3] for p in parts])[order],
                                   one.weight_matrix()[r_rows, r_cols])
                and all(p[4] == one.sparse and p[5] == one.nnz for p in parts)
                and digest == one.structure_digest())
        if not same:
            bad.append(name)
    # weights of the wrong sign in some shares only: every process refuses
    seed = mixed_sign_seed(size)
    refused = 0
    wrong = ns.Network(seed=seed, partition=partition)
    try:
        wrong.projection(wrong.population(1, ns.LIF(), split=False), wrong.population(3 * size, ns.LIF()),
                         ns.PairwiseBernoulli(1.0), weight=ns.Normal(0.0, 1.0), receptor="inh")
    except ValueError as exc:
        refused = int("receptor 'inh' needs weights <= 0" in str(exc))
    if partition:
        count = torch.tensor([refused])
        dist.all_reduce(count)
        refused = int(count)
    return finish(partition, args.out, bad=np.array(bad, dtype=str), refused=np.array(refused),
                  names=np.array([c[0] for c in configs()], dtype=str))


if __name__ == "__main__":
    sys.exit(main())
