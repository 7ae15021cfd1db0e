"""examples/mnist_bptt.py as a user runs it: a JSON line, an HDF5 log, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import pytest

from data_paths import MNIST, ROOT, requires_datasets

SCRIPT = os.path.join(ROOT, "examples", "mnist_bptt.py")


def _run(tmp_path, *args):
    return subprocess.run([sys.executable, SCRIPT, "--data", MNIST, "--no-progress", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


@requires_datasets
@pytest.mark.parametrize("method", ["bptt", "online"])
def test_a_small_run_prints_its_result_and_writes_its_log(tmp_path, method):
    proc = _run(tmp_path, "--method", method, "--train", "1024", "--test", "200", "--hidden", "64",
                "--steps", "8", "--batch", "64", "--lr", "2e-3", "--log", "run.h5")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["method"] == method and result["epochs"] == 1 and result["steps"] == 8
    assert 0.3 < result["test_accuracy"] <= 1.0 and result["samples_per_second"] > 0
    assert result["peak_rss_mb"] > 0
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert f.attrs["completed"]
        assert f["results"].attrs["method"] == method
        assert f["results/test_accuracy"][-1] == pytest.approx(result["test_accuracy"])
        assert f["results/weights/input_hidden"].shape == (784, 64)
        assert "spikes/output/step" in f  # the last test pass


@requires_datasets
def test_bad_input_is_one_line_naming_the_flag(tmp_path):
    proc = _run(tmp_path, "--train", "10", "--batch", "64")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "mnist_bptt.py: error: --train (10) must be at least --batch (64)")
    assert "Traceback" not in proc.stderr
    proc = _run(tmp_path, "--lr", "-1")
    assert proc.returncode == 2 and "--lr must be positive" in proc.stderr
    (tmp_path / "taken.h5").write_bytes(b"")
    proc = _run(tmp_path, "--train", "128", "--test", "10", "--log", "taken.h5")
    assert proc.returncode == 2 and "the log exists; choose another --log" in proc.stderr
