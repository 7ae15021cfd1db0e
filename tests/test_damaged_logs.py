"""Damaged logs: truncated copies, garbage after the HDF5 signature, crafted values.

The reader must answer within seconds on every damaged file: refuse it with a
LogError, or recover what the file still holds and say how much. The damaged files are made from a small real run (docs/log_format.md, "Damaged files").
"""

import os
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import neurosim as ns

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture(scope="module")
def intact(tmp_path_factory):
    """400 Poisson neurons at 100 Hz for 1 s (40,000 spikes: several chunks per dataset),
    40 LIF neurons sampled every step, and weight snapshots."""
    path = str(tmp_path_factory.mktemp("damaged") / "run.h5")
    net = ns.Network(dt=0.1, seed=3, log=path)
    src = net.population(400, ns.PoissonSource(rate=100.0), name="src")
    exc = net.population(40, ns.LIF(tau_m=10.0), name="exc")
    ff = net.projection(src, exc, ns.FixedProbability(0.2), weight=ns.Uniform(0.0, 2.0),
                        sparse=False, name="ff")
    net.spike_monitor(src)
    net.spike_monitor(exc)
    net.state_monitor(exc, ["i_e", "v"], neurons=[0, 3, 7], every=1)
    net.weight_monitor(ff, every=1000)
    net.run(1000.0, progress=False)
    return path


def truncated(src, folder, fraction):
    data = open(src, "rb").read()
    path = os.path.join(folder, f"cut{fraction:g}.h5")
    with open(path, "wb") as fh:
        fh.write(data[:int(len(data) * fraction)])
    return path


def garbage_after_signature(src, folder):
    rng = np.random.default_rng(0)
    path = os.path.join(folder, "garbage.h5")
    with open(path, "wb") as fh:  # v3-looking start, so HDF5 itself would try to read on
        fh.write(b"\x89HDF\r\n\x1a\n\x03\x08\x08\x00" + rng.bytes(os.path.getsize(src) - 12))
    return path


def edited(src, folder, name, edit):
    path = os.path.join(folder, f"{name}.h5")
    shutil.copy(src, path)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def set_neuron(f):
    f["spikes/src/neuron"][17] = 10 ** 9


@pytest.fixture(scope="module")
def damaged(intact, tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("copies"))
    files = {f"cut{f:g}": truncated(intact, folder, f) for f in (0.001, 0.1, 0.5, 0.99)}
    files["garbage"] = garbage_after_signature(intact, folder)
    files["dt0"] = edited(intact, folder, "dt0", lambda f: f.attrs.__setitem__("dt_ms", 0.0))
    files["neuron1e9"] = edited(intact, folder, "neuron1e9", set_neuron)
    return files


def test_a_tiny_truncated_file_fails_fast_in_the_reader(damaged):
    """The hang: h5py's SWMR-mode retries sleep for hours on a file cut to its first 0.1%
    (or 10%, or garbage after the signature). LogReader must refuse or open each at once.
    In a child process, so that a hang is a failure, not a stuck test run."""
    probe = ("import sys, time, neurosim as ns\n"
             "for path in sys.argv[1:]:\n"
             "    start = time.perf_counter()\n"
             "    try:\n"
             "        ns.LogReader(path).summary()\n"
             "    except ns.LogError:\n"
             "        pass\n"
             "    print(round(time.perf_counter() - start, 3), flush=True)\n")
    paths = [damaged[k] for k in ("cut0.001", "cut0.1", "garbage")]
    try:
        proc = subprocess.run([sys.executable, "-c", probe, *paths], env=ENV, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"LogReader hung; seconds per file before that: {exc.stdout!r}")
    assert proc.returncode == 0, proc.stderr
    assert [float(t) < 1.0 for t in proc.stdout.split()] == [True] * 3, proc.stdout


def test_truncated_files_give_a_prefix_of_the_events_and_say_how_much(intact, damaged):
    full = ns.LogReader(intact)
    steps, neurons, rows = full.spikes("src")
    cut_inside = 0
    for label in ("cut0.1", "cut0.5", "cut0.99"):
        try:
            log = ns.LogReader(damaged[label])
        except ns.LogError:  # 10%: the attributes may lie in the part cut off
            assert label == "cut0.1"
            continue
        with log:
            assert log.recovery is not None and "recovered" in log.recovery.note()
            s, n, r = log.spikes("src")
            k = len(s)
            assert k <= len(steps) and (k > 0 or label == "cut0.1")
            np.testing.assert_array_equal(s, steps[:k])
            np.testing.assert_array_equal(n, neurons[:k])
            stop = log.recording_stop_step("src")
            # the events recovered are exactly those of the steps before the record's end
            assert k == int(np.count_nonzero(steps < stop))
            cut_inside += 0 < stop < full.steps
            summary = log.summary("src")
            assert summary["populations"]["src"]["spikes"] == k
            assert summary["populations"]["src"]["window_ms"][1] == pytest.approx(stop * log.dt)
            assert summary["recovered"] == log.recovery.note()
            # state: the rows recovered, equal to the intact file's first rows
            for variable in ("v", "i_e"):
                t, values = log.state("exc", variable)
                assert len(t) == len(values)
                np.testing.assert_array_equal(values, full.state("exc", variable)[1][:len(values)])
    assert cut_inside  # some copy ends inside the spike record, not at a record's edge
    full.close()


def test_a_truncated_file_never_reads_the_zeros_past_its_end(tmp_path):
    """HDF5 reads zeros past the end of a file: an uncompressed dataset cut off reads as
    zeros without an error. Such a dataset is recovered only if it is whole."""
    from neurosim.log_open import check_file, open_hdf5
    from neurosim.log_recovery import survey

    path = tmp_path / "contiguous.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f["first"] = np.arange(100)
        f["last"] = np.arange(1, 100_001)  # contiguous, uncompressed, at the end of the file
        offset = f["last"].id.get_offset()
    data = path.read_bytes()
    path.write_bytes(data[:offset + 4000])
    check = check_file(str(path))
    assert check.truncated
    with open_hdf5(str(path), swmr=True) as f:
        assert not f["last"][-10:].any()  # what a naive reader would take for data
        rec = survey(f, check.size, check.describe())
    assert rec.rows["first"] == (100, 100) and rec.rows["last"] == (0, 100_000)


def test_the_superblock_check_matches_hdf5(intact, tmp_path):
    from neurosim.log_open import check_file, lookup3

    check = check_file(intact)
    assert check.size == check.end_of_file == os.path.getsize(intact) and not check.truncated
    assert lookup3(b"") == 0xDEADBEEF and lookup3(b"Four score and seven years ago") == 0x17770551
    old = tmp_path / "v0.h5"  # h5py's default (earliest) format: superblock version 0
    with h5py.File(old, "w") as f:
        f["x"] = np.arange(3)
    assert check_file(str(old)).version == 0 and not check_file(str(old)).truncated
    for content, message in ((b"", "is empty"), (b"not hdf5 at all", "no HDF5 signature"),
                             (b"\x89HDF\r\n\x1a\n", "the file ends")):
        bad = tmp_path / "bad.h5"
        bad.write_bytes(content)
        with pytest.raises(ns.LogError, match=message):
            check_file(str(bad))


def test_values_read_are_checked(intact, tmp_path):
    def crafted(name, edit):
        return edited(intact, str(tmp_path), name, edit)

    cases = [
        ("zero-dt", lambda f: f.attrs.__setitem__("dt_ms", 0.0), "dt_ms is 0.0"),
        ("nan-dt", lambda f: f.attrs.__setitem__("dt_ms", float("nan")), "dt_ms is nan"),
        ("neg-batch", lambda f: f.attrs.__setitem__("batch", -2), "batch size is -2"),
        ("bad-json", lambda f: f.attrs.__setitem__("network_json", "{nope"), "not valid JSON"),
        ("size0", lambda f: f.attrs.__setitem__("network_json", f.attrs["network_json"].replace(
            '"size": 400', '"size": 0')), "the size 0"),
    ]
    for name, edit, message in cases:
        with pytest.raises(ns.LogError, match=message):
            ns.LogReader(crafted(name, edit))

    with ns.LogReader(crafted("neuron", set_neuron)) as log:  # before anything is allocated
        for read in (lambda: log.spikes("src"), lambda: log.summary(), lambda: log.summary("src", 0.0, 50.0)):
            with pytest.raises(ns.LogError, match=r"spikes/src/neuron\[17\] is 1000000000, but "
                                                  r"population 'src' has 400 neurons"):
                read()
        assert log.summary("src", 500.0)["populations"]["src"]["spikes"] > 0  # outside the damage

    def bad_state_neuron(f):
        f["state/exc/neurons"][1] = 99

    with ns.LogReader(crafted("state-neuron", bad_state_neuron)) as log:
        with pytest.raises(ns.LogError, match=r"state/exc/neurons\[1\] is 99, but population 'exc' has 40"):
            log.state_neurons("exc")

    def bad_row(f):
        f["spikes/src/batch"][5] = 3

    with ns.LogReader(crafted("row", bad_row)) as log:
        with pytest.raises(ns.LogError, match=r"spikes/src/batch\[5\] is 3, but the run had 1 batch"):
            log.spikes("src")
        with pytest.raises(ns.LogError, match=r"batch\[5\]"):
            log.summary(batch=0)

    def unsorted(f):
        f["spikes/src/step"][100] = 9999

    with ns.LogReader(crafted("unsorted", unsorted)) as log:
        with pytest.raises(ns.LogError, match=r"step\[101\] .* before the event preceding it"):
            log.spikes("src")


def test_windows_must_be_finite_and_not_empty(intact):
    with ns.LogReader(intact) as log:
        for start, stop, message in ((float("nan"), None, "finite"), (None, float("inf"), "finite"),
                                     (None, -5.0, "finite time >= 0"), (None, 0.0, "empty"),
                                     (50.0, 10.0, "empty")):
            with pytest.raises(ValueError, match=message):
                log.summary(start_ms=start, stop_ms=stop)
            with pytest.raises(ValueError, match=message):
                log.spikes("src", start, stop)
