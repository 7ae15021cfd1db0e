"""The command line and the CUBA benchmark network."""

import json
import os
import subprocess
import sys

import pytest

import neurosim as ns
from neurosim.cli import main
from neurosim.networks import build_cuba

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def cuba_log(tmp_path_factory):
    """CUBA, 4000 neurons, 1 s, run by the example script exactly as a user would."""
    path = tmp_path_factory.mktemp("cuba") / "cuba.h5"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "cuba.py"), "--neurons",
                           "4000", "--duration", "1000", "--seed", "1", "--log", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return path, json.loads(proc.stdout.strip().splitlines()[-1])


def test_cuba_rate_is_asynchronous_irregular_range(cuba_log):
    path, result = cuba_log
    for key in ("neurons", "duration_ms", "build_seconds", "run_seconds", "spikes", "rate_hz"):
        assert key in result
    with ns.LogReader(path) as log:
        assert log.completed
        summary = log.summary()
        steps, neurons, _ = log.spikes("exc")
    rate = summary["populations"]["exc"]["rate_hz"]
    assert rate == pytest.approx(steps.size / 3200 / 1.0)
    assert 2.0 < rate < 30.0
    assert rate == pytest.approx(result["rate_hz"])
    # irregular firing: the coefficient of variation of inter-spike intervals is near 1
    import numpy as np
    cvs = []
    for n in range(0, 3200, 16):
        isi = np.diff(steps[neurons == n])
        if isi.size >= 3:
            cvs.append(isi.std() / isi.mean())
    assert 0.5 < np.median(cvs) < 1.5


def test_inspect_prints_summary_and_json(cuba_log, capsys):
    path, _ = cuba_log
    assert main(["inspect", str(path)]) == 0
    text = capsys.readouterr().out
    assert "completed" in text and "exc" in text and "3200" in text and "Hz" in text
    assert "exc: i_e, i_i, v" in text
    assert main(["inspect", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["completed"] is True and data["duration_ms"] == pytest.approx(1000.0)
    assert data["populations"]["inh"]["size"] == 800 and data["populations"]["exc"]["spikes"] > 0


def test_inspect_errors_are_one_line_and_nonzero(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    for target in (str(bad), str(tmp_path / "missing.h5")):
        proc = subprocess.run([sys.executable, "-m", "neurosim.cli", "inspect", target],
                              capture_output=True, text=True)
        assert proc.returncode == 1
        assert proc.stderr.count("\n") == 1 and "error" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_cuba_example_reports_bad_arguments_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "cuba.py"), "--dt", "-1",
                           "--log", str(tmp_path / "x.h5")], capture_output=True, text=True)
    assert proc.returncode == 2 and "--dt must be positive" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cuba_example_refuses_an_existing_log_naming_the_flags(tmp_path):
    log = tmp_path / "cuba.h5"
    cmd = [sys.executable, os.path.join(ROOT, "examples", "cuba.py"), "--neurons", "400",
           "--duration", "20", "--log", str(log), "--no-progress"]
    assert subprocess.run(cmd, capture_output=True, text=True, timeout=300).returncode == 0
    first = log.read_bytes()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--log" in proc.stderr and "--overwrite" in proc.stderr
    assert "overwrite=True" not in proc.stderr
    assert log.read_bytes() == first  # the saved log is untouched
    proc = subprocess.run(cmd + ["--overwrite"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_cuba_batch_rows_are_independent_samples():
    net = ns.Network(dt=0.1, seed=3, batch=3)
    cuba = build_cuba(net, 400)
    net.spike_monitor(cuba.exc)
    net.run(100.0, progress=False)
    steps, neurons, rows = net.reader().spikes("exc")
    counts = [int((rows == r).sum()) for r in range(3)]
    assert all(c > 0 for c in counts) and len(set(counts)) > 1
