"""Connectors drawn by postsynaptic neuron (PairwiseBernoulli, FixedInDegree) and the
per-synapse weights drawn with them: any split of the postsynaptic neurons draws the same
synapses and weights, and the draws have the distributions they name (checked against
the binomial, hypergeometric-free uniform and normal laws with scipy's tests)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import neurosim as ns
from neurosim.connectors_by_post import draw_weights
from neurosim.distributed import Partition
from neurosim.distributed.projection_share import whole_positions


def _split_union(connector, n_pre, n_post, cuts, key, same):
    parts = [connector.pairs_onto(n_pre, n_post, lo, hi, key, same)
             for lo, hi in zip([0, *cuts], [*cuts, n_post])]
    rows = np.concatenate([r for r, _ in parts])
    cols = np.concatenate([c for _, c in parts])
    order = np.lexsort((cols, rows))
    return rows[order], cols[order]


@pytest.mark.parametrize("connector", [ns.PairwiseBernoulli(0.07), ns.PairwiseBernoulli(0.3, False),
                                       ns.FixedInDegree(9), ns.FixedInDegree(20, False),
                                       ns.AllToAll(), ns.AllToAll(False), ns.OneToOne()])
def test_any_split_of_the_postsynaptic_neurons_draws_the_same_synapses(connector):
    n = 500
    rows, cols = connector.pairs_onto(n, n, 0, n, 1234, True)
    assert np.all(np.diff(rows.astype(np.int64) * n + cols) > 0)  # sorted, no repeated pair
    for cuts in ([250], [1, 499], [17, 200, 333, 334]):
        r, c = _split_union(connector, n, n, cuts, 1234, True)
        assert np.array_equal(r, rows) and np.array_equal(c, cols)
    if connector.draws_by_post:
        other_rows, _ = connector.pairs_onto(n, n, 0, n, 1235, True)
        assert not np.array_equal(other_rows, rows)  # another key, other synapses
    else:  # no random numbers: the pairs of pairs()
        whole_rows, whole_cols = connector.pairs(n, n, None, True)
        assert np.array_equal(whole_rows, rows) and np.array_equal(whole_cols, cols)


def test_pairwise_bernoulli_has_binomial_counts_and_uniform_pairs():
    n_pre, n_post, p = 2000, 1500, 0.04
    rows, cols = ns.PairwiseBernoulli(p).pairs_onto(n_pre, n_post, 0, n_post, 99, False)
    total = n_pre * n_post
    assert abs(rows.size - p * total) < 5 * np.sqrt(total * p * (1 - p))
    # each neuron's in-degree is Binomial(n_pre, p): its variance, not only its mean
    indegree = np.bincount(cols, minlength=n_post)
    assert abs(indegree.var() / (n_pre * p * (1 - p)) - 1) < 0.15
    # presynaptic neurons equally likely (chi-square over the out-degrees)
    outdegree = np.bincount(rows, minlength=n_pre)
    assert stats.chisquare(outdegree).pvalue > 1e-4
    # neighbouring postsynaptic neurons draw independently: their in-degrees do not correlate
    assert abs(np.corrcoef(indegree[:-1], indegree[1:])[0, 1]) < 0.1


def test_pairwise_bernoulli_edges_and_autapses():
    every = ns.PairwiseBernoulli(1.0)
    rows, cols = every.pairs_onto(5, 4, 1, 3, 0, False)
    assert rows.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] and cols.tolist() == [1, 2] * 5
    rows, cols = ns.PairwiseBernoulli(1.0, allow_autapses=False).pairs_onto(4, 4, 0, 4, 0, True)
    assert rows.size == 12 and not np.any(rows == cols)
    rows, cols = ns.PairwiseBernoulli(0.5, allow_autapses=False).pairs_onto(300, 300, 0, 300, 3, True)
    assert rows.size > 40000 and not np.any(rows == cols)
    assert ns.PairwiseBernoulli(0.0).pairs_onto(10, 10, 0, 10, 0, False)[0].size == 0
    with pytest.raises(ValueError, match="p must be in"):
        ns.PairwiseBernoulli(1.5)
    with pytest.raises(ValueError, match="lo <= hi"):
        ns.PairwiseBernoulli(0.1).pairs_onto(10, 10, 5, 11, 0, False)


def test_fixed_in_degree_gives_each_neuron_k_distinct_uniform_inputs():
    n_pre, n_post, k = 400, 3000, 25
    rows, cols = ns.FixedInDegree(k).pairs_onto(n_pre, n_post, 0, n_post, 7, False)
    assert np.all(np.bincount(cols, minlength=n_post) == k)
    assert np.unique(rows.astype(np.int64) * n_post + cols).size == rows.size  # distinct
    assert stats.chisquare(np.bincount(rows, minlength=n_pre)).pvalue > 1e-4
    rows, cols = ns.FixedInDegree(399, allow_autapses=False).pairs_onto(400, 400, 0, 400, 7, True)
    assert rows.size == 400 * 399 and not np.any(rows == cols)
    with pytest.raises(ValueError, match="k=400 distinct presynaptic neurons, but there are 399"):
        ns.FixedInDegree(400, allow_autapses=False).pairs_onto(400, 400, 0, 400, 7, True)
    with pytest.raises(TypeError, match="k must be a whole number"):
        ns.FixedInDegree(2.5)


def test_weights_are_a_function_of_the_synapse_with_the_named_distribution():
    rows, cols = ns.PairwiseBernoulli(0.05).pairs_onto(1000, 1000, 0, 1000, 5, False)
    uniform = draw_weights(ns.Uniform(-1.0, 3.0), 42, rows, cols)
    assert stats.kstest((uniform + 1.0) / 4.0, "uniform").pvalue > 1e-3
    normal = draw_weights(ns.Normal(2.0, 0.5), 42, rows, cols)
    assert stats.kstest((normal - 2.0) / 0.5, "norm").pvalue > 1e-3
    # a subset of the synapses, in any order, gets the same weights
    pick = np.random.default_rng(0).permutation(rows.size)[:500]
    assert np.array_equal(draw_weights(ns.Normal(2.0, 0.5), 42, rows[pick], cols[pick]), normal[pick])
    # synapses onto neighbouring neurons, or from neighbouring neurons, do not correlate
    grid_rows, grid_cols = np.indices((300, 300))
    w = draw_weights(ns.Uniform(0, 1), 9, grid_rows.ravel(), grid_cols.ravel()).reshape(300, 300)
    assert abs(np.corrcoef(w[:, :-1].ravel(), w[:, 1:].ravel())[0, 1]) < 0.02
    assert abs(np.corrcoef(w[:-1].ravel(), w[1:].ravel())[0, 1]) < 0.02


def _network(seed, partition=None):
    net = ns.Network(seed=seed, partition=partition)
    a, b = net.population(120, ns.LIF(), name="a"), net.population(90, ns.LIF(), name="b")
    return net, net.projection(a, b, ns.PairwiseBernoulli(0.2), weight=ns.Uniform(0.5, 1.0), delay=2)


def test_a_projection_drawn_by_postsynaptic_neuron_follows_the_seed():
    _, one = _network(3)
    _, again = _network(3)
    _, other = _network(4)
    assert np.array_equal(one.weight_matrix(), again.weight_matrix())
    assert not np.array_equal(one.weight_matrix(), other.weight_matrix())
    rows, cols = one.synapses()
    w = one.weight_matrix()[rows, cols]
    assert np.all((w >= 0.5) & (w < 1.0)) and rows.size == one.nnz
    assert one.describe()["connector"] == "PairwiseBernoulli"


def test_one_process_of_a_partition_draws_its_share_as_the_whole():
    _, ref = _network(3)
    _, mine = _network(3, Partition(0, 1))
    assert mine.whole is not None and "offset" in mine.whole  # drawn share by share
    assert np.array_equal(mine.weight_matrix(), ref.weight_matrix())
    assert mine.whole["nnz"] == ref.nnz
    assert np.array_equal(whole_positions(mine), np.arange(ref.nnz))
