"""HDF5 and memory logs: round trips, metadata, crash safety, state files."""

import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

import neurosim as ns
from neurosim.networks import build_cuba


def small_net(log=None, seed=4, engine=None):
    net = ns.Network(dt=0.1, seed=seed, log=log, batch=2, **(engine or {}))
    src = net.population(60, ns.PoissonSource(rate=50.0), name="src")
    out = net.population(30, ns.LIF(tau_m=10.0), name="out")
    proj = net.projection(src, out, ns.FixedProbability(0.3), weight=ns.Uniform(1.0, 4.0))
    dense = net.projection(out, out, ns.AllToAll(), weight=0.05, sparse=False)
    net.spike_monitor(src)
    net.spike_monitor(out)
    net.state_monitor(out, ["v", "i_e"], neurons=[0, 5, 7], every=3)
    net.weight_monitor(proj, every=500)
    net.weight_monitor(dense, every=700)
    return net


def test_hdf5_round_trip_matches_memory_log(tmp_path, reproducible_engine):
    engine = reproducible_engine  # the two runs must be bit-identical
    path = tmp_path / "run.h5"
    disk, mem = small_net(log=path, engine=engine), small_net(engine=engine)
    for net in (disk, mem):
        net.run(250.0, progress=False)
    with ns.LogReader(path) as a:
        b = mem.reader()
        assert a.completed and b.completed
        for pop in ("src", "out"):
            for x, y in zip(a.spikes(pop), b.spikes(pop)):
                np.testing.assert_array_equal(x, y)
        assert a.spikes("out")[0].size > 0
        for var in ("v", "i_e"):
            sa, va = a.state("out", var)
            sb, vb = b.state("out", var)
            np.testing.assert_array_equal(sa, sb)
            np.testing.assert_array_equal(va, vb)
            assert va.shape == (len(range(0, 2500, 3)), 2, 3)
        np.testing.assert_array_equal(a.state_neurons("out"), [0, 5, 7])
        steps, snaps = a.weights("src_out")
        assert steps.tolist() == [0, 500, 1000, 1500, 2000]
        assert snaps.shape[1:] == disk.projections["src_out"].weight.shape
        np.testing.assert_array_equal(snaps[-1], disk.projections["src_out"].weight.detach().cpu().numpy())
        _, dense = a.weights("out_out")
        assert dense.shape == (4, 30, 30)
        meta = a.attrs
        assert meta["seed"] == 4 and meta["dt_ms"] == 0.1 and meta["backend"] == engine["backend"]
        assert meta["neurosim_version"] == ns.__version__ and meta["completed"]
        assert meta["started_at"] and meta["ended_at"]
        assert json.loads(meta["network_json"])["populations"][1]["name"] == "out"


def test_log_datasets_are_chunked_compressed_and_extendible(tmp_path):
    path = tmp_path / "run.h5"
    net = small_net(log=path)
    net.run(100.0, progress=False)
    with h5py.File(path, "r") as f:
        ds = f["spikes/out/step"]
        assert ds.chunks is not None and ds.compression == "gzip" and ds.maxshape == (None,)
        assert f["state/out/v"].maxshape == (None, 2, 3)
        assert f["state/out/v"].attrs["unit"] == "mV"


def test_state_recording_keeps_log_writes_per_chunk(tmp_path, monkeypatch):
    from neurosim import network
    from neurosim.recording import hdf5_log

    monkeypatch.setattr(network, "MAX_CHUNK_STEPS", 1000)
    calls = []
    real = hdf5_log.HDF5Log.append
    monkeypatch.setattr(hdf5_log.HDF5Log, "append",
                        lambda self, chunk, steps: (calls.append(steps), real(self, chunk, steps)))
    net = small_net(log=tmp_path / "run.h5")
    net.run(steps=3500, progress=False)
    assert calls == [1000, 2000, 3000, 3500]  # whole chunks, then the remainder at the end


def test_second_run_appends_to_the_same_log(tmp_path):
    path = tmp_path / "run.h5"
    net = small_net(log=path)
    net.run(50.0, progress=False)
    net.run(50.0, progress=False)
    with ns.LogReader(path) as log:
        assert log.completed and log.steps == 1000
        steps, _, _ = log.spikes("src")
        assert steps.max() > 500 and np.all(np.diff(steps) >= 0)


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import neurosim as ns
    from neurosim.networks import build_cuba
    net = ns.Network(dt=0.1, seed=9, log=sys.argv[1])
    cuba = build_cuba(net, 400)
    net.spike_monitor(cuba.exc)
    net.state_monitor(cuba.exc, ["v"], neurons=[0, 1], every=10)
    def die(net):
        os.kill(os.getpid(), signal.SIGKILL)
    net.add_callback(lambda n: die(n) if n.clock.step == 5500 else None)
    net.run(steps=20000, progress=False)
""")


def test_sigkill_midway_leaves_readable_incomplete_log(tmp_path):
    path = tmp_path / "killed.h5"
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    with ns.LogReader(path) as log:
        assert not log.completed
        assert log.steps == 5000  # the last whole chunk flushed before the kill
        steps, neurons, _ = log.spikes("exc")
        vsteps, _ = log.state("exc", "v")
    assert steps.max() < 5000 and vsteps.max() == 4990
    # the events up to the last flush are exactly those of a full run
    ref = ns.Network(dt=0.1, seed=9)
    cuba = build_cuba(ref, 400)
    ref.spike_monitor(cuba.exc)
    ref.run(steps=5000, progress=False)
    rs, rn, _ = ref.reader().spikes("exc")
    np.testing.assert_array_equal(steps, rs)
    np.testing.assert_array_equal(neurons, rn)
    # and the command line says it is incomplete
    out = subprocess.run([sys.executable, "-m", "neurosim.cli", "inspect", str(path), "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["completed"] is False and summary["steps"] == 5000
    text = subprocess.run([sys.executable, "-m", "neurosim.cli", "inspect", str(path)],
                          capture_output=True, text=True).stdout
    assert "INCOMPLETE" in text


def test_exception_during_run_leaves_log_marked_incomplete(tmp_path):
    path = tmp_path / "err.h5"
    net = small_net(log=path)

    def boom(net):
        if net.clock.step == 1200:
            raise RuntimeError("user callback failed")
    net.add_callback(boom)
    with pytest.raises(RuntimeError, match="user callback failed"):
        net.run(steps=3000, progress=False)
    with ns.LogReader(path) as log:
        assert not log.completed
        assert log.spikes("src")[0].max() < 1200


def test_existing_log_is_never_overwritten(tmp_path):
    path = tmp_path / "keep.h5"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="already exists"):
        ns.Network(log=path)
    assert path.read_bytes() == b"precious"


def test_save_and_load_state_continues_identically(tmp_path):
    def make():
        net = ns.Network(dt=0.1, seed=21)
        cuba = build_cuba(net, 300)
        net.spike_monitor(cuba.exc)
        return net
    a = make()
    a.run(100.0, progress=False)
    a.save_state(tmp_path / "state.h5")
    with h5py.File(tmp_path / "state.h5", "r") as f:
        assert f.attrs["format"] == "neurosim-state" and f.attrs["format_version"] == 2
    a.run(100.0, progress=False)
    b = make()
    b.load_state(tmp_path / "state.h5")
    assert b.clock.step == 1000
    b.run(100.0, progress=False)
    sa, na, _ = a.reader().spikes("exc")
    sb, nb, _ = b.reader().spikes("exc")
    np.testing.assert_array_equal(sa[sa >= 1000], sb)
    np.testing.assert_array_equal(na[sa >= 1000], nb)
    with pytest.raises(FileExistsError):
        a.save_state(tmp_path / "state.h5")


def test_state_dict_lists_all_state_and_rejects_mismatch():
    net = small_net()
    keys = set(net.state_dict())
    assert {"clock.step", "populations.out.v", "populations.out.i_e", "populations.out.ref",
            "populations.out.spike_history", "populations.out.input.i_ext",
            "projections.src_out.weight"} <= keys
    other = ns.Network()
    other.population(3, ns.LIF(), name="x")
    with pytest.raises(ValueError, match="does not match"):
        other.load_state_dict(net.state_dict())


def test_reset_state_restores_initial_values_and_clears_spikes_in_flight():
    net = ns.Network(dt=0.1, seed=2)
    pop = net.population(20, ns.LIF(), name="p", init={"v": ns.Uniform(-65.0, -55.0)})
    gen = net.population(1, ns.SpikeGenerator([0.5], [0]), name="g")
    net.projection(gen, pop, weight=5.0, delay=10)
    v0 = pop.state["v"].clone()
    net.run(steps=7, progress=False)  # spike emitted at step 5, still in flight
    net.reset_state()
    assert (pop.state["v"] == v0).all() and not pop.history.any()
    net.state_monitor(pop, ["i_e"])
    net.run(steps=20, progress=False)
    _, i_e = net.reader().state("p", "i_e")
    assert np.all(i_e == 0)  # the in-flight spike was cleared


def test_schedule_is_printable_and_profile_times_each_phase(engine):
    net = small_net(engine=engine)
    text = str(net.schedule)  # available before the first run
    net.run(20.0, progress=False, profile=True)
    assert text.index("inputs") < text.index("deliver") < text.index("neurons") < text.index("monitors")
    assert "src_out (dense)" in text and "out (LIF)" in text
    phases = {"inputs", "deliver", "neurons", "monitors"}
    assert phases <= set(net.timings) <= phases | {"traces", "rules", "compile"}
    assert all(v >= 0 for v in net.timings.values()) and net.timings["neurons"] > 0
