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
from killing import kill_after_start

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


def test_unroll_on_cuda_gives_the_cpu_spikes_and_gradients():
    """A differentiable run on the GPU: the same spikes as on the CPU and gradients equal
    to float64 rounding (weights on a 1/64 grid, so every sum is exact)."""
    def run(device):
        gen = torch.Generator().manual_seed(3)
        net = ns.Network(dt=1.0, batch=5, backend="torch", device=device, dtype="float64")
        src = net.population(16, ns.SpikeGenerator([], []), name="src")
        hid = net.population(12, ns.SnnTorchLeaky(beta=0.875), name="hid")
        out = net.population(4, ns.SnnTorchSynaptic(alpha=0.5, beta=0.875), name="out")
        w1 = torch.randint(-16, 40, (16, 12), generator=gen) / 64.0
        w2 = torch.randint(-16, 40, (12, 4), generator=gen) / 64.0
        p1 = net.projection(src, hid, weight=w1.numpy(), receptor="syn", delay=0, trainable=True)
        p2 = net.projection(hid, out, weight=w2.numpy(), receptor="syn", delay=0, trainable=True)
        x = (torch.rand(30, 5, 16, generator=gen) < 0.4).double()
        res = net.unroll(30, spikes={"src": x}, record={"out": ["spikes", "mem"]})
        (res["out"]["mem"].sum() + res["out"]["spikes"].sum()).backward()
        return res["out"]["spikes"].detach().cpu(), p1.parameter.grad.cpu(), p2.parameter.grad.cpu()

    cpu, gpu = run("cpu"), run("cuda")
    assert cpu[0].sum() > 5
    assert torch.equal(cpu[0], gpu[0])
    for a, b in zip(cpu[1:], gpu[1:]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_rate_classifier_trains_a_batch_on_cuda():
    from neurosim.networks.rate_classifier import RateClassifier

    images = np.random.default_rng(0).random((32, 28, 28)).astype(np.float32)
    labels = np.arange(32) % 10
    clf = RateClassifier(hidden=64, batch=16, device="cuda")
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    losses = [clf.train_epoch(images, labels, opt, method) for method in ("bptt", "online")]
    assert all(np.isfinite(losses)) and clf.parameters()[0].device.type == "cuda"
    assert clf.predict(images[:16], progress=False).shape == (16,)


# -- the static step on the GPU (issue: sync-free step in CUDA graphs) --------------------------
def cuba_spikes(device: str, backend: str = "torch", ms: float = 100.0, **kwargs) -> ns.Network:
    net = ns.Network(dt=0.1, seed=2, backend=backend, device=device, **kwargs)
    cuba = build_cuba(net, 4000)
    net.spike_monitor(cuba.exc)
    net.spike_monitor(cuba.inh)
    net.run(ms, progress=False)
    return net


def test_deterministic_cuda_gives_the_numba_spikes():
    cuda = cuba_spikes("cuda", deterministic=True)
    cpu = cuba_spikes("cpu", backend="numba")
    for pop in ("exc", "inh"):
        for a, b in zip(cuda.reader().spikes(pop), cpu.reader().spikes(pop)):
            np.testing.assert_array_equal(a, b)


def test_a_graph_captured_run_equals_an_uncaptured_one():
    """Deterministic sums, so that only the capture could make a difference: the static
    step captured in CUDA graphs (its own deterministic index_add_ left on) against the
    same static step launched op by op."""
    runs = []
    for graphs in (True, False):
        net = ns.Network(dt=0.1, seed=2, backend="torch", device="cuda", deterministic=False)
        cuba = build_cuba(net, 20000)
        net.spike_monitor(cuba.exc)
        net._prepare()  # (the step a run uses: preparing would replace an earlier one)
        step = net.backend.static_step
        step.cuda_graphs = graphs
        net.backend.fuse_updates = False
        torch.use_deterministic_algorithms(True)
        try:
            net.run(100.0, progress=False)
        finally:
            torch.use_deterministic_algorithms(False)
        assert bool(step._graphs) == graphs
        runs.append(net.reader().spikes("exc"))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_a_run_on_cuda_killed_midway_leaves_a_readable_incomplete_log(tmp_path):
    log = tmp_path / "killed.h5"
    script = (f"import neurosim as ns\nfrom neurosim.networks import build_cuba\n"
              f"net = ns.Network(dt=0.1, seed=1, backend='torch', device='cuda', log={str(log)!r})\n"
              f"c = build_cuba(net, 64000)\nnet.spike_monitor(c.exc)\n"
              f"net.run(1000.0, progress=False)\nprint('started', flush=True)\n"
              f"net.run(10_000_000.0, progress=False)\n")
    kill_after_start(script, 3.0)
    with ns.LogReader(str(log)) as reader:
        assert not reader.summary()["completed"]
        steps, _, _ = reader.spikes("exc")
        assert steps.size > 0 and steps.max() >= 9000


def test_the_static_step_replays_graphs_and_fires_like_the_cpu():
    net = cuba_spikes("cuda", ms=300.0)
    assert net.backend.static_step._graphs, "no CUDA graph was captured"
    steps = net.reader().spikes("exc")[0]
    cpu = cuba_spikes("cpu", ms=300.0).reader().spikes("exc")[0]
    assert len(steps) == pytest.approx(len(cpu), rel=0.1)
