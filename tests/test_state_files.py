"""State files load only into the network they fit: same dt, same synapses, sane values (20.7)."""

import h5py
import numpy as np
import pytest
import torch

import neurosim as ns


def csr_net(seed, dt=0.1):
    net = ns.Network(dt=dt, seed=seed, backend="torch")
    a = net.population(40, ns.PoissonSource(rate=50.0), name="a")
    b = net.population(40, ns.LIF(), name="b")
    proj = net.projection(a, b, ns.FixedProbability(0.05), weight=ns.Uniform(0.0, 1.0), sparse=True)
    return net, proj


def test_save_before_the_first_run_loads_back(tmp_path):
    net = ns.Network(dt=0.1)
    a = net.population(3, ns.LIF(), name="a")
    net.projection(a, a, weight=0.5, delay=3)
    net.save_state(tmp_path / "s.h5")
    net.load_state(tmp_path / "s.h5")
    net.run(1.0, progress=False)


def test_network_with_other_synapses_but_as_many_is_rejected(tmp_path):
    net, proj = csr_net(seed=1)
    net.save_state(tmp_path / "s.h5")
    other = next(o for o in (csr_net(seed) for seed in range(2, 300)) if o[1].nnz == proj.nnz)
    weights_before = other[1].weight.clone()
    with pytest.raises(ValueError, match=r"projection 'a_b' connects other pairs.*another seed"):
        other[0].load_state(tmp_path / "s.h5")
    assert torch.equal(other[1].weight, weights_before)
    same, _ = csr_net(seed=1)
    same.load_state(tmp_path / "s.h5")  # the same seed builds the same synapses


def test_other_dt_is_rejected(tmp_path):
    net, _ = csr_net(seed=1, dt=0.1)
    net.save_state(tmp_path / "s.h5")
    coarse, _ = csr_net(seed=1, dt=0.5)
    with pytest.raises(ValueError, match=r"saved at dt = 0.1 ms, this network has dt = 0.5 ms"):
        coarse.load_state(tmp_path / "s.h5")


def test_other_population_size_or_model_is_named(tmp_path):
    net = ns.Network()
    net.population(3, ns.LIF(), name="p")
    net.save_state(tmp_path / "s.h5")
    other = ns.Network()
    other.population(3, ns.AdaptiveLIF(), name="p")
    with pytest.raises(ValueError, match=r"population 'p' is 3 LIF neurons in the file and 3 AdaptiveLIF"):
        other.load_state(tmp_path / "s.h5")


@pytest.mark.parametrize("bad", [-5, 2.5])
def test_bad_clock_step_in_a_state_file_is_rejected(tmp_path, bad):
    net, _ = csr_net(seed=1)
    net.run(1.0, progress=False)
    net.save_state(tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5", "r+") as f:
        del f["state/clock.step"]
        f["state/clock.step"] = bad
    fresh, _ = csr_net(seed=1)
    with pytest.raises(ValueError, match="'clock.step' must be a non-negative integer"):
        fresh.load_state(tmp_path / "s.h5")
    assert fresh.clock.step == 0


def test_clock_step_itself_is_checked():
    net = ns.Network()
    for bad in (-5, 1.5, True):
        with pytest.raises(ValueError, match="clock.step must be a non-negative integer"):
            net.clock.step = bad
    net.clock.step = np.int64(7)
    assert net.clock.step == 7 and type(net.clock.step) is int


def test_rejected_state_changes_nothing():
    net, proj = csr_net(seed=1)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["projections.a_b.weight"] += 1.0
    state["populations.b.v"][0, 0] = float("nan")
    before = proj.weight.clone()
    with pytest.raises(ValueError, match="populations.b.v.*NaN"):
        net.load_state_dict(state)
    assert torch.equal(proj.weight, before)


def test_weights_between_unconnected_neurons_are_rejected():
    net = ns.Network()
    a = net.population(3, ns.LIF(), name="a")
    proj = net.projection(a, a, ns.AllToAll(allow_autapses=False), weight=1.0, sparse=False)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["projections.a_a.weight"][2, 2] = 1.0  # an autapse that does not exist
    with pytest.raises(ValueError, match="nonzero weights between unconnected neurons"):
        net.load_state_dict(state)
    assert proj.weight[2, 2] == 0


def test_version_1_files_still_load(tmp_path):
    net, proj = csr_net(seed=1)
    net.run(1.0, progress=False)
    net.save_state(tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5", "r+") as f:  # what neurosim wrote before version 2
        f.attrs["format_version"] = 1
        del f.attrs["dt_ms"], f.attrs["structure"]
    fresh, fresh_proj = csr_net(seed=1)
    with pytest.warns(UserWarning, match="version 1 state file without a structure fingerprint"):
        fresh.load_state(tmp_path / "s.h5")
    assert fresh.clock.step == 10 and torch.equal(fresh_proj.weight, proj.weight)
    coarse, _ = csr_net(seed=1, dt=0.5)
    with pytest.raises(ValueError, match="saved at dt = 0.1 ms"):  # dt from network_json
        coarse.load_state(tmp_path / "s.h5")


def test_directory_or_truncated_file_gives_a_plain_error(tmp_path):
    net, _ = csr_net(seed=1)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        net.load_state(tmp_path)
    net.save_state(tmp_path / "s.h5")
    data = (tmp_path / "s.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated") as info:
        net.load_state(tmp_path / "cut.h5")
    assert "HDF5-DIAG" not in str(info.value) and "errno" not in str(info.value).lower()
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        net.load_state(tmp_path / "text.h5")
