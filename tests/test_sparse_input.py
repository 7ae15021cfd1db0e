"""scipy.sparse connectomes in and out, never densified (issue 21.12)."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import neurosim as ns

# stored entries of a 4 x 5 connectome; (2, 3) is an explicit zero: a synapse of weight 0
ROWS = np.array([0, 0, 1, 2, 3, 3])
COLS = np.array([1, 4, 0, 3, 2, 4])
VALS = np.array([0.5, 1.5, 2.0, 0.0, 0.25, 3.0])


@pytest.fixture
def no_densify(monkeypatch):
    """Make every way scipy densifies raise, so a test proves none is used."""
    def boom(*args, **kwargs):
        raise AssertionError("a sparse matrix was densified")
    for cls in (sp.csr_array, sp.csc_array, sp.coo_array, sp.lil_array, sp.dok_array, sp.bsr_array,
                sp.csr_matrix, sp.coo_matrix):
        for attr in ("toarray", "todense", "__array__"):
            monkeypatch.setattr(cls, attr, boom, raising=False)


def two_pops(net=None, dtype="float32"):
    net = net or ns.Network(dtype=dtype, backend="torch")
    return net, net.population(4, ns.PoissonSource(rate=100.0), name="a"), net.population(5, ns.LIF(), name="b")


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "bsr"])
def test_from_matrix_takes_any_sparse_format_without_a_dense_copy(fmt, no_densify):
    matrix = sp.coo_array((VALS, (ROWS, COLS)), shape=(4, 5)).asformat(fmt)
    net, a, b = two_pops()
    proj = net.projection(a, b, ns.FromMatrix(matrix))
    expected_nnz = matrix.nnz  # lil and dok drop the explicit zero when converted
    assert proj.nnz == expected_nnz
    pre, post = proj.synapses()
    weights = proj.weight_matrix(sparse=True)
    assert isinstance(weights, sp.csr_array) and weights.nnz == expected_nnz
    np.testing.assert_array_equal(weights.indptr, sp.csr_array(matrix).indptr)


def test_explicit_zeros_are_synapses_and_unstored_entries_are_not(no_densify):
    matrix = sp.coo_array((VALS, (ROWS, COLS)), shape=(4, 5))
    net, a, b = two_pops()
    proj = net.projection(a, b, ns.FromMatrix(matrix), sparse=True)
    pre, post = proj.synapses()
    assert list(zip(pre.tolist(), post.tolist())) == list(zip(ROWS.tolist(), COLS.tolist()))
    np.testing.assert_allclose(proj.weight.numpy(), VALS)
    out = proj.weight_matrix(sparse=True)
    assert out.nnz == 6 and out[2, 3] == 0.0 and out.dtype == np.float32


def test_duplicate_coo_entries_add_up():
    matrix = sp.coo_array(([1.0, 2.0], ([0, 0], [1, 1])), shape=(4, 5))
    net, a, b = two_pops()
    proj = net.projection(a, b, ns.FromMatrix(matrix))
    assert proj.nnz == 1 and float(proj.weight.flatten()[proj.weight.flatten() != 0][0]) == 3.0


def test_sparse_weight_without_connector_is_its_own_connectome(no_densify):
    matrix = sp.csr_array((VALS, (ROWS, COLS)), shape=(4, 5))
    net, a, b = two_pops(dtype="float64")
    proj = net.projection(a, b, weight=matrix)
    assert isinstance(proj.connector, ns.FromMatrix) and proj.nnz == 6
    assert proj.weight.dtype == torch.float64
    back = proj.weight_matrix(sparse=True)
    assert (back != matrix).nnz == 0 and back.nnz == 6


def test_sparse_weight_with_a_connector_gives_the_values_of_its_synapses():
    net = ns.Network(backend="torch")
    a = net.population(3, ns.PoissonSource(), name="a")
    b = net.population(3, ns.LIF(), name="b")
    diagonal = sp.dia_array(([[1.0, 2.0, 3.0]], [0]), shape=(3, 3))
    proj = net.projection(a, b, ns.OneToOne(), weight=diagonal)
    assert proj.weight_matrix().diagonal().tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match=r"stores no entry for 6 of the connector's 9 synapses "
                                         r"\(first: pre 0, post 1\)"):
        net.projection(a, b, ns.AllToAll(), weight=diagonal)
    with pytest.raises(ValueError, match=r"sparse weight matrix has shape \(2, 3\)"):
        net.projection(a, b, ns.OneToOne(), weight=sp.csr_array((2, 3)))


def test_bad_sparse_matrices_are_named():
    with pytest.raises(ValueError, match="FromMatrix: matrix contains NaN or inf"):
        ns.FromMatrix(sp.csr_array(([np.nan], ([0], [0])), shape=(2, 2)))
    net, a, b = two_pops()
    with pytest.raises(ValueError, match=r"FromMatrix: matrix has shape \(2, 2\), but the projection needs \(4, 5\)"):
        net.projection(a, b, ns.FromMatrix(sp.csr_array((2, 2))))


@pytest.mark.parametrize("storage", [True, False])
def test_weights_come_back_as_scipy_csr_in_either_storage(storage):
    matrix = sp.csr_array((VALS, (ROWS, COLS)), shape=(4, 5))
    net, a, b = two_pops()
    proj = net.projection(a, b, ns.FromMatrix(matrix), sparse=storage)
    back = proj.weight_matrix(sparse=True)
    assert isinstance(back, sp.csr_array) and back.shape == (4, 5)
    np.testing.assert_array_equal(back.indptr, matrix.indptr)
    np.testing.assert_array_equal(back.indices, matrix.indices)
    np.testing.assert_allclose(back.data, VALS)
    # a round trip builds the same synapses
    again = ns.Network(backend="torch")
    _, a2, b2 = two_pops(again)
    assert again.projection(a2, b2, ns.FromMatrix(back)).structure_digest() == \
        net.projection(a, b, ns.FromMatrix(back), name="again").structure_digest()


def test_log_reader_hands_csr_snapshots_back_as_scipy():
    matrix = sp.csr_array((VALS, (ROWS, COLS)), shape=(4, 5))
    net, a, b = two_pops()
    proj = net.projection(a, b, ns.FromMatrix(matrix), sparse=True)
    net.weight_monitor(proj, every=5)
    net.run(steps=10, progress=False)
    step, snap = net.reader().weight_snapshot("a_b", sparse=True)
    assert step == 5 and isinstance(snap, sp.csr_array) and snap.nnz == 6
    np.testing.assert_allclose(snap.data, VALS)
    _, dense = net.reader().weight_snapshot("a_b")
    np.testing.assert_allclose(snap.toarray(), dense)


def test_hdmf_is_declared_where_the_nwb_export_needs_it():
    tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.skip("tomllib")
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), "rb") as fh:
        extras = tomllib.load(fh)["project"]["optional-dependencies"]
    for extra in ("nwb", "dev"):
        assert any(req.startswith("hdmf") for req in extras[extra]), extra
