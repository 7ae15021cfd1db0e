"""The CUDA path (torch backend on a GPU); skipped where torch sees no GPU.

Run on a GPU machine with ``bash benchmarks/gpu_check.sh``."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.networks import build_cuba

from data_paths import MNIST, ROOT

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")]


def test_diehl_cook_trains_and_responds_on_cuda():
    from neurosim.networks.diehl_cook import DiehlCook2015

    images = np.random.default_rng(0).integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    dc = DiehlCook2015(20, batch=4, seed=0, device="cuda")
    counts = dc.train(images, progress=False)  # two batches: the threshold carries over
    assert counts.shape == (12, 20) and dc.exc.state["theta"].device.type == "cuda"
    assert dc._theta.device.type == "cuda" and float(dc._theta.sum()) > 0
    dc.assign_labels(dc.respond(images, progress=False), np.arange(12) % 10)


def spikes_of_cuba(device: str) -> tuple[int, float]:
    net = ns.Network(dt=0.1, seed=1, backend="torch", device=device)
    cuba = build_cuba(net, 4000)
    net.spike_monitor(cuba.exc)
    net.run(300.0, progress=False)
    steps, _, _ = net.reader().spikes("exc")
    return len(steps), len(steps) / (cuba.exc.n * 0.3)


def test_cuba_on_cuda_fires_like_on_the_cpu():
    # index_add_ sums in a different order on the GPU, so trajectories diverge late;
    # the rates must agree
    n_cpu, rate_cpu = spikes_of_cuba("cpu")
    n_gpu, rate_gpu = spikes_of_cuba("cuda")
    assert rate_gpu == pytest.approx(rate_cpu, rel=0.1), (n_cpu, n_gpu)


@pytest.mark.skipif(not os.path.isdir(MNIST), reason=f"MNIST not found at {MNIST}")
def test_mnist_example_runs_on_cuda(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "mnist_stdp.py"),
                           "--device", "cuda", "--train", "48", "--test", "16", "--assign", "48",
                           "--data", MNIST, "--log", str(tmp_path / "m.h5"), "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["train_samples"] == 48
