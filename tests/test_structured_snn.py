"""StructuredRecurrentSNN and examples/mnist_three_factor.py: local learning builds no
autograd graph, learns MNIST well above chance in a short run (both teaching readings),
BPTT trains the same network, and the example writes its JSON line, log and plot."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from data_paths import MNIST, ROOT, requires_datasets
from neurosim.networks.structured_snn import StructuredRecurrentSNN, ring_delays

SCRIPT = os.path.join(ROOT, "examples", "mnist_three_factor.py")


def _mnist(n_train: int, n_test: int):
    from neurosim.datasets import load_mnist

    x, y = load_mnist("train", MNIST)
    xt, yt = load_mnist("test", MNIST)
    return x[:n_train], y[:n_train], xt[:n_test], yt[:n_test]


def test_local_training_builds_no_autograd_graph():
    model = StructuredRecurrentSNN(n_in=30, hidden=(20,), classes=3, per_class=4, steps=8, batch=4,
                                   k_readout=3, modulators=4, seed=1)
    rng = np.random.default_rng(0)
    images, labels = rng.random((4, 30)), np.array([0, 1, 2, 1])

    def refuse(tensor):
        raise AssertionError(f"autograd saved a tensor for backward: {tuple(tensor.shape)}")

    before = {n: p.weight.clone() for n, p in model.net.projections.items()}
    with torch.autograd.graph.saved_tensors_hooks(refuse, lambda x: x):
        for _ in range(3):
            model.train_batch(images, labels)
    assert any(not torch.equal(p.weight, before[n]) for n, p in model.net.projections.items())
    for proj in model.net.projections.values():
        assert proj.weight.grad_fn is None and not proj.weight.requires_grad and proj.parameter is None
    for rule in model.rules:
        assert rule.eligibility.grad_fn is None and not rule.eligibility.requires_grad
    for mod in model.net.modulators:
        assert mod.value.grad_fn is None


def test_the_readout_is_a_small_world_population_code():
    model = StructuredRecurrentSNN(n_in=30, hidden=(40, 20), classes=4, per_class=5, steps=5, batch=2,
                                   k_readout=3, p_rewire=0.0, seed=2)
    assert model.readout.n == 20
    assert [p.name for p in model.to_readout] == ["lr0", "lr1"]
    for proj, h in zip(model.to_readout, model.hidden):
        mask = proj.mask.numpy()
        assert (mask.sum(1) == 3).all()  # k targets per hidden neuron
        # without rewiring, hidden neuron i reaches the readout neurons nearest i/N of the ring
        centre = (np.arange(h.n) + 0.5) * 20 / h.n - 0.5
        rows, cols = np.nonzero(mask)
        assert np.abs(((cols - centre[rows]) + 10) % 20 - 10).max() <= 1.5  # around the ring
    assert model.recurrent[0].mask is not None and not model.recurrent[0].mask.diagonal().any()
    with pytest.raises(ValueError, match="teaching must be one of"):
        StructuredRecurrentSNN(teaching="shout")
    with pytest.raises(ValueError, match="hidden must list at least one layer"):
        StructuredRecurrentSNN(hidden=())
    with pytest.raises(ValueError, match="k_readout=30 .* only 20 neurons .* raise per_class"):
        StructuredRecurrentSNN(per_class=2)
    with pytest.raises(ValueError, match="wta and teaching='clamp' do not mix"):
        StructuredRecurrentSNN(wta=True, teaching="clamp")


@requires_datasets
@pytest.mark.parametrize("teaching", ["error", "clamp"])
def test_a_short_local_run_beats_chance_clearly(teaching):
    x, y, xt, yt = _mnist(2400, 500)
    model = StructuredRecurrentSNN(hidden=(200,), batch=32, teaching=teaching, seed=0)
    model.train_epoch(x, y, progress=False)
    accuracy = model.evaluate(xt, yt, progress=False)
    assert accuracy > 0.5, accuracy  # chance: 0.1


def test_recurrent_delays_grow_with_the_distance_on_the_ring():
    delays = ring_delays(10, 5)
    assert delays.shape == (10, 10) and (delays == delays.T).all()
    for i in range(10):
        assert delays[i, (i + 1) % 10] == 1 and delays[i, (i + 5) % 10] == 5  # neighbour, opposite
        distance = np.minimum(np.abs(np.arange(10) - i), 10 - np.abs(np.arange(10) - i))
        order = np.argsort(distance, kind="stable")
        assert (np.diff(delays[i, order]) >= 0).all()  # farther: never sooner
    assert ring_delays(10, 1) == 1
    model = StructuredRecurrentSNN(n_in=30, hidden=(20,), classes=3, per_class=4, steps=6, batch=2,
                                   k_readout=3, recurrent_delays=4, seed=1)
    rec = model.recurrent[0]
    assert rec.sparse and [b.delay for b in rec.blocks] == [1, 2, 3, 4]
    assert all(rule.pre_delays is None or rule.pre_delays == (1, 2, 3, 4) for rule in model.rules)
    with pytest.raises(ValueError, match="recurrent_delays must be a positive integer"):
        StructuredRecurrentSNN(recurrent_delays=0)


@requires_datasets
@pytest.mark.parametrize("method", ["local", "bptt"])
def test_per_synapse_recurrent_delays_learn(method):
    x, y, xt, yt = _mnist(1600, 300)
    model = StructuredRecurrentSNN(hidden=(100,), batch=32, recurrent_delays=5, method=method, seed=3)
    before = model.recurrent[0].weight.clone()
    model.train_epoch(x, y, progress=False)
    assert (model.recurrent[0].weight - before).abs().max() > 1e-4  # the delayed synapses learned
    assert model.evaluate(xt, yt, progress=False) > 0.4


@requires_datasets
def test_bptt_trains_the_same_network():
    x, y, xt, yt = _mnist(1600, 300)
    local = StructuredRecurrentSNN(hidden=(100,), batch=32, seed=3)
    model = StructuredRecurrentSNN(hidden=(100,), batch=32, method="bptt", seed=3)
    for a, b in zip(local.net.projections.values(), model.net.projections.values()):
        assert torch.equal(a.weight, b.weight)  # the same initial network
    model.train_epoch(x, y, progress=False)
    assert all(p.parameter is not None for p in model.net.projections.values())
    assert model.evaluate(xt, yt, progress=False) > 0.4


def _run(tmp_path, *args):
    return subprocess.run([sys.executable, SCRIPT, "--data", MNIST, "--no-progress", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


@requires_datasets
def test_the_example_prints_its_result_and_logs_sampled_presentations(tmp_path):
    proc = _run(tmp_path, "--train", "640", "--test", "200", "--hidden", "100", "--steps", "10",
                "--log-samples", "8", "--log", "run.h5")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("test_accuracy", "train_samples", "seconds", "samples_per_second", "method"):
        assert key in result
    assert result["method"] == "local" and result["train_samples"] == 640
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert f.attrs["completed"]
        steps = f["spikes/readout/step"][:]
        # only the two sampled presentations (before learning, after the epoch) were recorded
        runs = sorted(set((steps // 10).tolist()))
        assert len(runs) <= 2 and max(f["spikes/readout/batch"][:]) < 8
        assert f["modulators/error/value"].shape[1:] == (32, 10)
        assert f["weights/ff0/values"].shape[0] == 2
        assert f["results/epochs/test_accuracy"][-1] == pytest.approx(result["test_accuracy"])
    plot = subprocess.run([sys.executable, "-m", "neurosim.cli", "plot", "run.h5", "learning", "--out",
                           "learning.png"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert plot.returncode == 0, plot.stderr
    assert (tmp_path / "learning.png").stat().st_size > 10_000


@requires_datasets
def test_the_example_refuses_bad_flags_in_one_line(tmp_path):
    proc = _run(tmp_path, "--train", "10", "--batch", "64")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "mnist_three_factor.py: error: --train 10 leaves fewer images than --batch 64")
    proc = _run(tmp_path, "--method", "hebb")
    assert proc.returncode == 2 and "--method" in proc.stderr
    proc = _run(tmp_path, "--per-class", "2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--k-readout 30 must be at most the readout's size, 10 x --per-class = 20" in proc.stderr
    proc = _run(tmp_path, "--log-samples", "64", "--batch", "32")
    assert proc.returncode == 2 and "--log-samples 64 must be at most --batch (32)" in proc.stderr
