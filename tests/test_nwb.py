"""NWB export: a real run's spikes come back from the NWB file exactly as the log has them."""

import os
import shutil
import sys
from datetime import datetime, timezone

import h5py
import numpy as np
import pytest

import neurosim as ns
from neurosim.analysis import export_nwb

SIZES = {"src": 40, "out": 20, "quiet": 5}


@pytest.fixture(scope="module")
def run_log(tmp_path_factory):
    """A completed log: Poisson input driving LIF neurons, plus LIF neurons without input."""
    path = tmp_path_factory.mktemp("nwb") / "run.h5"
    net = ns.Network(dt=0.1, seed=3, log=str(path), batch=2)
    src = net.population(SIZES["src"], ns.PoissonSource(rate=40.0), name="src")
    out = net.population(SIZES["out"], ns.LIF(tau_m=10.0), name="out")
    quiet = net.population(SIZES["quiet"], ns.LIF(), name="quiet")
    net.projection(src, out, ns.FixedProbability(0.5), weight=5.0)
    for pop in (src, out, quiet):
        net.spike_monitor(pop)
    net.run(300.0, progress=False)
    with ns.LogReader(path) as log:
        assert log.spikes("out")[0].size > 0 and log.spikes("quiet")[0].size == 0
    return path


def read_units(path):
    pynwb = pytest.importorskip("pynwb")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        units = nwb.units
        rows = [(units["population"][k], int(units["neuron"][k]), int(units["batch"][k]),
                 np.asarray(units["spike_times"][k]), np.asarray(units["obs_intervals"][k]))
                for k in range(len(units))]
        return rows, nwb.notes, nwb.session_start_time, units.spike_times.data.dtype


def expected_times(log, population, neuron, row):
    steps, neurons, rows = log.spikes(population)
    return steps[(neurons == neuron) & (rows == row)] * log.dt / 1000


def test_round_trip_is_exact_and_keeps_silent_neurons(run_log, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    target = tmp_path / "run.nwb"
    with ns.LogReader(run_log) as log:
        n = export_nwb(log, target)
        assert pynwb.validate(path=str(target)) == []  # schema-valid NWB
        assert n == 2 * sum(SIZES.values())
        units, notes, start, dtype = read_units(target)
        assert len(units) == n and dtype == np.float64
        # order: population, batch row, neuron
        assert [(p, i, b) for p, i, b, _, _ in units] == [
            (p, i, b) for p in SIZES for b in range(2) for i in range(SIZES[p])]
        for pop, neuron, row, times, obs in units:
            assert np.array_equal(times, expected_times(log, pop, neuron, row)), (pop, neuron, row)
            assert obs.tolist() == [[0.0, 0.3]]
        assert sum(len(t) for *_, t, _ in units) == sum(log.spikes(p)[0].size for p in SIZES)
        assert all(len(t) == 0 for p, *_, t, _ in units if p == "quiet")
        assert start == datetime.fromisoformat(log.attrs["started_at"])
        assert start.tzinfo is not None
        for line in ("neurosim version: " + ns.__version__, "seed: 3", "dt: 0.1 ms",
                     "backend: numba", "completed: True"):
            assert line in notes
        assert "INCOMPLETE" not in notes


def test_one_batch_row_and_some_populations(run_log, tmp_path):
    pytest.importorskip("pynwb")
    target = tmp_path / "row1.nwb"
    with ns.LogReader(run_log) as log:
        assert export_nwb(log, target, populations=["out"], batch=1) == SIZES["out"]
        units, *_ = read_units(target)
        assert {(p, b) for p, _, b, _, _ in units} == {("out", 1)}
        for pop, neuron, row, times, _ in units:
            assert np.array_equal(times, expected_times(log, pop, neuron, row))
        with pytest.raises(ValueError, match=r"batch row must be an integer in \[0, 2\)"):
            export_nwb(log, tmp_path / "bad.nwb", batch=2)
        with pytest.raises(KeyError, match="no spikes recorded"):
            export_nwb(log, tmp_path / "bad.nwb", populations=["nope"])
        assert not (tmp_path / "bad.nwb").exists()


def test_existing_file_is_kept_unless_overwrite(run_log, tmp_path):
    pytest.importorskip("pynwb")
    target = tmp_path / "run.nwb"
    target.write_bytes(b"precious")
    with ns.LogReader(run_log) as log:
        with pytest.raises(FileExistsError, match="overwrite=True"):
            export_nwb(log, target)
        assert target.read_bytes() == b"precious"
        assert export_nwb(log, target, populations=["src"], overwrite=True) == 2 * SIZES["src"]
    assert len(read_units(target)[0]) == 2 * SIZES["src"]
    assert sorted(os.listdir(tmp_path)) == ["run.nwb"]  # no partial file left


def test_incomplete_log_exports_what_it_has_and_says_so(run_log, tmp_path):
    pytest.importorskip("pynwb")
    cut = tmp_path / "cut.h5"
    shutil.copy(run_log, cut)
    with h5py.File(cut, "r+") as f:  # what a killed run leaves: completed never set
        f.attrs["completed"] = False
        f.attrs["started_at"] = "2024-05-06T07:08:09"  # and a stamp without a zone
    with ns.LogReader(cut) as log:
        assert not log.completed
        export_nwb(log, tmp_path / "cut.nwb", populations=["out"])
        units, notes, start, _ = read_units(tmp_path / "cut.nwb")
        for pop, neuron, row, times, _ in units:
            assert np.array_equal(times, expected_times(log, pop, neuron, row))
    assert "completed: False" in notes and "INCOMPLETE" in notes
    assert start == datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def test_without_pynwb_says_how_to_install(run_log, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynwb", None)  # makes `import pynwb` fail
    with ns.LogReader(run_log) as log:
        with pytest.raises(ImportError, match=r'pip install -c constraints.txt -e "\.\[nwb\]"'):
            export_nwb(log, tmp_path / "x.nwb")


def test_export_command_writes_nwb_and_refuses_to_overwrite(tmp_path, capsys):
    pytest.importorskip("pynwb")
    from neurosim.cli import main

    path = str(tmp_path / "run.h5")
    net = ns.Network(dt=0.1, seed=3, log=path)
    pop = net.population(20, ns.PoissonSource(rate=40.0), name="p")
    net.spike_monitor(pop)
    net.run(200.0, progress=False)
    out = str(tmp_path / "run.nwb")
    assert main(["export", path, "--nwb", out]) == 0
    assert capsys.readouterr().out.strip() == f"{out}: 20 units"
    assert main(["export", path, "--nwb", out]) == 1
    err = capsys.readouterr().err
    assert "exists" in err and err.count("\n") == 1
    assert main(["export", path, "--nwb", out, "--overwrite"]) == 0
