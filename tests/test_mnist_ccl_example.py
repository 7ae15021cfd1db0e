"""examples/mnist_ccl.py as a user runs it: a JSON line, an HDF5 training log, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from data_paths import DATASETS, ROOT, requires_datasets

SCRIPT = os.path.join(ROOT, "examples", "mnist_ccl.py")


def _run(tmp_path, *args):
    return subprocess.run([sys.executable, SCRIPT, "--data", DATASETS, "--no-progress", "--threads", "1",
                           *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)


@requires_datasets
@pytest.mark.parametrize("args", [("--method", "ccl"), ("--method", "dfa", "--dataset", "fashion"),
                                  ("--method", "ccl", "--engine", "torch"), ("--method", "bp"),
                                  ("--method", "fa"), ("--method", "ccl", "--arch", "cnn", "--width", "0.25"),
                                  ("--method", "ccl", "--arch", "snn")])
def test_a_short_run_prints_its_result_and_writes_its_log(tmp_path, args):
    proc = _run(tmp_path, *args, "--epochs", "2", "--train", "3000", "--batch", "32", "--log", "run.h5")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["epochs"] == 2 and result["method"] == args[1] and result["seconds"] > 0
    assert 0.3 < result["test_accuracy"] <= 1.0  # above chance (0.1) after 190 batches
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert f.attrs["completed"] and f.attrs["format"] == "neurosim-training-log"
        assert f.attrs["epochs_done"] == 2 and f.attrs["seed"] == 2023
        assert len(f["epochs/validation_loss"]) == 2
        best = int(np.argmin(f["epochs/validation_loss"][:])) + 1
        assert f["results"].attrs["best_epoch"] == best
        assert f["results"].attrs["test_accuracy"] == pytest.approx(result["test_accuracy"])
        assert sum(1 for _ in f["weights"]) > 0
    inspect = subprocess.run([sys.executable, "-m", "neurosim.cli", "inspect", "run.h5"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert inspect.returncode == 0, inspect.stderr
    assert "training log (complete)" in inspect.stdout and f"method {args[1]}" in inspect.stdout
    assert f"test accuracy {100 * result['test_accuracy']:.2f}%" in inspect.stdout



@requires_datasets
def test_the_autoencoder_reconstructs_far_better_than_zeros(tmp_path):
    proc = _run(tmp_path, "--arch", "ae", "--dataset", "fashion", "--epochs", "2", "--train", "3000",
                "--batch", "32", "--log", "ae.h5")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # the images are standardised (mean 0, variance 1 over the data set): zeros score about 1
    assert result["arch"] == "ae" and 0.0 < result["test_mse"] < 0.5 and result["test_accuracy"] is None
    with h5py.File(tmp_path / "ae.h5", "r") as f:
        assert f.attrs["completed"] and f.attrs["epochs_done"] == 2
        assert f["results"].attrs["test_loss"] == pytest.approx(result["test_mse"], abs=1e-5)


@requires_datasets
def test_an_interrupted_run_leaves_a_readable_incomplete_log(tmp_path):
    proc = subprocess.Popen([sys.executable, SCRIPT, "--data", DATASETS, "--no-progress", "--threads", "1",
                             "--epochs", "50", "--train", "3000", "--log", "run.h5"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run.h5"
    deadline = time.time() + 300
    while time.time() < deadline:  # wait until an epoch is on disk
        time.sleep(0.5)
        if log.exists():
            try:
                with h5py.File(log, "r", swmr=True) as f:
                    if f.attrs["epochs_done"] >= 1:
                        break
            except OSError:
                pass
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    with h5py.File(log, "r", swmr=True) as f:
        assert not f.attrs["completed"]
        assert f.attrs["epochs_done"] >= 1
        assert len(f["epochs/train_loss"]) >= f.attrs["epochs_done"]
    inspect = subprocess.run([sys.executable, "-m", "neurosim.cli", "inspect", "run.h5"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert inspect.returncode == 0, inspect.stderr
    assert "training log (INCOMPLETE:" in inspect.stdout and "test accuracy" not in inspect.stdout


@requires_datasets
def test_bad_input_is_one_line_naming_the_flag(tmp_path):
    proc = _run(tmp_path, "--arch", "cnn", "--method", "fa")
    assert proc.returncode == 2 and "--method fa runs on the MLP only" in proc.stderr
    proc = _run(tmp_path, "--train", "100", "--epochs", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "mnist_ccl.py: error: --train leaves 90 training images, fewer than --batch 256")
    assert "Traceback" not in proc.stderr
    proc = _run(tmp_path, "--engine", "numba", "--arch", "cnn")
    assert proc.returncode == 2 and "--engine numba/torch runs the CCL MLP" in proc.stderr
    (tmp_path / "taken.h5").write_bytes(b"")
    proc = _run(tmp_path, "--train", "1000", "--epochs", "1", "--log", "taken.h5")
    assert proc.returncode == 2 and "the log exists; choose another --log" in proc.stderr
    proc = _run(tmp_path, "--data", str(tmp_path), "--epochs", "1")
    assert proc.returncode == 2 and "Pass --data DIR" in proc.stderr
