"""The soft-Hebbian competitive rule: prototypes of clusters, both backends, conv form."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurosim as ns
from neurosim.rules import SoftHebbian
from neurosim.rules.soft_hebbian import conv_soft_hebbian_delta, soft_hebbian_delta

CENTRES = np.eye(8)[[0, 2, 5, 7]] * 0.8 + 0.2 / np.sqrt(8)  # four clusters in 8-D
CENTRES = CENTRES / np.linalg.norm(CENTRES, axis=1, keepdims=True)


def _train(backend: str, steps: int = 400, batch: int = 16, seed: int = 0):
    net = ns.Network(backend=backend, batch=batch, dt=1.0, seed=seed)
    x = net.population(8, ns.GradedInput(), name="x")
    u = net.population(4, ns.Graded("identity"), name="u")
    w0 = np.random.default_rng(seed).uniform(0.0, 1.0, size=(8, 4))
    proj = net.projection(x, u, weight=w0 / np.linalg.norm(w0, axis=0), receptor="in", delay=0)
    net.modulators.add_soft_competition("y", u, temperature=0.05)
    net.add_rule(proj, SoftHebbian(competition="y", lr=0.02))
    rng = np.random.default_rng(seed + 1)
    for _ in range(steps):
        k = rng.integers(0, 4, size=batch)
        sample = CENTRES[k] + rng.normal(0, 0.05, size=(batch, 8))
        x.inputs["i_ext"].copy_(torch.as_tensor(sample))
        net.run(steps=1, progress=False)
    return proj.weight.clone(), net


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_one_prototype_per_cluster(backend):
    w, _ = _train(backend)
    protos = w.T.double().numpy()  # one prototype per postsynaptic unit
    norms = np.linalg.norm(protos, axis=1)
    assert np.allclose(norms, 1.0, atol=0.1)  # the Oja-like decay keeps |w_k| near 1
    cosine = (protos / norms[:, None]) @ CENTRES.T
    best = cosine.argmax(1)
    assert sorted(best) == [0, 1, 2, 3], cosine  # each cluster has its own unit
    assert (cosine.max(1) > 0.97).all(), cosine


def test_backends_agree_and_numba_runs_it_compiled():
    w_t, _ = _train("torch", steps=50)
    w_n, net = _train("numba", steps=50)
    assert torch.allclose(w_t, w_n, atol=1e-5)
    assert not net.schedule.notes, net.schedule.notes  # no rule falls back to Python


def test_the_rule_is_the_formula():
    """One application: dw = lr * sum_b y (x - u w), from numpy."""
    net = ns.Network(backend="torch", batch=3, dt=1.0, seed=0, dtype="float64")
    x = net.population(5, ns.GradedInput(), name="x")
    u = net.population(3, ns.Graded("identity"), name="u")
    w = np.random.default_rng(2).normal(size=(5, 3))
    proj = net.projection(x, u, weight=w, receptor="in", delay=0)
    net.modulators.add_soft_competition("y", u, temperature=0.5)
    net.add_rule(proj, SoftHebbian(competition="y", lr=0.1))
    xs = np.random.default_rng(3).normal(size=(3, 5))
    x.inputs["i_ext"].copy_(torch.as_tensor(xs))
    net.run(steps=1, progress=False)
    us = xs @ w
    ys = np.exp(us / 0.5) / np.exp(us / 0.5).sum(1, keepdims=True)
    expected = w + 0.1 * (xs.T @ ys - (ys * us).sum(0)[None, :] * w)
    assert np.allclose(proj.weight.numpy(), expected, atol=1e-12)
    # the functional form says the same (prototypes as rows)
    delta = soft_hebbian_delta(torch.as_tensor(xs), torch.as_tensor(w.T), 0.5).numpy().T
    assert np.allclose(w + 0.1 * delta, expected, atol=1e-12)


def test_conv_form_is_the_dense_rule_over_patches():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64)
    kernels = torch.randn(4, 1, 3, 3, generator=g, dtype=torch.float64)
    delta = conv_soft_hebbian_delta(images, kernels, 0.7, padding=1)
    patches = torch.nn.functional.unfold(images, 3, padding=1).transpose(1, 2).reshape(-1, 9)
    manual = torch.zeros(4, 9, dtype=torch.float64)
    for p in patches:  # every patch, the units competing at that position
        u = kernels.reshape(4, 9) @ p
        y = torch.softmax(u / 0.7, 0)
        manual += y[:, None] * (p[None, :] - u[:, None] * kernels.reshape(4, 9))
    assert torch.allclose(delta.reshape(4, 9), manual, atol=1e-10)


def test_bad_input():
    net = ns.Network(backend="torch", batch=2, dt=1.0)
    x = net.population(3, ns.GradedInput(), name="x")
    u = net.population(2, ns.Graded("identity"), name="u")
    lif = net.population(2, ns.LIF(), name="lif")
    with pytest.raises(ValueError, match="temperature"):
        net.modulators.add_soft_competition("bad", u, temperature=0.0)
    with pytest.raises(ValueError, match="no state variable 'q'"):
        net.modulators.add_soft_competition("bad2", u, variable="q")
    net.modulators.add_soft_competition("y", u)
    spiking = net.projection(lif, u, weight=0.1, receptor="in", delay=1)
    with pytest.raises(ValueError, match="graded presynaptic"):
        net.add_rule(spiking, SoftHebbian(competition="y"))
