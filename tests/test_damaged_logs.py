"""Damaged logs: truncated copies, garbage after the HDF5 signature, crafted values.

Every command on every damaged file must answer within seconds, in one line on
stderr, without a traceback: exit 1, or exit 0 with a "recovered N of M" note.
The damaged files are made from a small real run (docs/log_format.md, "Damaged files").
"""

import json
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
#: seconds one command may take on a damaged file (it takes well under one)
LIMIT_S = 5.0


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


COMMANDS = {
    "inspect": ["inspect", "{log}"],
    "raster": ["plot", "{log}", "raster", "--population", "src", "--out", "{out}.png"],
    "state": ["plot", "{log}", "state", "--out", "{out}.png"],
    "weights": ["plot", "{log}", "weights", "--out", "{out}.png"],
    "export": ["export", "{log}", "--nwb", "{out}.nwb", "--overwrite"],
}
#: (damaged file, command) -> (exit status, text the one stderr line must hold); for
#: truncated copies, what is recovered depends on where HDF5 put each chunk, so a
#: command that needs lost data may fail: RECOVERED_OR_DAMAGED accepts exit 0 with
#: the "recovered" note or exit 1 with the error and the note
RECOVERED_OR_DAMAGED = (None, None)
EXPECTED = {
    "cut0.001": {c: (1, "truncated to") for c in COMMANDS},
    "cut0.1": {c: RECOVERED_OR_DAMAGED for c in COMMANDS},
    "cut0.5": {"inspect": (0, "recovered"), "raster": (0, "recovered"), "export": (0, "recovered"),
               "state": RECOVERED_OR_DAMAGED, "weights": RECOVERED_OR_DAMAGED},
    "cut0.99": {c: (0, "recovered 45,785 of 45,785 spikes") for c in COMMANDS},
    "garbage": {c: (1, "superblock is damaged (checksum mismatch)") for c in COMMANDS},
    "dt0": {c: (1, "dt_ms is 0.0, not a positive number") for c in COMMANDS},
    "neuron1e9": {"inspect": (1, "spikes/src/neuron[17] is 1000000000, but population 'src' has "
                              "400 neurons"),
                  "raster": (1, "spikes/src/neuron[17] is 1000000000"),
                  "state": (0, ""), "weights": (0, ""),  # they do not read spikes
                  "export": (1, "spikes/src/neuron[17] is 1000000000")},
}


def check_result(rc, stderr, expected):
    """One command's exit status and stderr against EXPECTED."""
    want_rc, text = expected
    if expected == RECOVERED_OR_DAMAGED:
        want_rc = rc if rc in (0, 1) else 1
        text = "recovered" if rc == 0 else ("truncated to" if "the log is damaged" not in stderr
                                            else "the log is damaged: ")
    assert rc == want_rc
    assert "Traceback" not in stderr
    assert stderr.count("\n") == (1 if rc or text else 0)
    assert text in stderr


DRIVER = r"""
import contextlib, io, json, sys, time, traceback
from neurosim.cli import main
for name, argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
        except BaseException:
            traceback.print_exc()
            rc = "raised"
    print(json.dumps({"case": name, "rc": rc, "seconds": time.perf_counter() - start,
                      "stderr": err.getvalue()}), flush=True)
"""


def test_every_command_on_every_damaged_file_answers_in_one_line(damaged, tmp_path):
    """All commands on all damaged files, run by ``neurosim.cli.main`` in one child process
    (one interpreter start for all; the child is killed if any command hangs)."""
    cases = []
    for label, log in damaged.items():
        for command, argv in COMMANDS.items():
            out = str(tmp_path / f"{label}-{command}")
            cases.append([f"{label} {command}", [a.format(log=log, out=out) for a in argv]])
    try:
        proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(cases)], env=ENV, cwd=ROOT,
                              capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as exc:
        done = [json.loads(line)["case"] for line in (exc.stdout or b"").decode().splitlines()]
        pytest.fail(f"hung after {len(done)} commands; the next was {cases[len(done)][0]!r}")
    results = {r["case"]: r for r in map(json.loads, proc.stdout.splitlines())}
    assert len(results) == len(cases), proc.stderr
    for label, expected in EXPECTED.items():
        for command, want in expected.items():
            r = results[f"{label} {command}"]
            try:
                check_result(r["rc"], r["stderr"], want)
                assert r["seconds"] < LIMIT_S
            except AssertionError:
                pytest.fail(f"{label} {command}: {r}")


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
            # weights and state: a snapshot or sample counts only with its step, and the
            # note says as much as the reads give
            note = log.recovery.note()
            snapshots = log.length("weights/ff/step")
            assert snapshots == log.length("weights/ff/values") and f"{snapshots} of 10 weight" in note
            if snapshots:
                step, dense = log.weight_snapshot("ff", snapshots - 1)
                assert np.array_equal(dense, full.weight_snapshot("ff", snapshots - 1)[1])
            samples = sum(log.state_samples("exc", v) for v in ("v", "i_e"))
            assert f"{samples:,} of 20,000 state samples" in note
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


@pytest.mark.parametrize("args,flag", [
    (["--from", "nan"], "argument --from"), (["--to", "-5"], "argument --to"),
    (["--to", "inf"], "argument --to"), (["--from", "50", "--to", "10"], "--to 10"),
    (["--to", "0"], "--to 0"), (["--from", "5000"], "--from 5000"), (["--batch", "-1"], "argument --batch"),
    (["--batch", "3"], "--batch 3"), (["--population", "zzz"], "--population zzz")])
def test_inspect_refuses_bad_numbers_naming_the_flag(intact, args, flag, capsys):
    from neurosim.cli import main

    try:
        rc = main(["inspect", intact, *args])
    except SystemExit as exc:  # argparse: malformed value
        rc = exc.code
    err = capsys.readouterr().err
    assert rc in (1, 2) and flag in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_each_command_as_a_process_on_each_damaged_file(damaged, tmp_path):
    """The same as above, each command a real ``python -m neurosim.cli`` process, timed
    (interpreter and import start-up included)."""
    timings = []
    for label, expected in EXPECTED.items():
        for command, want in expected.items():
            out = str(tmp_path / f"{label}-{command}")
            argv = [a.format(log=damaged[label], out=out) for a in COMMANDS[command]]
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "neurosim.cli", *argv], env=ENV, cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)
            seconds = time.perf_counter() - start
            timings.append(f"{label:10s} {command:8s} rc={proc.returncode} {seconds:5.1f} s")
            check_result(proc.returncode, proc.stderr, want)
    print("\n".join(timings))


def test_without_a_way_to_bound_retries_swmr_mode_is_refused(damaged, monkeypatch):
    """On an h5py build whose HDF5 does not export H5Pset_metadata_read_attempts, a file
    that needs SWMR-read mode is refused in one line instead of risking the hang."""
    import neurosim.log_open as log_open

    def missing():
        raise AttributeError("undefined symbol: H5Pset_metadata_read_attempts")

    monkeypatch.setattr(log_open, "_read_attempts_setter", missing)
    with pytest.raises(ns.LogError, match="cannot bound that mode's retries"):
        ns.LogReader(damaged["cut0.5"])


def test_rows_past_the_flushed_steps_of_a_killed_writer_are_not_read(tmp_path):
    # a kill in the middle of appending a chunk can leave some columns longer than
    # others, and rows of steps the writer never counted as flushed
    import h5py

    import neurosim as ns

    path = tmp_path / "killed.h5"
    net = ns.Network(dt=0.1, seed=0, log=path)
    pop = net.population(50, ns.PoissonSource(rate=50.0), name="p")
    net.spike_monitor(pop)
    net.run(100.0, progress=False)
    whole = [x.copy() for x in net.reader().spikes("p")]
    del net
    with h5py.File(path, "r+") as f:
        for column, extra in (("step", 3), ("neuron", 2), ("batch", 2)):
            ds = f[f"spikes/p/{column}"]
            n = ds.shape[0]
            ds.resize(n + extra, axis=0)
            ds[n:] = 1000 if column == "step" else 0  # steps the writer had not flushed
        f.attrs["completed"] = False
    with ns.LogReader(path) as log:
        assert not log.completed and log.steps == 1000
        got = log.spikes("p")
        for a, b in zip(got, whole):
            np.testing.assert_array_equal(a, b)
        assert log.summary()["populations"]["p"]["spikes"] == len(whole[0])
