"""examples/mnist_modes.py as a user runs it (short budgets), the rotation it uses, and GatedMLP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from data_paths import DATASETS, ROOT, requires_datasets
from neurosim.datasets.transforms import rotate
from neurosim.networks.gated_mlp import GatedMLP

SCRIPT = os.path.join(ROOT, "examples", "mnist_modes.py")


def _run(tmp_path, *args):
    return subprocess.run([sys.executable, SCRIPT, "--data", DATASETS, "--no-progress", "--threads", "1",
                           *args], cwd=tmp_path, capture_output=True, text=True, timeout=900)


@requires_datasets
@pytest.mark.parametrize("spiking", [False, True])
def test_a_short_run_beats_chance_and_switches_modes_exactly(tmp_path, spiking):
    extra = ("--spiking", "--steps", "4", "--hidden", "64") if spiking else ()
    proc = _run(tmp_path, "--train", "6000", "--pretrain-epochs", "1", "--epochs", "1", "--log", "run.h5", *extra)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("frozen_rotated", "soft_rotated", "hard_rotated", "lora_rotated", "upright_frozen"):
        assert 0.5 < r[key] <= 1.0, (key, r)  # chance is 0.1
    # the switch back to the upright mode restores the frozen network exactly, and back again
    assert r["upright_after_switch"] == r["upright_frozen"]
    assert r["rotated_after_switch"] == r["hard_rotated"]
    hidden = 64 if spiking else 256  # (the example's default width)
    assert r["trainable_per_neuron"] == 2 and r["gate_parameters"] == 2 * 2 * hidden
    assert r["lora_parameters"] == r["rank"] * ((784 + hidden) + (hidden + hidden))  # rank-4 A and B, two layers
    assert 0.0 < r["active_fraction"] < 1.0
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert f.attrs["completed"] and f.attrs["example"] == "mnist_modes"
        assert list(f["epochs/phase"][:]) == [0, 1, 2]
        assert f["results"].attrs["hard_rotated"] == pytest.approx(r["hard_rotated"])
        upright = f["weights/h1.upright.gain"][:]
        assert np.all(upright == 1.0)
        assert not np.array_equal(f["weights/h1.rotated.gain"][:], upright)
    inspect = subprocess.run([sys.executable, "-m", "neurosim.cli", "inspect", "run.h5"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert inspect.returncode == 0, inspect.stderr
    assert "training log (complete)" in inspect.stdout and "hard_rotated" in inspect.stdout


def test_bad_flags_are_one_line_errors(tmp_path):
    proc = _run(tmp_path, "--epochs", "0")
    assert proc.returncode == 2 and "--epochs" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run(tmp_path, "--device", "cuda:7") if not torch.cuda.is_available() else None
    if proc is not None:
        assert proc.returncode == 2 and "--device" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run(tmp_path, "--data", str(tmp_path))
    assert proc.returncode == 2 and "Pass --data DIR" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "taken.h5").write_bytes(b"")
    proc = _run(tmp_path, "--log", "taken.h5")
    assert proc.returncode == 2 and "choose another --log" in proc.stderr


def test_rotation_by_90_degrees_is_exact_and_45_keeps_the_mass():
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 5, 20] = 200  # a pixel right of centre, near the top
    r90 = rotate(img, 90.0).numpy()
    # counter-clockwise: (row 5, col 20) goes to (row 28-1-20, col 5)
    assert r90[0, 7, 5] == pytest.approx(200.0, abs=1e-3)
    assert r90.sum() == pytest.approx(200.0, abs=1e-2)
    blob = np.zeros((1, 28, 28), np.float32)
    blob[0, 10:18, 10:18] = 1.0  # a centred square: rotation keeps its area
    assert float(rotate(blob, 45.0).sum()) == pytest.approx(64.0, rel=0.05)  # up to edge resampling
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        rotate(np.zeros((28, 28)), 45.0)


def test_gated_mlp_forward_is_the_matrix_product():
    """The graded network computes relu(relu(x W1) W2) W3 (no biases), in the neutral mode."""
    rng = np.random.default_rng(0)
    w = [rng.normal(size=s).astype(np.float32) * 0.3 for s in ((12, 9), (9, 7), (7, 4))]
    m = GatedMLP((12, 9, 7, 4), batch=5, weights=w)
    x = torch.as_tensor(rng.normal(size=(8, 12)).astype(np.float32))
    h = torch.relu(torch.relu(x @ torch.as_tensor(w[0])) @ torch.as_tensor(w[1])) @ torch.as_tensor(w[2])
    with torch.no_grad():
        assert torch.allclose(m.logits(x), h, atol=1e-5)
    with pytest.raises(ValueError, match="do not fit"):
        GatedMLP((12, 9, 4), weights=w)


TTA = os.path.join(ROOT, "examples", "mnist_tta.py")


@requires_datasets
def test_tta_short_run_adapts_and_logs(tmp_path):
    proc = subprocess.run([sys.executable, TTA, "--data", DATASETS, "--no-progress", "--threads", "1",
                           "--seeds", "1", "--epochs", "1", "--train", "5000", "--test", "1000",
                           "--log", "tta.h5"], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    # clearly above chance (0.1) even from a source model trained on 5,000 images for one
    # epoch (its mean over the five shifts is about 0.35; on the mild blur about 0.79)
    for key in ("source_only", "entropy_only", "hebbian_modulator"):
        assert 0.25 < r[key] <= 1.0
        assert r["per_shift"]["blur"][key] > 0.6
    # the local (homeostatic) drive undoes a contrast change that entropy alone does not
    contrast = r["per_shift"]["contrast"]
    assert contrast["hebbian_modulator"] > contrast["entropy_only"] + 0.1
    with h5py.File(tmp_path / "tta.h5", "r") as f:
        assert f.attrs["completed"] and f["weights/accuracy"].shape == (1, 5, 5)
        assert f["results"].attrs["hebbian_modulator"] == pytest.approx(r["hebbian_modulator"])
    bad = subprocess.run([sys.executable, TTA, "--train", "60000", "--data", DATASETS], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--train" in bad.stderr and "Traceback" not in bad.stderr


def test_shifts():
    from neurosim.datasets.transforms import blur, gaussian_noise, invert, low_contrast

    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(invert(invert(x)), x)
    assert torch.allclose(low_contrast(x, 0.5, 0.25), 0.25 + 0.5 * x)
    noisy = gaussian_noise(x, 0.3, torch.Generator().manual_seed(1))
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, x)
    flat = torch.ones(1, 1, 28, 28)
    assert torch.allclose(blur(flat, 1.0)[..., 5:-5, 5:-5], flat[..., 5:-5, 5:-5], atol=1e-6)  # keeps a constant
    point = torch.zeros(1, 1, 15, 15)
    point[..., 7, 7] = 1.0
    b = blur(point, 1.0)
    assert b.sum() == pytest.approx(1.0, abs=1e-5) and b[..., 7, 7] < 0.2
    with pytest.raises(ValueError, match="float tensor"):
        invert(torch.zeros(28, 28))
